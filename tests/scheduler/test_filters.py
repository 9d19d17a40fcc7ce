from __future__ import annotations

from typing import Any

import pytest

from control.scheduler.filters import (
    ERR_AFFINITY,
    ERR_NODE_NAME,
    ERR_PORTS,
    ERR_UNSCHEDULABLE,
    find_feasible,
    node_affinity,
    node_name,
    node_ports,
    node_resources_fit,
    node_unschedulable,
    run_filters,
    taint_toleration,
)
from control.scheduler.podinfo import pod_info
from tests.scheduler.helpers import node, pod, pod_obj

# -- NodeUnschedulable ---------------------------------------------------------


def test_cordoned_node_rejects() -> None:
    assert node_unschedulable(pod(), node(unschedulable=True)) == (ERR_UNSCHEDULABLE,)
    assert node_unschedulable(pod(), node()) == ()


def test_cordon_tolerated() -> None:
    tolerating = pod(
        tolerations=[
            {
                "key": "node.kubernetes.io/unschedulable",
                "operator": "Exists",
                "effect": "NoSchedule",
            }
        ]
    )
    assert node_unschedulable(tolerating, node(unschedulable=True)) == ()
    everything = pod(tolerations=[{"operator": "Exists"}])
    assert node_unschedulable(everything, node(unschedulable=True)) == ()
    wrong_effect = pod(
        tolerations=[
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}
        ]
    )
    assert node_unschedulable(wrong_effect, node(unschedulable=True)) == (ERR_UNSCHEDULABLE,)


# -- NodeName -----------------------------------------------------------------


def test_node_name() -> None:
    obj = pod_obj("p")
    obj["spec"]["nodeName"] = "a"
    pinned = pod_info(obj)
    assert node_name(pinned, node("a")) == ()
    assert node_name(pinned, node("b")) == (ERR_NODE_NAME,)
    assert node_name(pod(), node("b")) == ()


# -- TaintToleration ----------------------------------------------------------

GPU_TAINT = {"key": "gpu", "value": "true", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("tolerations", "tolerated"),
    [
        ([], False),
        ([{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}], True),
        ([{"key": "gpu", "value": "true"}], True),  # operator defaults to Equal, any effect
        ([{"key": "gpu", "operator": "Equal", "value": "false"}], False),
        ([{"key": "gpu", "operator": "Exists"}], True),
        ([{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}], False),
        ([{"operator": "Exists"}], True),  # empty key with Exists tolerates everything
        ([{"key": "other", "operator": "Exists"}], False),
    ],
)
def test_taints(tolerations: list[dict[str, Any]], tolerated: bool) -> None:
    result = taint_toleration(pod(tolerations=tolerations), node(taints=[GPU_TAINT]))
    assert result == (() if tolerated else ("node(s) had untolerated taint {gpu: true}",))


def test_prefer_no_schedule_is_not_a_filter() -> None:
    soft = node(taints=[{"key": "soft", "effect": "PreferNoSchedule"}])
    assert taint_toleration(pod(), soft) == ()


def test_first_untolerated_taint_is_named() -> None:
    n = node(
        taints=[
            {"key": "a", "value": "1", "effect": "NoSchedule"},
            {"key": "b", "effect": "NoExecute"},
        ]
    )
    p = pod(tolerations=[{"key": "a", "operator": "Exists"}])
    assert taint_toleration(p, n) == ("node(s) had untolerated taint {b: }",)


# -- NodeAffinity -------------------------------------------------------------


def test_node_selector() -> None:
    ssd = node(labels={"disk": "ssd", "zone": "a"})
    assert node_affinity(pod(node_selector={"disk": "ssd"}), ssd) == ()
    assert node_affinity(pod(node_selector={"disk": "ssd", "zone": "b"}), ssd) == (ERR_AFFINITY,)
    assert node_affinity(pod(node_selector={"gpu": "yes"}), ssd) == (ERR_AFFINITY,)


def _required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
        }
    }


def _expr(key: str, op: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        (_expr("zone", "In", "a", "b"), True),
        (_expr("zone", "In", "c"), False),
        (_expr("zone", "NotIn", "c"), True),
        (_expr("zone", "NotIn", "a"), False),
        (_expr("missing", "NotIn", "a"), True),
        (_expr("zone", "Exists"), True),
        (_expr("missing", "Exists"), False),
        (_expr("missing", "DoesNotExist"), True),
        (_expr("zone", "DoesNotExist"), False),
        (_expr("cores", "Gt", "8"), True),
        (_expr("cores", "Gt", "16"), False),
        (_expr("cores", "Lt", "17"), True),
        (_expr("cores", "Lt", "16"), False),
        (_expr("zone", "Gt", "1"), False),  # not a number
        (_expr("missing", "Lt", "1"), False),
    ],
)
def test_match_expressions(expression: dict[str, Any], matches: bool) -> None:
    n = node(labels={"zone": "a", "cores": "16"})
    p = pod(affinity=_required({"matchExpressions": [expression]}))
    assert node_affinity(p, n) == (() if matches else (ERR_AFFINITY,))


def test_terms_or_expressions_and() -> None:
    n = node(labels={"zone": "a", "disk": "hdd"})
    both = {"matchExpressions": [_expr("zone", "In", "a"), _expr("disk", "In", "ssd")]}
    assert node_affinity(pod(affinity=_required(both)), n) == (ERR_AFFINITY,)
    either = _required(
        {"matchExpressions": [_expr("disk", "In", "ssd")]},
        {"matchExpressions": [_expr("zone", "In", "a")]},
    )
    assert node_affinity(pod(affinity=either), n) == ()
    empty_term = _required({})
    assert node_affinity(pod(affinity=empty_term), n) == (ERR_AFFINITY,)


