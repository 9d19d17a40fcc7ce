"""The DaemonSet controller: one pod per eligible node (Kubernetes'
pkg/controller/daemon).

A node is eligible when the pod template's nodeSelector and required node
affinity select it and the pod, with the tolerations every daemon pod gets,
tolerates its NoSchedule and NoExecute taints. Pods are created for one node
each through a required node affinity on `metadata.name` (matchFields), as
Kubernetes does, and the default scheduler binds them. Pods carry the
`controller-revision-hash` of their template; RollingUpdate replaces old pods
node by node within maxUnavailable (or first surges within maxSurge).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.protocol.primitives import controller_ref, rfc3339_seconds
from control.config import Config
from control.controllers.base import (
    QueueController,
    claim_candidates,
    event_object,
    owner_key,
    selecting_keys,
)
from control.controllers.deployment.templatehash import pod_template_hash
from control.controllers.objectmeta import Obj, is_deleting, labels_of, meta
from control.controllers.ownership import claim, selector_of
from control.controllers.podcontrol import gather_all, pod_from_template, write_status
from control.controllers.podstate import available_in, is_pod_ready
from control.errors import ApiError
from control.objects.kinds import DAEMONSET, NODE, POD, object_key
from control.objects.nodeaffinity import Toleration, required_terms, toleration
from control.objects.tolerations import NO_EXECUTE, NO_SCHEDULE, add_daemon_tolerations

if TYPE_CHECKING:
    from control.controllers.manager import ControllerManager

log = logging.getLogger(__name__)

COMPONENT = "daemonset-controller"
REVISION_HASH = "controller-revision-hash"
TEMPLATE_GENERATION = "pod-template-generation"


# -- which nodes ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    should_run: bool  # a daemon pod belongs here
    should_continue: bool  # a daemon pod already here may stay


def placement(template_spec: Obj, node: Obj) -> Placement:
    """Kubernetes' nodeShouldRunDaemonPod for one node."""
    name = str(meta(node).get("name"))
    spec = template_spec
    if spec.get("nodeName") and spec.get("nodeName") != name:
        return Placement(False, False)
    labels = meta(node).get("labels") or {}
    for key, want in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != want:
            return Placement(False, False)
    terms = required_terms(spec.get("affinity"))
    if terms is not None and not any(t.matches(labels, name) for t in terms):
        return Placement(False, False)
    with_daemon = {"tolerations": copy.deepcopy(spec.get("tolerations") or [])}
    add_daemon_tolerations(with_daemon)
    tolerations = [toleration(t) for t in with_daemon["tolerations"] if t]
    run = stay = True
    for taint in (node.get("spec") or {}).get("taints") or ():
        effect = taint.get("effect")
        if effect not in (NO_SCHEDULE, NO_EXECUTE) or _tolerated(tolerations, taint):
            continue
        run = False
        if effect == NO_EXECUTE:
            stay = False
    return Placement(run, stay)


def _tolerated(tolerations: list[Toleration], taint: Obj) -> bool:
    key, value, effect = str(taint.get("key")), str(taint.get("value") or ""), str(taint["effect"])
    return any(t.tolerates(key, value, effect) for t in tolerations)


def target_node(pod: Obj) -> str | None:
    """The node a daemon pod is for: its nodeName, or before it is bound the
    one its node affinity names (Kubernetes' GetTargetNodeName)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    for term in required_terms(spec.get("affinity")) or ():
        for req in term.fields:
            if req.key == "metadata.name" and req.operator == "In" and len(req.values) == 1:
                return next(iter(req.values))
    return None


def node_affinity_for(affinity: Any, node: str) -> Obj:
    """The pod's affinity with its required node selector replaced by one
    term naming `node` (Kubernetes' ReplaceDaemonSetPodNodeNameNodeAffinity)."""
    out: Obj = copy.deepcopy(affinity) if isinstance(affinity, dict) else {}
    node_affinity = out.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
        ]
    }
    return out


def scaled(value: Any, total: int, round_up: bool) -> int:
    """An int-or-percent of `total` (Kubernetes' GetScaledValueFromIntOrPercent)."""
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def _created(pod: Obj) -> float:
    return rfc3339_seconds(meta(pod).get("creationTimestamp")) or 0.0


# -- one sync's view -----------------------------------------------------------


@dataclass
class NodePods:
    node: str
    place: Placement
    pods: list[Obj] = field(default_factory=list)  # oldest first, not terminating


@dataclass
class Plan:
    create: list[str] = field(default_factory=list)  # node names
    delete: list[Obj] = field(default_factory=list)
    failed: list[tuple[Obj, str]] = field(default_factory=list)


