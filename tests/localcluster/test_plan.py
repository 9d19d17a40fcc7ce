"""The local cluster's plan: names, addresses and ranges from the options alone (no root)."""

from __future__ import annotations

import ipaddress

import pytest

from control.localcluster.plan import (
    DEFAULT_NODE_SUBNET,
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    MAX_NODES,
    NodeState,
    make_plan,
)
from control.localcluster.proc import LocalClusterError


def test_default_plan_names_and_addresses() -> None:
    plan = make_plan("local", 2)
    assert (plan.cluster, plan.bridge) == ("local", "phbr-local")
    assert (plan.node_subnet, plan.pod_cidr) == (DEFAULT_NODE_SUBNET, DEFAULT_POD_CIDR)
    assert (plan.gateway, plan.prefixlen, plan.node_cidr_mask) == ("172.31.250.1", 24, 24)
    assert plan.service_cidr == DEFAULT_SERVICE_CIDR == "10.96.0.0/12"
    assert plan.nodes == (
        NodeState(
            1,
            "node1",
            "ph-local-node1",
            "phlocaln1",
            "172.31.250.11",
            "10.244.1.0/24",
            "/pilothouse-local-node1",
        ),
        NodeState(
            2,
            "node2",
            "ph-local-node2",
            "phlocaln2",
            "172.31.250.12",
            "10.244.2.0/24",
            "/pilothouse-local-node2",
        ),
    )
    assert [plan.peer_veth(n) for n in plan.nodes] == ["phlocalp1", "phlocalp2"]


def test_interface_names_fit_the_kernel_limit() -> None:
    plan = make_plan("abcdefgh", MAX_NODES)
    names = [plan.bridge] + [n.host_veth for n in plan.nodes] + [plan.peer_veth(plan.nodes[-1])]
    assert max(len(n) for n in names) <= 15  # IFNAMSIZ - 1


def test_pod_slices_are_disjoint_and_inside_the_pod_cidr() -> None:
    plan = make_plan("t", 8, pod_cidr="10.250.0.0/16", node_cidr_mask=26)
    pods = ipaddress.ip_network("10.250.0.0/16")
    slices = [ipaddress.ip_network(n.pod_cidr) for n in plan.nodes]
    assert all(s.prefixlen == 26 and s.subnet_of(pods) for s in slices)  # type: ignore[arg-type]
    assert len(set(slices)) == 8
    assert not any(a.overlaps(b) for i, a in enumerate(slices) for b in slices[i + 1 :])
    # The first slice stays free (slice N is node N's).
    assert str(slices[0]) == "10.250.0.64/26"


def test_node_addresses_are_in_the_node_subnet_and_not_the_gateway() -> None:
    plan = make_plan("t", MAX_NODES, node_subnet="172.31.240.0/24")
    net = ipaddress.ip_network("172.31.240.0/24")
    ips = [ipaddress.ip_address(n.ip) for n in plan.nodes]
    assert all(ip in net for ip in ips)
    assert str(ips[0]) == "172.31.240.11"
    assert plan.gateway not in {n.ip for n in plan.nodes}


def test_the_same_options_give_the_same_plan() -> None:
    assert make_plan("t", 3) == make_plan("t", 3)
    # Growing keeps the existing nodes' names and addresses.
    assert make_plan("t", 5).nodes[:3] == make_plan("t", 3).nodes


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"nodes": 0}, "--nodes must be between 1 and 50, got 0"),
        ({"nodes": MAX_NODES + 1}, "--nodes must be between"),
        ({"cluster": "Local"}, "cluster name must be 1-8 of"),
        ({"cluster": "waytoolong"}, "cluster name must be 1-8 of"),
        ({"node_subnet": "172.31.250.0/33"}, "--node-subnet: "),
        ({"node_subnet": "172.31.250.5/24"}, "--node-subnet: .*host bits"),
        ({"node_subnet": "172.31.250.0/29"}, "--node-subnet 172.31.250.0/29 has no room"),
        ({"pod_cidr": "10.244.0.0"}, "--pod-cidr: |node_cidr_mask"),
        ({"pod_cidr": "nonsense"}, "--pod-cidr: "),
        ({"pod_cidr": "10.244.0.0/26"}, "node_cidr_mask must be between 26 .* and 30, got 24"),
        ({"pod_cidr": "10.244.0.0/24"}, "pod_cidr 10.244.0.0/24 has no room for 2"),
        ({"pod_cidr": "10.244.0.0/22", "nodes": 4}, "pod_cidr 10.244.0.0/22 has no room"),
        ({"service_cidr": "10.96.0.0/33"}, "--service-cidr: "),
        ({"service_cidr": "10.96.0.1/12"}, "--service-cidr: .*host bits"),
        ({"service_cidr": "10.244.128.0/20"}, "--service-cidr 10.244.128.0/20 overlaps --pod-cidr"),
        ({"service_cidr": "172.31.0.0/16"}, "--service-cidr 172.31.0.0/16 overlaps --node-subnet"),
        ({"service_cidr": "fd00::/108"}, "--service-cidr fd00::/108: not the IP family of"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], error: str) -> None:
    args: dict[str, object] = {"cluster": "t", "nodes": 2, **options}
    with pytest.raises(LocalClusterError, match=error):
        make_plan(**args)  # type: ignore[arg-type]


def test_the_service_cidr_is_the_options() -> None:
    plan = make_plan("t", 2, pod_cidr="10.250.0.0/16", service_cidr="172.30.7.0/24")
    assert plan.service_cidr == "172.30.7.0/24"
