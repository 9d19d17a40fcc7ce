"""The ReplicaSet controller, in-process, on hollow nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.protocol.primitives import controller_ref, now_rfc3339
from control.api.registry import Registry
from control.config import load_config
from control.controllers.expectations import Expectations
from control.controllers.manager import ControllerManager
from control.controllers.replicaset import ReplicaSetController, deletion_rank, slow_start
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.objects.kinds import DEPLOYMENT, NODE, POD, REPLICASET
from control.store.sqlite import SqliteStore
from tests.controllers.helpers import (
    NS,
    Observer,
    deployed,
    events,
    get,
    is_ready,
    pods,
    replicaset,
    replicasets,
    rolled_out,
    update,
)
from tests.controllers.hollow_nodes import HollowNodes, node_manifest, running_status
from tests.polling import eventually

Obj = dict[str, Any]


async def scale(registry: Registry, kind: Any, name: str, n: int) -> None:
    await registry.update_scale(kind, NS, name, lambda s: {**s, "spec": {"replicas": n}})


async def test_scale_0_50_3_converges_without_overshoot(
    plane: ControlPlane, kubelet: HollowNodes
) -> None:
    reg = plane.registry
    most = 0

    def count(obs: Observer) -> None:
        nonlocal most
        most = max(most, len(obs.active_pods("web")))

    async with Observer(plane, count):
        await deployed(reg, replicas=0)
        assert await pods(reg, "web") == []

        await scale(reg, DEPLOYMENT, "web", 50)
        await rolled_out(reg, "web", within=20)
        up = await pods(reg, "web")
        assert len(up) == 50 and all(is_ready(p) for p in up)

        await scale(reg, DEPLOYMENT, "web", 3)
        await rolled_out(reg, "web")
    # Expectations: while its own creates were in flight, the controller never made more.
    assert most == 50

    (rs,) = await replicasets(reg, "web")
    assert rs["spec"]["replicas"] == 3
    assert rs["status"] == {
        "replicas": 3,
        "fullyLabeledReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "observedGeneration": rs["metadata"]["generation"],
    }
    assert len(await pods(reg, "web", terminating=True)) == 3
    name = rs["metadata"]["name"]
    assert len(await events(reg, "SuccessfulCreate")) == 50
    assert len(await events(reg, "SuccessfulDelete")) == 47
    scaling = {e["message"] for e in await events(reg, "ScalingReplicaSet")}
    assert f"Scaled up replica set {name} to 50" in scaling
    assert f"Scaled down replica set {name} to 3" in scaling
    created = (await events(reg, "SuccessfulCreate"))[0]
    assert created["source"] == {"component": "replicaset-controller"}
    assert created["involvedObject"]["kind"] == "ReplicaSet"


def _pod(name: str, app: str = "rs", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
        "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}], **spec},
    }


async def _set_status(
    registry: Registry, name: str, *, ready: bool | None = None, restarts: int = 0
) -> None:
    def change(pod: Obj) -> Obj:
        if ready is None:
            pod["status"] = {"phase": "Pending"}
        else:
            pod["status"] = running_status(pod, ready, "10.244.0.9", "192.168.100.1")
            for cs in pod["status"]["containerStatuses"]:
                cs["restartCount"] = restarts
        return pod

    await registry.patch(POD, NS, name, change, subresource="status")


async def test_scale_down_order(plane: ControlPlane) -> None:
    """Unscheduled, then Pending, then not ready, then newest, then most restarted."""
    reg = plane.registry
    await reg.create(NODE, None, node_manifest("node-1"))
    for name in ("old-ready", "old-restarts"):
        await reg.create(POD, NS, _pod(name, nodeName="node-1"))
    await _set_status(reg, "old-ready", ready=True)
    await _set_status(reg, "old-restarts", ready=True, restarts=5)
    # Creation times have one-second resolution: let the clock tick over.
    first = (await get(reg, POD, "old-ready"))["metadata"]["creationTimestamp"]

    async def ticked() -> bool:
        return now_rfc3339() > first

    await eventually(ticked, "the next second", within=3)
    await reg.create(POD, NS, _pod("new-ready", nodeName="node-1"))
    await _set_status(reg, "new-ready", ready=True)
    await reg.create(POD, NS, _pod("running-unready", nodeName="node-1"))
    await _set_status(reg, "running-unready", ready=False)
    await reg.create(POD, NS, _pod("pending", nodeName="node-1"))
    await reg.create(POD, NS, _pod("unscheduled", nodeSelector={"nowhere": "true"}))
    names = {"old-ready", "old-restarts", "new-ready", "running-unready", "pending", "unscheduled"}

    # The controllers must have seen the orphans, or the ReplicaSet would create pods.
    informer = plane.controllers.informer(POD)

    async def seen() -> bool:
        return all(informer.get(f"{NS}/{n}") for n in names)

    await eventually(seen, "the informer to see the pods", within=10.0)
    rs = (await reg.create(REPLICASET, NS, replicaset(replicas=6))).obj

    async def adopted() -> bool:
        live = await pods(reg, "rs")
        refs = [controller_ref(p) for p in live]
        return len(live) == 6 and all(r and r["uid"] == rs["metadata"]["uid"] for r in refs)

    await eventually(adopted, "the orphans to be adopted", within=10.0)
    assert {p["metadata"]["name"] for p in await pods(reg, "rs")} == names

    async def left() -> set[str] | None:
        live = {p["metadata"]["name"] for p in await pods(reg, "rs")}
        return live if live == names else None

    for gone in ("unscheduled", "pending", "running-unready", "new-ready", "old-restarts"):
        await scale(reg, REPLICASET, "rs", len(names) - 1)
        names.discard(gone)
        await eventually(left, f"{gone} to be deleted next", within=10.0)
    assert names == {"old-ready"}


async def test_adopts_orphans_and_releases_mismatches(
    plane: ControlPlane, kubelet: HollowNodes
) -> None:
    reg = plane.registry
    await reg.create(POD, NS, _pod("stray"))
    informer = plane.controllers.informer(POD)

    async def seen() -> bool:
        return informer.get(f"{NS}/stray") is not None

    await eventually(seen, "the informer to see the orphan", within=10.0)
    rs = (await reg.create(REPLICASET, NS, replicaset(replicas=2))).obj
    uid = rs["metadata"]["uid"]

    async def owned() -> list[Obj] | None:
        live = await pods(reg, "rs")
        ok = len(live) == 2 and all((controller_ref(p) or {}).get("uid") == uid for p in live)
        return live if ok and all(is_ready(p) for p in live) else None

    live = await eventually(owned, "two owned, ready pods", within=10.0)
    assert "stray" in {p["metadata"]["name"] for p in live}
    ref = controller_ref(live[0])
    assert ref is not None
    assert {
        k: ref[k] for k in ("apiVersion", "kind", "name", "controller", "blockOwnerDeletion")
    } == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "rs",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    made = next(p for p in live if p["metadata"]["name"] != "stray")
    assert made["metadata"]["name"].startswith("rs-")
    assert made["metadata"]["labels"] == {"app": "rs"}

    # A pod relabelled out of the selector is let go, and replaced.
    def relabel(pod: Obj) -> None:
        pod["metadata"]["labels"] = {"app": "elsewhere"}

    await update(reg, POD, "stray", relabel)

    async def released() -> bool:
        stray = await get(reg, POD, "stray")
        return not stray["metadata"].get("ownerReferences") and len(await owned() or []) == 2

    await eventually(released, "the relabelled pod to be released and replaced", within=10.0)
    assert "stray" not in {p["metadata"]["name"] for p in await pods(reg, "rs")}


async def test_replaces_deleted_and_failed_pods(plane: ControlPlane, kubelet: HollowNodes) -> None:
    reg = plane.registry
    await reg.create(REPLICASET, NS, replicaset(replicas=2))

    async def ready_pods() -> list[Obj] | None:
        live = await pods(reg, "rs", terminating=True)
        return live if len(live) == 2 and all(is_ready(p) for p in live) else None

    first = await eventually(ready_pods, "two ready pods", within=10.0)
    victim, failing = (p["metadata"]["name"] for p in first)
    await reg.delete(POD, NS, victim)

    def fail(pod: Obj) -> Obj:
        pod["status"]["phase"] = "Failed"
        return pod

    await reg.patch(POD, NS, failing, fail, subresource="status")

    async def replaced() -> list[Obj] | None:
        live = [p for p in await pods(reg, "rs") if p["status"].get("phase") != "Failed"]
        names = {p["metadata"]["name"] for p in live}
        ok = len(live) == 2 and not names & {victim, failing} and all(is_ready(p) for p in live)
        return live if ok else None

    await eventually(replaced, "replacements for the deleted and the failed pod", within=10.0)

    async def counted() -> bool:
        status = (await get(reg, REPLICASET, "rs"))["status"]
        return bool(status["replicas"] == status["readyReplicas"] == 2)

    # The Failed pod still exists, but no longer counts.
    await eventually(counted, "the status to count the two replacements only", within=10.0)
    assert failing in {p["metadata"]["name"] for p in await pods(reg, "rs")}


async def test_available_replicas_honour_min_ready_seconds(
    plane: ControlPlane, kubelet: HollowNodes
) -> None:
    reg = plane.registry
    await reg.create(REPLICASET, NS, replicaset(replicas=2, minReadySeconds=2))

    async def status(ready: int, available: int) -> bool:
        s = (await get(reg, REPLICASET, "rs")).get("status") or {}
        return s.get("readyReplicas") == ready and s.get("availableReplicas") == available

    await eventually(lambda: status(2, 0), "ready but not yet available", within=5)
    await eventually(lambda: status(2, 2), "available after minReadySeconds", within=5)


async def test_expectations_hold_back_until_own_writes_are_seen(tmp_path: Path) -> None:
    """With an informer that lags (here: frozen), a second sync must not create or
    delete again: the controller waits to see its own writes."""
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    try:
        reg = Registry(store, "10.96.0.0/12")
        await reg.ensure_system_namespaces()
        config = load_config(None, data_dir=tmp_path)
        manager = ControllerManager(reg, config, controllers=[])  # informers never run
        ctl = ReplicaSetController(manager, config)
        rs_informer, pod_informer = manager.informer(REPLICASET), manager.informer(POD)
        rs = (await reg.create(REPLICASET, NS, replicaset(replicas=5))).obj
        rs_informer._put(rs)

        await ctl.reconcile(f"{NS}/rs")
        await ctl.reconcile(f"{NS}/rs")  # the informer has seen none of the five
        created = await pods(reg, "rs")
        assert len(created) == 5
        assert not ctl.expectations.satisfied(f"{NS}/rs")
        for pod in created:
            pod_informer._put(pod)
        assert ctl.expectations.satisfied(f"{NS}/rs")
        await ctl.reconcile(f"{NS}/rs")
        assert len(await pods(reg, "rs")) == 5

        rs = (await reg.get(REPLICASET, NS, "rs")).obj
        rs["spec"]["replicas"] = 2
        rs_informer._put((await reg.update(REPLICASET, NS, "rs", rs)).obj)
        await ctl.reconcile(f"{NS}/rs")
        await ctl.reconcile(f"{NS}/rs")  # the deletions are not seen yet either
        assert len(await pods(reg, "rs")) == 2
        assert not ctl.expectations.satisfied(f"{NS}/rs")
        for pod in created:
            if await pod_alive(reg, pod) is None:
                pod_informer._delete(f"{NS}/{pod['metadata']['name']}")
        assert ctl.expectations.satisfied(f"{NS}/rs")
    finally:
        await store.close()


async def pod_alive(registry: Registry, pod: Obj) -> Obj | None:
    try:
        return (await registry.get(POD, NS, pod["metadata"]["name"])).obj
    except ApiError:
        return None


# -- units ---------------------------------------------------------------------------


def _ranked(name: str, *, node: str = "", phase: str = "Running", ready: bool = True,
            created: str = "2024-01-01T00:00:00Z", restarts: int = 0) -> Obj:  # fmt: skip
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "c", "restartCount": restarts}],
        },
    }


def test_deletion_rank() -> None:
    pods_ = [
        _ranked("old", node="n"),
        _ranked("restarts", node="n", restarts=3),
        _ranked("newer", node="n", created="2024-01-01T00:00:05Z"),
        _ranked("unready", node="n", ready=False),
        _ranked("pending", node="n", phase="Pending", ready=False),
        _ranked("unscheduled", phase="Pending", ready=False),
    ]
    order = [p["metadata"]["name"] for p in sorted(pods_, key=deletion_rank)]
    assert order == ["unscheduled", "pending", "unready", "newer", "restarts", "old"]


def test_expectations() -> None:
    e = Expectations()
    assert e.satisfied("ns/rs")
    e.expect("ns/rs", adds=2)
    e.creation_observed("ns/rs")
    assert not e.satisfied("ns/rs")
    e.creation_observed("ns/rs")
    assert e.satisfied("ns/rs")
    e.expect("ns/rs", deletes=["ns/a", "ns/b"])
    e.deletion_observed("ns/rs", "ns/a")
    e.deletion_observed("ns/rs", "ns/a")  # the same pod twice counts once
    assert not e.satisfied("ns/rs")
    e.deletion_observed("ns/rs", "ns/b")
    assert e.satisfied("ns/rs")
    expired = Expectations(ttl=0.0)
    expired.expect("ns/rs", adds=1)
    assert expired.satisfied("ns/rs")  # presumed lost after the TTL


async def test_slow_start_stops_at_the_first_failing_batch() -> None:
    calls = 0

    async def make() -> None:
        nonlocal calls
        calls += 1
        if calls > 4:
            raise RuntimeError("quota")

    assert await slow_start(3, make) == 3
    calls = 0
    try:
        await slow_start(50, make)
    except RuntimeError:
        pass
    else:
        raise AssertionError("slow_start swallowed the failure")
    assert calls == 7  # batches of 1, 2, 4: the third fails, no more are tried
