"""A cordoned node carries `node.kubernetes.io/unschedulable:NoSchedule`, as
Kubernetes' node lifecycle controller puts it there, and the scheduler agrees
with it: only pods that tolerate it land there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from control.objects.kinds import NODE, POD
from tests.cluster import HollowCluster, condition, hollow_cluster, make_pod
from tests.polling import eventually

TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


Obj = dict[str, Any]


def _has_taint(node: Obj | None) -> bool:
    taints = ((node or {}).get("spec") or {}).get("taints") or []
    return any({"key": t.get("key"), "effect": t.get("effect")} == TAINT for t in taints)


async def test_cordon_taints_and_uncordon_untaints(tmp_path: Path) -> None:
    async with hollow_cluster(tmp_path, nodes=1) as cluster:
        await cluster.wait_nodes_ready()
        reg = cluster.registry
        await reg.patch(
            NODE, None, "node-1", lambda n: {**n, "spec": {**n["spec"], "unschedulable": True}}
        )
        await eventually(lambda: _tainted(cluster, True), "the unschedulable taint", within=10)

        await reg.create(POD, "default", make_pod("plain"))
        tolerant = make_pod("tolerant", tolerations=[{**TAINT, "operator": "Exists"}])
        await reg.create(POD, "default", tolerant)
        await cluster.wait_pod_running("tolerant")

        async def unschedulable() -> bool:
            pod = await cluster.pod("plain")
            scheduled = condition(pod, "PodScheduled") if pod else None
            return bool(scheduled) and "node(s) were unschedulable" in str(
                (scheduled or {}).get("message")
            )

        await eventually(unschedulable, "plain pod refused by the cordoned node", within=10)

        def uncordon(n: Obj) -> Obj:
            spec = dict(n["spec"])
            spec.pop("unschedulable", None)
            return {**n, "spec": spec}

        await reg.patch(NODE, None, "node-1", uncordon)
        await eventually(lambda: _tainted(cluster, False), "the taint gone", within=10)
        await cluster.wait_pod_running("plain")


async def _tainted(cluster: HollowCluster, wanted: bool) -> bool:
    node = await cluster.node("node-1")
    return _has_taint(node) == wanted
