"""The plan of a local cluster: every name, address and range `up` will use,
computed from the options alone (no root, no side effects).

Node N of cluster C is the network namespace `ph-C-nodeN`, joined to the host
bridge `phbr-C` by a veth pair `phCnN` (host end) and `phCpN` (renamed eth0
inside). The bridge has the node subnet's first address; node N has address
10 + N, and its pods the (N+1)th node-sized slice of the pod CIDR. The
service CIDR is routed `unreachable` for forwarded traffic on the host and in
every node, so that a ClusterIP that no service rule catches fails at once.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from control.localcluster.proc import LocalClusterError

DEFAULT_NODE_SUBNET = "172.31.250.0/24"
DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_NODE_CIDR_MASK = 24
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
MAX_NODES = 50
SSH_PORT = 22
NODE_IP_OFFSET = 10  # node N is the subnet's address NODE_IP_OFFSET + N
_CLUSTER_NAME = re.compile(r"^[a-z0-9]{1,8}$")


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
