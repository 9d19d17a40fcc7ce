"""The scheduler inside a running control plane, on Node objects without agents."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from control.api.registry import Registry
from control.config import load_config
from control.controlplane import ControlPlane, open_store
from control.errors import ApiError
from control.objects.kinds import EVENT, NODE, POD
from control.scheduler.scheduler import Scheduler
from tests.polling import eventually
from tests.scheduler.helpers import node_obj, pod_obj

Obj = dict[str, Any]


async def add_nodes(plane: ControlPlane, *nodes: Obj) -> None:
    for n in nodes:
        await plane.registry.create(NODE, None, n)


async def add_pods(plane: ControlPlane, *pods: Obj) -> None:
    for p in pods:
        await plane.registry.create(POD, "default", p)


async def get_pod(plane: ControlPlane, name: str) -> Obj:
    return (await plane.registry.get(POD, "default", name)).obj


async def placements(plane: ControlPlane, names: list[str]) -> dict[str, str] | None:
    """pod -> node once every named pod is bound, else None."""
    out = {}
    for name in names:
        node = (await get_pod(plane, name))["spec"].get("nodeName")
        if not node:
            return None
        out[name] = node
    return out


def scheduled_condition(pod: Obj) -> Obj | None:
    for c in pod.get("status", {}).get("conditions") or ():
        if c["type"] == "PodScheduled":
            return dict(c)
    return None


async def unschedulable_condition(plane: ControlPlane, name: str) -> Obj | None:
    cond = scheduled_condition(await get_pod(plane, name))
    return cond if cond and cond["status"] == "False" else None


async def events_for(plane: ControlPlane, name: str, reason: str) -> list[Obj]:
    listed = await plane.registry.list(EVENT, "default")
    return [
        e.obj
        for e in listed.items
        if e.obj["involvedObject"]["name"] == name and e.obj["reason"] == reason
    ]


async def test_pods_spread_across_nodes(plane: ControlPlane) -> None:
    await add_nodes(plane, *(node_obj(f"node-{i}", cpu="2") for i in range(3)))
    names = [f"web-{i}" for i in range(9)]
    await add_pods(plane, *(pod_obj(n, cpu="100m", memory="64Mi") for n in names))
    placed = await eventually(lambda: placements(plane, names))
    assert Counter(placed.values()) == {"node-0": 3, "node-1": 3, "node-2": 3}
    pod = await get_pod(plane, "web-0")
    cond = scheduled_condition(pod)
    assert cond is not None and cond["status"] == "True"
    events = await eventually(lambda: events_for(plane, "web-0", "Scheduled"))
    assert events[0]["type"] == "Normal"
    assert events[0]["message"] == f"Successfully assigned default/web-0 to {placed['web-0']}"
    assert events[0]["source"]["component"] == "default-scheduler"


async def test_owner_replicas_spread(plane: ControlPlane) -> None:
    # Node a is far emptier, but replicas of one owner still spread out.
    await add_nodes(plane, node_obj("a", cpu="64", memory="256Gi"), node_obj("b"))
    names = [f"r-{i}" for i in range(2)]
    await add_pods(plane, *(pod_obj(n, cpu="100m", owner_uid="rs-uid") for n in names))
    placed = await eventually(lambda: placements(plane, names))
    assert sorted(placed.values()) == ["a", "b"]


async def test_cordoned_nodes_receive_no_pods(plane: ControlPlane) -> None:
    await add_nodes(
        plane, node_obj("open-1"), node_obj("cordoned", unschedulable=True), node_obj("open-2")
    )
    names = [f"p-{i}" for i in range(12)]
    await add_pods(plane, *(pod_obj(n, cpu="10m") for n in names))
    placed = await eventually(lambda: placements(plane, names))
    assert "cordoned" not in placed.values()
    assert set(placed.values()) == {"open-1", "open-2"}


async def test_over_large_request_then_a_big_node(plane: ControlPlane) -> None:
    await add_nodes(
        plane,
        node_obj("small-1", cpu="1"),
        node_obj("small-2", cpu="1"),
        node_obj("cordoned", cpu="1", unschedulable=True),
    )
    await add_pods(plane, pod_obj("huge", cpu="8", memory="1Gi"))
    cond = await eventually(lambda: unschedulable_condition(plane, "huge"))
    message = "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) were unschedulable."
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == message
    events = await eventually(lambda: events_for(plane, "huge", "FailedScheduling"))
    assert events[0]["type"] == "Warning"
    assert events[0]["message"] == message
    assert events[0]["source"]["component"] == "default-scheduler"
    attempts_before = plane.scheduler.attempts

    await add_nodes(plane, node_obj("big", cpu="16", memory="64Gi"))
    placed = await eventually(lambda: placements(plane, ["huge"]))
    assert placed == {"huge": "big"}
    bound = scheduled_condition(await get_pod(plane, "huge"))
    assert bound is not None and bound["status"] == "True"
    # Parked, not polled: one more attempt after the node came (plus slack).
    assert plane.scheduler.attempts - attempts_before <= 3
    assert plane.scheduler.attempts <= 5


async def test_unschedulable_pod_is_not_retried_in_a_loop(plane: ControlPlane) -> None:
    await add_nodes(plane, node_obj("n", cpu="1"))
    await add_pods(plane, pod_obj("huge", cpu="2"))
    cond = await eventually(lambda: unschedulable_condition(plane, "huge"))
    rv = (await get_pod(plane, "huge"))["metadata"]["resourceVersion"]
    # A node change that cannot help: the pod is tried again, the message is
    # the same, so neither the condition nor the event is written again.
    labelled = node_obj("n", cpu="1", labels={"rack": "r1"})
    current = (await plane.registry.get(NODE, None, "n")).obj
    labelled["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    await plane.registry.update(NODE, None, "n", labelled)
    await eventually(lambda: _attempts_at_least(plane, 2))
    await asyncio.sleep(0.2)
    pod = await get_pod(plane, "huge")
    assert pod["metadata"]["resourceVersion"] == rv
    assert scheduled_condition(pod) == cond
    events = await events_for(plane, "huge", "FailedScheduling")
    assert len(events) == 1 and events[0]["count"] == 1
    assert plane.scheduler.attempts <= 3


async def _attempts_at_least(plane: ControlPlane, n: int) -> bool:
    return plane.scheduler.attempts >= n


async def test_deleted_pod_frees_room(plane: ControlPlane) -> None:
    await add_nodes(plane, node_obj("n", cpu="1"))
    await add_pods(plane, pod_obj("first", cpu="800m"))
    await eventually(lambda: placements(plane, ["first"]))
    await add_pods(plane, pod_obj("second", cpu="800m"))
    cond = await eventually(lambda: unschedulable_condition(plane, "second"))
    assert cond["message"] == "0/1 nodes are available: 1 Insufficient cpu."
    await plane.registry.delete(POD, "default", "first", grace_period_seconds=0)
    placed = await eventually(lambda: placements(plane, ["second"]))
    assert placed == {"second": "n"}


async def test_taints_and_tolerations(plane: ControlPlane) -> None:
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    await add_nodes(plane, node_obj("gpu", taints=[taint]))
    await add_pods(plane, pod_obj("plain"))
    cond = await eventually(lambda: unschedulable_condition(plane, "plain"))
    assert cond["message"] == (
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}."
    )
    toleration = {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    await add_pods(plane, pod_obj("tolerant", tolerations=[toleration]))
    assert await eventually(lambda: placements(plane, ["tolerant"])) == {"tolerant": "gpu"}
    await add_nodes(plane, node_obj("general"))
    assert await eventually(lambda: placements(plane, ["plain"])) == {"plain": "general"}


async def test_node_selector(plane: ControlPlane) -> None:
    await add_nodes(
        plane,
        node_obj("hdd-1", labels={"disk": "hdd"}),
        node_obj("ssd", labels={"disk": "ssd"}),
        node_obj("hdd-2", labels={"disk": "hdd"}),
    )
    names = [f"db-{i}" for i in range(4)]
    await add_pods(plane, *(pod_obj(n, node_selector={"disk": "ssd"}) for n in names))
    placed = await eventually(lambda: placements(plane, names))
    assert set(placed.values()) == {"ssd"}
    await add_pods(plane, pod_obj("nvme", node_selector={"disk": "nvme"}))
    cond = await eventually(lambda: unschedulable_condition(plane, "nvme"))
    assert cond["message"] == (
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    )


async def test_host_port_conflict(plane: ControlPlane) -> None:
    await add_nodes(plane, node_obj("a"), node_obj("b"))
    await add_pods(plane, pod_obj("web-1", host_port=8080), pod_obj("web-2", host_port=8080))
    placed = await eventually(lambda: placements(plane, ["web-1", "web-2"]))
    assert sorted(placed.values()) == ["a", "b"]
    await add_pods(plane, pod_obj("web-3", host_port=8080))
    cond = await eventually(lambda: unschedulable_condition(plane, "web-3"))
    assert cond["message"] == (
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    )


async def test_other_schedulers_and_bound_pods_are_left_alone(plane: ControlPlane) -> None:
    await add_nodes(plane, node_obj("a"), node_obj("b"))
    pinned = pod_obj("pinned")
    pinned["spec"]["nodeName"] = "b"
    await add_pods(plane, pod_obj("custom", scheduler_name="my-scheduler"), pinned)
    await add_pods(plane, pod_obj("normal"))
    await eventually(lambda: placements(plane, ["normal"]))
    assert (await get_pod(plane, "custom"))["spec"].get("nodeName") is None
    assert (await get_pod(plane, "pinned"))["spec"]["nodeName"] == "b"


async def test_no_nodes(plane: ControlPlane) -> None:
    await add_pods(plane, pod_obj("lonely"))
    cond = await eventually(lambda: unschedulable_condition(plane, "lonely"))
    assert cond["message"] == "0/0 nodes are available: no nodes available to schedule pods."
    await add_nodes(plane, node_obj("first"))
    assert await eventually(lambda: placements(plane, ["lonely"])) == {"lonely": "first"}


async def test_uncordon_schedules_waiting_pods(plane: ControlPlane) -> None:
    await add_nodes(plane, node_obj("n", unschedulable=True))
    await add_pods(plane, pod_obj("waiting"))
    await eventually(lambda: unschedulable_condition(plane, "waiting"))

    def uncordon(obj: Obj) -> Obj:
        obj["spec"]["unschedulable"] = False
        return obj

    await plane.registry.patch(NODE, None, "n", uncordon)
    assert await eventually(lambda: placements(plane, ["waiting"])) == {"waiting": "n"}


async def test_standalone_scheduler_runs_its_own_informers(tmp_path: Path) -> None:
    config = load_config(None, data_dir=tmp_path)
    store = open_store(config)
    await store.open()
    registry = Registry(store, config.network.service_cidr)
    await registry.ensure_system_namespaces()
    scheduler = Scheduler(registry, config)
    task = asyncio.create_task(scheduler.run())
    try:
        await registry.create(NODE, None, node_obj("solo"))
        await registry.create(POD, "default", pod_obj("p"))

        async def bound() -> str | None:
            node: str | None = (await registry.get(POD, "default", "p")).obj["spec"].get("nodeName")
            return node

        assert await eventually(bound) == "solo"
        assert scheduler.bound == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.close()


async def test_pod_bound_by_someone_else_meanwhile_is_dropped(
    plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_nodes(plane, node_obj("mine"), node_obj("theirs", cpu="1"))
    real_bind = plane.registry.bind

    async def racing_bind(namespace: str, name: str, node: str) -> Any:
        await real_bind(namespace, name, "theirs")  # another scheduler got there first
        return await real_bind(namespace, name, node)

    monkeypatch.setattr(plane.registry, "bind", racing_bind)
    await add_pods(plane, pod_obj("contested", cpu="100m"))
    assert await eventually(lambda: placements(plane, ["contested"])) == {"contested": "theirs"}
    await eventually(lambda: _cached_on(plane, "default/contested", "theirs"))
    assert plane.scheduler.attempts == 1
    assert plane.scheduler.bound == 0


async def _cached_on(plane: ControlPlane, key: str, node: str) -> bool:
    return plane.scheduler.cache.pod_node(key) == node and not plane.scheduler.cache.is_assumed(key)


async def test_failed_binding_is_retried_after_a_backoff(
    plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_nodes(plane, node_obj("n"))
    real_bind = plane.registry.bind
    calls = 0

    async def flaky_bind(namespace: str, name: str, node: str) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ApiError(500, "InternalError", "the store is having a bad day")
        return await real_bind(namespace, name, node)

    monkeypatch.setattr(plane.registry, "bind", flaky_bind)
    await add_pods(plane, pod_obj("unlucky", cpu="100m"))
    assert await eventually(lambda: placements(plane, ["unlucky"])) == {"unlucky": "n"}
    assert calls == 2
    assert plane.scheduler.attempts == 2
