"""The plan of a local cluster: every name, address and range `up` will use,
computed from the options alone (no root, no side effects).

Node N of cluster C is the network namespace `ph-C-nodeN`, joined to the host
bridge `phbr-C` by a veth pair `phCnN` (host end) and `phCpN` (renamed eth0
inside). The bridge has the node subnet's first address; node N has address
10 + N, and its pods the (N+1)th node-sized slice of the pod CIDR. The
service CIDR is routed `unreachable` for forwarded traffic on the host and in
every node, so that a ClusterIP that no service rule catches fails at once.

With several control planes (`--control-planes N`), HAProxy takes the API
address HOST:P; control plane N serves HTTPS on 127.0.0.1:P+N, and etcd member
N listens on 127.0.0.1:P+10+2(N-1) for clients and one port above for peers.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from control.config import split_host_port
from control.localcluster.proc import LocalClusterError

DEFAULT_NODE_SUBNET = "172.31.250.0/24"
DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_NODE_CIDR_MASK = 24
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
MAX_NODES = 50
SSH_PORT = 22
NODE_IP_OFFSET = 10  # node N is the subnet's address NODE_IP_OFFSET + N
_CLUSTER_NAME = re.compile(r"^[a-z0-9]{1,8}$")
DEFAULT_API_LISTEN = "127.0.0.1:6443"
MAX_CONTROL_PLANES = 7
ETCD_PORT_OFFSET = 10  # etcd member N: client port P + 10 + 2(N-1), peer port one above
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class NodeState:
    """One node's names and addresses (also as recorded in the state file)."""

    index: int
    name: str
    netns: str
    host_veth: str
    ip: str
    pod_cidr: str
    cgroup_parent: str


@dataclass(frozen=True)
class Plan:
    cluster: str
    bridge: str
    node_subnet: str
    pod_cidr: str
    node_cidr_mask: int
    service_cidr: str
    nodes: tuple[NodeState, ...]

    @property
    def gateway(self) -> str:
        """The bridge's address on the node subnet: the nodes' default route."""
        return str(ipaddress.ip_network(self.node_subnet).network_address + 1)

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.node_subnet).prefixlen

    def peer_veth(self, node: NodeState) -> str:
        """The node end of its veth pair, before it is renamed eth0 in the namespace."""
        return f"ph{self.cluster}p{node.index}"


def _network(option: str, value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value)
    except ValueError as e:
        raise LocalClusterError(f"{option}: {e}") from None


def make_plan(
    cluster: str,
    nodes: int,
    *,
    node_subnet: str = DEFAULT_NODE_SUBNET,
    pod_cidr: str = DEFAULT_POD_CIDR,
    node_cidr_mask: int = DEFAULT_NODE_CIDR_MASK,
    service_cidr: str = DEFAULT_SERVICE_CIDR,
) -> Plan:
    """The plan for `nodes` nodes; a LocalClusterError names the option that does not fit."""
    if not 1 <= nodes <= MAX_NODES:
        raise LocalClusterError(f"--nodes must be between 1 and {MAX_NODES}, got {nodes}")
    if not _CLUSTER_NAME.match(cluster):
        raise LocalClusterError(f"cluster name must be 1-8 of [a-z0-9], got {cluster!r}")
    net = _network("--node-subnet", node_subnet)
    pods = _network("--pod-cidr", pod_cidr)
    if not pods.prefixlen <= node_cidr_mask <= pods.max_prefixlen - 2:
        raise LocalClusterError(
            f"node_cidr_mask must be between {pods.prefixlen} (the pod CIDR prefix) and "
            f"{pods.max_prefixlen - 2}, got {node_cidr_mask}"
        )
    services = _network("--service-cidr", service_cidr)
    for option, other in (("--pod-cidr", pods), ("--node-subnet", net)):
        if services.version != other.version:
            raise LocalClusterError(f"--service-cidr {services}: not the IP family of {option}")
        if services.overlaps(other):
            raise LocalClusterError(f"--service-cidr {services} overlaps {option} {other}")
    if net.num_addresses < NODE_IP_OFFSET + nodes + 2:
        raise LocalClusterError(f"--node-subnet {net} has no room for {nodes} nodes")
    size = 2 ** (pods.max_prefixlen - node_cidr_mask)
    planned: list[NodeState] = []
    for i in range(1, nodes + 1):
        cidr = ipaddress.ip_network(f"{pods.network_address + i * size}/{node_cidr_mask}")
        if not cidr.subnet_of(pods):  # type: ignore[arg-type]
            raise LocalClusterError(f"pod_cidr {pods} has no room for {nodes} node slices")
        name = f"node{i}"
        planned.append(
            NodeState(
                index=i,
                name=name,
                netns=f"ph-{cluster}-{name}",
                host_veth=f"ph{cluster}n{i}",
                ip=str(net.network_address + NODE_IP_OFFSET + i),
                pod_cidr=str(cidr),
                cgroup_parent=f"/pilothouse-{cluster}-{name}",
            )
        )
    return Plan(
        cluster=cluster,
        bridge=f"phbr-{cluster}",
        node_subnet=str(net),
        pod_cidr=str(pods),
        node_cidr_mask=node_cidr_mask,
        service_cidr=str(services),
        nodes=tuple(planned),
    )