class DaemonSetController(QueueController):
    name = COMPONENT

    def __init__(self, manager: ControllerManager, config: Config, *, workers: int = 2) -> None:
        super().__init__(manager, config, workers=workers)
        self.daemonsets = self.informer(DAEMONSET, handler=self.enqueue)
        self.nodes = self.informer(NODE, handler=self._on_node)
        self.pods = self.informer(POD, claimable=True, handler=self._on_pod)
        self.pod_control = self.new_pod_control()
        self.expectations = self.pod_control.expectations

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        pod = event_object(old, new)
        ref = controller_ref(pod)
        if ref is None:
            # An orphan: a DaemonSet may adopt it when it appears, loses its
            # owner or changes its labels (as Kubernetes' controller checks).
            if (
                new is not None
                and self.daemonsets.objects
                and not is_deleting(new)
                and (
                    old is None
                    or controller_ref(old) is not None
                    or labels_of(old) != labels_of(new)
                )
            ):
                for owner in selecting_keys(self.daemonsets, new):
                    self.queue.add(owner)
            return
        if ref.get("kind") != "DaemonSet":
            return
        key = owner_key(self.daemonsets, "DaemonSet", pod)
        if key is None:
            return
        self.pod_control.observe(key, kind, pod, new)
        self.queue.add(key)

    def _on_node(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if kind == "MODIFIED" and old is not None and new is not None:
            if meta(old).get("labels") == meta(new).get("labels") and old.get("spec") == new.get(
                "spec"
            ):
                return  # a heartbeat: nothing that decides placement
        for ds in self.daemonsets.list():
            self.queue.add(object_key(ds))

    # -- reconcile -------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        ds = self.daemonsets.get(key)
        selector = selector_of(ds) if ds is not None else None
        if ds is None or selector is None or selector.empty:
            return None
        owned = await claim(
            self.registry, POD, ds, DAEMONSET, selector, claim_candidates(self.pods, ds)
        )
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        collisions = (ds.get("status") or {}).get("collisionCount")
        current = pod_template_hash(template, collisions)
        by_node = self._by_node(template.get("spec") or {}, owned)
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = time.time()
        if self.expectations.satisfied(key) and not is_deleting(ds):
            strategy = spec.get("updateStrategy") or {}
            surge = scaled((strategy.get("rollingUpdate") or {}).get("maxSurge", 0), 1, True) > 0
            plan = self._manage(by_node, current if surge else None)
            if strategy.get("type", "RollingUpdate") == "RollingUpdate" and not plan.create:
                self._roll(plan, by_node, current, strategy.get("rollingUpdate") or {}, min_ready)
            await self._apply(key, ds, plan, current)
        return await self._update_status(ds, by_node, current, min_ready, now)

    def _by_node(self, template_spec: Obj, owned: list[Obj]) -> dict[str, NodePods]:
        by_node: dict[str, NodePods] = {}
        for node in self.nodes.list():
            name = str(meta(node).get("name"))
            by_node[name] = NodePods(name, placement(template_spec, node))
        for pod in sorted(owned, key=_created):
            node_name = target_node(pod)
            if is_deleting(pod):
                continue
            entry = by_node.get(node_name or "")
            if entry is None:  # its node is gone
                entry = by_node.setdefault(
                    f"\0{object_key(pod)}", NodePods("", Placement(False, False))
                )
            entry.pods.append(pod)
        return by_node

    def _manage(self, by_node: dict[str, NodePods], surge_hash: str | None) -> Plan:
        """Kubernetes' manage: a pod where one is missing, failed pods and
        extra pods away, pods off nodes that no longer take them. While a
        surge is allowed (`surge_hash`), a node may keep one old pod beside
        the oldest pod of the current template."""
        plan = Plan()
        for entry in by_node.values():
            if entry.place.should_run:
                failed = [p for p in entry.pods if (p.get("status") or {}).get("phase") == "Failed"]
                for pod in failed:
                    plan.failed.append((pod, entry.node))
                alive = [p for p in entry.pods if p not in failed]
                if not alive and not failed:
                    plan.create.append(entry.node)
                keep = alive[:1]
                if surge_hash is not None:
                    new = [p for p in alive if _hash_of(p) == surge_hash][:1]
                    old = [p for p in alive if _hash_of(p) != surge_hash][:1]
                    keep = new + old
                plan.delete.extend(p for p in alive if p not in keep)
                plan.delete.extend(failed)
            elif not entry.place.should_continue or not entry.node:
                plan.delete.extend(entry.pods)
        return plan

    def _roll(
        self,
        plan: Plan,
        by_node: dict[str, NodePods],
        current: str,
        rolling: Obj,
        min_ready: int,
    ) -> None:
        """RollingUpdate: replace old pods within maxUnavailable, or create new
        ones beside them within maxSurge."""
        now = time.time()
        wanted = [e for e in by_node.values() if e.place.should_run and e.node]
        desired = len(wanted)
        max_surge = scaled(rolling.get("maxSurge", 0), desired, True)
        max_unavailable = scaled(rolling.get("maxUnavailable", 1), desired, True)
        doomed = {object_key(p) for p in plan.delete}

        def available(pod: Obj) -> bool:
            return available_in(pod, min_ready, now) == 0.0

        if max_surge == 0:
            unavailable = sum(1 for e in wanted if not e.pods or not available(e.pods[0]))
            budget = max(max_unavailable, 1 if desired else 0) - unavailable
            old_available: list[Obj] = []
            for e in wanted:
                for pod in e.pods:
                    if _hash_of(pod) == current or object_key(pod) in doomed:
                        continue
                    if available(pod):
                        old_available.append(pod)
                    else:
                        plan.delete.append(pod)  # not serving anyway
            plan.delete.extend(old_available[: max(budget, 0)])
            return
        surging = sum(1 for e in wanted if any(_hash_of(p) == current for p in e.pods[1:]))
        for e in wanted:
            new = [p for p in e.pods if _hash_of(p) == current]
            old = [p for p in e.pods if _hash_of(p) != current]
            if not old:
                continue
            if new and available(new[0]):
                plan.delete.extend(p for p in old if object_key(p) not in doomed)
            elif not new and surging < max_surge:
                surging += 1
                plan.create.append(e.node)

    async def _apply(self, key: str, ds: Obj, plan: Plan, current: str) -> None:
        for pod, node in plan.failed:
            message = (
                f"Found failed daemon pod {object_key(pod)} on node {node}, will try to kill it"
            )
            await self.recorder.record(ds, "Warning", "FailedDaemonPod", message)
        deletes = list({object_key(p): p for p in plan.delete}.values())
        self.expectations.expect(
            key, adds=len(plan.create), deletes=[object_key(p) for p in deletes]
        )
        await gather_all(
            [
                *(self._create(key, ds, node, current) for node in plan.create),
                self.pod_control.delete_all(key, ds, deletes),
            ]
        )

    async def _create(self, key: str, ds: Obj, node: str, current: str) -> None:
        template = (ds.get("spec") or {}).get("template") or {}
        body = pod_from_template(ds, DAEMONSET, template, f"{meta(ds).get('name')}-")
        labels = body["metadata"].setdefault("labels", {})
        labels[REVISION_HASH] = current
        labels[TEMPLATE_GENERATION] = str(meta(ds).get("generation") or 1)
        spec = body["spec"]
        add_daemon_tolerations(spec)
        spec["affinity"] = node_affinity_for(spec.get("affinity"), node)
        try:
            await self.pod_control.create(key, ds, body)
        except ApiError as e:
            await self.recorder.record(ds, "Warning", "FailedCreate", f"Error creating: {e}")
            raise

    async def _update_status(
        self, ds: Obj, by_node: dict[str, NodePods], current: str, min_ready: int, now: float
    ) -> float | None:
        desired = scheduled = misscheduled = ready = updated = available = 0
        wait: float | None = None
        for entry in by_node.values():
            if not entry.node:
                continue
            if not entry.place.should_run:
                misscheduled += 1 if entry.pods else 0
                continue
            desired += 1
            if not entry.pods:
                continue
            scheduled += 1
            pod = entry.pods[0]
            if is_pod_ready(pod):
                ready += 1
                remaining = available_in(pod, min_ready, now)
                if remaining == 0.0:
                    available += 1
                elif remaining is not None:
                    wait = remaining if wait is None else min(wait, remaining)
            if any(_hash_of(p) == current for p in entry.pods):
                updated += 1
        old = ds.get("status") or {}
        status: Obj = {
            "currentNumberScheduled": scheduled,
            "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "observedGeneration": int(meta(ds).get("generation") or 1),
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
        }
        if desired - available:
            status["numberUnavailable"] = desired - available
        for kept in ("collisionCount", "conditions"):
            if kept in old:
                status[kept] = old[kept]
        if status != old:
            await write_status(self.registry, DAEMONSET, ds, status)
        return None if wait is None else wait + 0.05


def _hash_of(pod: Obj) -> str | None:
    return (meta(pod).get("labels") or {}).get(REVISION_HASH)