def test_match_fields_on_node_name() -> None:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}
    p = pod(affinity=_required(term))
    assert node_affinity(p, node("a")) == ()
    assert node_affinity(p, node("b")) == (ERR_AFFINITY,)


def test_selector_and_affinity_both_apply() -> None:
    n = node(labels={"zone": "a"})
    p = pod(
        node_selector={"zone": "b"},
        affinity=_required({"matchExpressions": [_expr("zone", "Exists")]}),
    )
    assert node_affinity(p, n) == (ERR_AFFINITY,)


# -- NodePorts -----------------------------------------------------------------


def test_host_port_conflict() -> None:
    n = node()
    n.add_pod(pod("web", host_port=8080))
    assert node_ports(pod("other", host_port=8080), n) == (ERR_PORTS,)
    assert node_ports(pod("other", host_port=8081), n) == ()
    assert node_ports(pod("no-ports"), n) == ()
    n.remove_pod(pod("web", host_port=8080))
    assert node_ports(pod("other", host_port=8080), n) == ()


def test_host_port_protocol_and_ip() -> None:
    n = node()
    udp = pod_obj("dns", host_port=53)
    udp["spec"]["containers"][0]["ports"][0].update(protocol="UDP", hostIP="10.0.0.1")
    n.add_pod(pod_info(udp))
    assert node_ports(pod("tcp", host_port=53), n) == ()  # TCP is another port
    same_ip = pod_obj("dns2", host_port=53)
    same_ip["spec"]["containers"][0]["ports"][0].update(protocol="UDP", hostIP="10.0.0.1")
    assert node_ports(pod_info(same_ip), n) == (ERR_PORTS,)
    other_ip = pod_obj("dns3", host_port=53)
    other_ip["spec"]["containers"][0]["ports"][0].update(protocol="UDP", hostIP="10.0.0.2")
    assert node_ports(pod_info(other_ip), n) == ()
    wildcard = pod_obj("dns4", host_port=53)
    wildcard["spec"]["containers"][0]["ports"][0].update(protocol="UDP")
    assert node_ports(pod_info(wildcard), n) == (ERR_PORTS,)


# -- NodeResourcesFit ----------------------------------------------------------


def test_resources_fit() -> None:
    n = node(cpu="2", memory="4Gi", pods="3")
    assert node_resources_fit(pod(cpu="2", memory="4Gi"), n) == ()
    assert node_resources_fit(pod(cpu="2100m"), n) == ("Insufficient cpu",)
    assert node_resources_fit(pod(cpu="3", memory="5Gi"), n) == (
        "Insufficient cpu",
        "Insufficient memory",
    )
    n.add_pod(pod("a", cpu="1500m", memory="1Gi"))
    assert node_resources_fit(pod(cpu="500m"), n) == ()
    assert node_resources_fit(pod(cpu="501m"), n) == ("Insufficient cpu",)
    assert node_resources_fit(pod(memory="3Gi"), n) == ()
    assert node_resources_fit(pod(memory="3073Mi"), n) == ("Insufficient memory",)


def test_too_many_pods() -> None:
    n = node(pods="2")
    n.add_pod(pod("a"))
    assert node_resources_fit(pod(), n) == ()
    n.add_pod(pod("b"))
    assert node_resources_fit(pod(), n) == ("Too many pods",)


def test_pod_without_requests_counts_zero() -> None:
    n = node(cpu="1", memory="1Gi")
    n.add_pod(pod("big", cpu="1", memory="1Gi"))
    assert node_resources_fit(pod("besteffort"), n) == ()


def test_requests_default_to_limits() -> None:
    n = node(cpu="1")
    assert node_resources_fit(pod(limits={"cpu": "2"}), n) == ("Insufficient cpu",)
    assert node_resources_fit(pod(cpu="500m", limits={"cpu": "2"}), n) == ()


def test_extended_resources() -> None:
    gpu = node(extra={"nvidia.com/gpu": "1"})
    plain = node()
    wants = pod(limits={"nvidia.com/gpu": "1"})
    assert node_resources_fit(wants, gpu) == ()
    assert node_resources_fit(wants, plain) == ("Insufficient nvidia.com/gpu",)


# -- the chain -----------------------------------------------------------------


def test_first_failing_filter_decides() -> None:
    n = node(cpu="1", unschedulable=True, taints=[GPU_TAINT])
    assert run_filters(pod(cpu="2"), n) == ("NodeUnschedulable", (ERR_UNSCHEDULABLE,))
    assert run_filters(pod(cpu="2"), node(cpu="1")) == ("NodeResourcesFit", ("Insufficient cpu",))
    assert run_filters(pod(cpu="1"), node(cpu="1")) is None


def test_find_feasible_stops_early_and_wraps() -> None:
    nodes = [node(f"n{i}") for i in range(10)]
    for i, n in enumerate(nodes):
        n.index = i
    feasible, processed, reasons, rejected = find_feasible(pod(), nodes, 7, 4)
    assert [n.name for n in feasible] == ["n7", "n8", "n9", "n0"]
    assert processed == 4 and reasons == {} and rejected == set()


def test_find_feasible_counts_reasons() -> None:
    nodes = [node("small", cpu="1"), node("cordoned", unschedulable=True), node("ok", cpu="8")]
    feasible, processed, reasons, rejected = find_feasible(pod(cpu="4"), nodes, 0, 3)
    assert [n.name for n in feasible] == ["ok"]
    assert processed == 3
    assert reasons == {"Insufficient cpu": 1, ERR_UNSCHEDULABLE: 1}
    assert rejected == {"NodeResourcesFit", "NodeUnschedulable"}
