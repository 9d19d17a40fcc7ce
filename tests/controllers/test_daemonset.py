"""The DaemonSet controller, in-process, on hollow nodes."""

from __future__ import annotations

from typing import Any

from control.controllers.daemonset import REVISION_HASH, node_affinity_for, placement, target_node
from control.controlplane import ControlPlane
from control.objects.kinds import DAEMONSET, NODE, POD
from tests.controllers.helpers import NS, Observer, events, get, is_ready, pods, update
from tests.controllers.hollow_nodes import HollowNodes
from tests.manifests import workload
from tests.polling import eventually

Obj = dict[str, Any]


def daemonset(name: str = "agent", image: str = "busybox:1.36", **spec: Any) -> Obj:
    ds = workload("DaemonSet", name, 0, image, namespace=NS, **spec)
    del ds["spec"]["replicas"]
    return ds


async def settled(plane: ControlPlane, name: str, desired: int, within: float = 15) -> Obj:
    """Wait until the DaemonSet has `desired` ready, updated pods and says so."""

    async def check() -> Obj | None:
        ds = await get(plane.registry, DAEMONSET, name)
        status = ds.get("status") or {}
        live = await pods(plane.registry, name)
        done = (
            status.get("observedGeneration") == ds["metadata"]["generation"]
            and status.get("desiredNumberScheduled") == desired
            and status.get("updatedNumberScheduled") == desired
            and status.get("numberAvailable") == desired
            and len(live) == desired
            and all(is_ready(p) for p in live)
        )
        return ds if done else None

    return await eventually(check, f"daemonset {name} at {desired}", within=within)


async def created(plane: ControlPlane) -> Obj:
    """The DaemonSet `agent`, once it runs on the three hollow nodes."""
    await plane.registry.create(DAEMONSET, NS, daemonset())
    return await settled(plane, "agent", 3)


def test_placement_follows_selector_affinity_and_taints() -> None:
    node = {
        "metadata": {"name": "n1", "labels": {"disk": "ssd"}},
        "spec": {
            "unschedulable": True,
            "taints": [
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
            ],
        },
    }
    assert placement({"nodeSelector": {"disk": "ssd"}}, node).should_run
    assert not placement({"nodeSelector": {"disk": "hdd"}}, node).should_run
    gpu = {"key": "gpu", "value": "yes", "effect": "NoSchedule"}
    tainted = {**node, "spec": {"taints": [gpu]}}
    assert placement({}, tainted) == placement({}, tainted).__class__(False, True)
    tolerated = {"tolerations": [{"key": "gpu", "operator": "Equal", "value": "yes"}]}
    assert placement(tolerated, tainted).should_run
    evicting = {**node, "spec": {"taints": [{"key": "x", "effect": "NoExecute"}]}}
    assert not placement({}, evicting).should_continue
    affinity = node_affinity_for({"podAntiAffinity": {}}, "n1")
    assert placement({"affinity": affinity}, node).should_run
    assert not placement({"affinity": node_affinity_for(None, "n2")}, node).should_run
    assert target_node({"spec": {"affinity": affinity}}) == "n1"
    assert affinity["podAntiAffinity"] == {}


async def test_one_pod_per_node_with_daemon_tolerations(
    plane: ControlPlane, kubelet: HollowNodes
) -> None:
    ds = await created(plane)
    reg = plane.registry
    assert ds["status"]["currentNumberScheduled"] == 3
    assert ds["status"]["numberReady"] == 3
    assert ds["status"]["numberMisscheduled"] == 0
    live = await pods(reg, "agent")
    assert sorted(p["spec"]["nodeName"] for p in live) == ["node-1", "node-2", "node-3"]
    pod = live[0]
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert terms == {
        "nodeSelectorTerms": [
            {
                "matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}
                ]
            }
        ]
    }
    tolerations = {(t["key"], t["effect"]): t for t in pod["spec"]["tolerations"]}
    assert set(tolerations) == {
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    }
    assert all("tolerationSeconds" not in t for t in tolerations.values())
    assert pod["metadata"]["labels"][REVISION_HASH]
    assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
    assert len(await events(reg, "SuccessfulCreate")) == 3

    # A cordoned node keeps its daemon pod; a deleted pod comes back.
    await update(reg, NODE, "node-1", lambda n: n["spec"].update(unschedulable=True))
    await reg.delete(POD, NS, pod["metadata"]["name"])
    await settled(plane, "agent", 3)


async def test_node_selector_and_noexecute_taint(plane: ControlPlane, kubelet: HollowNodes) -> None:
    reg = plane.registry
    await update(reg, NODE, "node-2", lambda n: n["metadata"]["labels"].update(role="edge"))
    await update(reg, NODE, "node-3", lambda n: n["metadata"]["labels"].update(role="edge"))
    ds = daemonset()
    ds["spec"]["template"]["spec"]["nodeSelector"] = {"role": "edge"}
    await reg.create(DAEMONSET, NS, ds)
    await settled(plane, "agent", 2)
    assert sorted(p["spec"]["nodeName"] for p in await pods(reg, "agent")) == ["node-2", "node-3"]

    def taint(n: Obj) -> None:
        n["spec"]["taints"] = [{"key": "evict", "value": "now", "effect": "NoExecute"}]

    await update(reg, NODE, "node-3", taint)
    await settled(plane, "agent", 1)
    assert [p["spec"]["nodeName"] for p in await pods(reg, "agent")] == ["node-2"]


async def test_rolling_update_within_max_unavailable(
    plane: ControlPlane, kubelet: HollowNodes
) -> None:
    old = await created(plane)
    reg = plane.registry
    old_hash = (await pods(reg, "agent"))[0]["metadata"]["labels"][REVISION_HASH]
    fewest = 3

    def count(obs: Observer) -> None:
        nonlocal fewest
        ready = [p for p in obs.active_pods("agent") if is_ready(p)]
        fewest = min(fewest, len(ready))

    async with Observer(plane, count):

        def new_image(d: Obj) -> None:
            d["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.37"

        await update(reg, DAEMONSET, "agent", new_image)
        ds = await settled(plane, "agent", 3, within=30)
    assert ds["metadata"]["generation"] == old["metadata"]["generation"] + 1
    hashes = {p["metadata"]["labels"][REVISION_HASH] for p in await pods(reg, "agent")}
    assert len(hashes) == 1 and old_hash not in hashes
    assert fewest >= 2  # maxUnavailable 1
