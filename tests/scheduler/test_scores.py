from __future__ import annotations

from control.scheduler.podinfo import (
    DEFAULT_MEMORY_REQUEST,
    DEFAULT_MILLI_CPU_REQUEST,
    pod_info,
)
from control.scheduler.scheduler import num_feasible_nodes_to_find, unschedulable_message
from control.scheduler.scores import (
    balanced_allocation,
    least_allocated,
    score_nodes,
    spread,
)
from tests.scheduler.helpers import node, pod, pod_obj


def test_least_allocated_prefers_emptier_nodes() -> None:
    empty = node("empty", cpu="4", memory="4Gi")
    busy = node("busy", cpu="4", memory="4Gi")
    busy.add_pod(pod("x", cpu="2", memory="2Gi"))
    p = pod(cpu="1", memory="1Gi")
    assert least_allocated(p, empty) == 75  # (3/4 + 3/4) / 2
    assert least_allocated(p, busy) == 25
    assert least_allocated(pod(cpu="5"), empty) < least_allocated(p, empty)


def test_least_allocated_uses_nonzero_defaults() -> None:
    besteffort = pod()
    assert besteffort.cpu == 0 and besteffort.memory == 0
    assert besteffort.nonzero_cpu == DEFAULT_MILLI_CPU_REQUEST
    assert besteffort.nonzero_memory == DEFAULT_MEMORY_REQUEST
    n = node(cpu="1", memory="2000Mi")
    # cpu: (1000-100)*100/1000 = 90; memory: (2000-200)*100/2000 = 90
    assert least_allocated(besteffort, n) == 90
    crowded = node(cpu="1", memory="2000Mi")
    for i in range(5):
        crowded.add_pod(pod(f"b{i}"))
    assert least_allocated(besteffort, crowded) == 40


def test_balanced_allocation() -> None:
    n = node(cpu="4", memory="4Gi")
    assert balanced_allocation(pod(cpu="2", memory="2Gi"), n) == 100
    assert balanced_allocation(pod(cpu="2"), n) == 75  # 1 - |0.5 - 0| / 2
    assert balanced_allocation(pod(cpu="8"), n) == 50  # fraction capped at 1


def test_spread_prefers_fewer_replicas() -> None:
    a, b, c = node("a"), node("b"), node("c")
    for _ in range(2):
        a.add_pod(pod("x", owner_uid="rs-1"))
    b.add_pod(pod("y", owner_uid="rs-1"))
    c.add_pod(pod("z", owner_uid="rs-2"))
    p = pod(owner_uid="rs-1")
    assert spread(p, [a, b, c]) == [0, 50, 100]
    assert spread(pod(owner_uid="rs-3"), [a, b, c]) == [100, 100, 100]
    assert spread(pod(), [a, b, c]) == [0, 0, 0]


def test_weighted_total() -> None:
    a, b = node("a"), node("b")
    a.add_pod(pod("x", cpu="1", memory="1Gi", owner_uid="rs"))
    p = pod(cpu="1", memory="1Gi", owner_uid="rs")
    totals = score_nodes(p, [a, b])
    expected = [
        least_allocated(p, n) + balanced_allocation(p, n) + 2 * s
        for n, s in zip([a, b], spread(p, [a, b]), strict=True)
    ]
    assert totals == expected
    assert totals[1] > totals[0]


def test_pod_requests_like_kube_scheduler() -> None:
    obj = pod_obj("p", cpu="100m", memory="64Mi")
    obj["spec"]["containers"].append(
        {"name": "d", "image": "x", "resources": {"limits": {"cpu": "200m"}}}
    )
    obj["spec"]["initContainers"] = [
        {"name": "i", "image": "x", "resources": {"requests": {"memory": "1Gi"}}}
    ]
    obj["spec"]["overhead"] = {"cpu": "10m"}
    info = pod_info(obj)
    assert info.cpu == 310
    assert info.memory == 2**30  # the init container's request is the larger
    assert info.nonzero_cpu == 310
    assert info.nonzero_memory == max(64 * 2**20 + DEFAULT_MEMORY_REQUEST, 2**30)


def test_adaptive_percentage() -> None:
    assert num_feasible_nodes_to_find(0, 50) == 50
    assert num_feasible_nodes_to_find(0, 500) == 230  # 50 - 4 = 46%
    assert num_feasible_nodes_to_find(0, 5000) == 500  # 50 - 40 = 10%
    assert num_feasible_nodes_to_find(0, 10000) == 500  # the 5% floor
    assert num_feasible_nodes_to_find(0, 150) == 100  # at least 100
    assert num_feasible_nodes_to_find(20, 5000) == 1000
    assert num_feasible_nodes_to_find(100, 5000) == 5000


def test_unschedulable_message_form() -> None:
    msg = unschedulable_message(
        3, {"Insufficient cpu": 2, "node(s) were unschedulable": 1, "Insufficient memory": 2}
    )
    assert msg == (
        "0/3 nodes are available: 2 Insufficient cpu, 2 Insufficient memory, "
        "1 node(s) were unschedulable."
    )
    assert unschedulable_message(0, {}) == (
        "0/0 nodes are available: no nodes available to schedule pods."
    )