@dataclass(frozen=True)
class ControlPlaneMember:
    """One control plane of several: its `serve`, and the etcd member beside it."""

    index: int
    name: str  # the serve's leader election identity and the etcd member's name
    https_port: int
    etcd_client_port: int
    etcd_peer_port: int

    @property
    def https_url(self) -> str:
        return f"https://{LOOPBACK}:{self.https_port}"

    @property
    def etcd_client_url(self) -> str:
        return f"http://{LOOPBACK}:{self.etcd_client_port}"

    @property
    def etcd_peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.etcd_peer_port}"


@dataclass(frozen=True)
class HaPlan:
    """Several control planes on one etcd cluster, behind HAProxy at `host:port`."""

    host: str
    port: int
    members: tuple[ControlPlaneMember, ...]

    @property
    def api_url(self) -> str:
        """The URL clients use: HAProxy's (a wildcard bind is reached on loopback)."""
        host = {"0.0.0.0": LOOPBACK, "": LOOPBACK, "::": "::1"}.get(self.host, self.host)
        return f"https://[{host}]:{self.port}" if ":" in host else f"https://{host}:{self.port}"

    @property
    def etcd_endpoints(self) -> tuple[str, ...]:
        return tuple(m.etcd_client_url for m in self.members)

    @property
    def initial_cluster(self) -> str:
        """etcd's --initial-cluster: every member's name and peer URL."""
        return ",".join(f"{m.name}={m.etcd_peer_url}" for m in self.members)


def make_ha_plan(cluster: str, control_planes: int, api_listen: str | None) -> HaPlan | None:
    """The plan of `control_planes` control planes behind HAProxy on `api_listen`
    (None: the default address); None for one control plane (no HAProxy, no etcd)."""
    if not 1 <= control_planes <= MAX_CONTROL_PLANES or control_planes % 2 == 0:
        raise LocalClusterError(
            f"--control-planes must be odd (etcd needs a majority) and at most "
            f"{MAX_CONTROL_PLANES}, got {control_planes}"
        )
    if control_planes == 1:
        return None
    if api_listen == "":
        raise LocalClusterError("--listen: several control planes need an address for HAProxy")
    address = split_host_port(api_listen or DEFAULT_API_LISTEN)
    if address is None or address[1] == 0:
        raise LocalClusterError(f"--listen: want HOST:PORT with a fixed port, got {api_listen!r}")
    host, port = address
    last = port + ETCD_PORT_OFFSET + 2 * control_planes - 1
    if last > 65535:
        raise LocalClusterError(f"--listen: port {port} leaves no room for the control planes")
    members = tuple(
        ControlPlaneMember(
            index=i,
            name=f"{cluster}-cp{i}",
            https_port=port + i,
            etcd_client_port=port + ETCD_PORT_OFFSET + 2 * (i - 1),
            etcd_peer_port=port + ETCD_PORT_OFFSET + 2 * (i - 1) + 1,
        )
        for i in range(1, control_planes + 1)
    )
    return HaPlan(host=host, port=port, members=members)
