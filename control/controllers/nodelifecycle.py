"""The node lifecycle controller: node health, condition taints and eviction.

- A node whose heartbeat (the Ready condition's lastHeartbeatTime) has not
  changed for `node_monitor_grace_period` gets its conditions set to Unknown
  and its pods marked not ready.
- Ready=Unknown taints the node `node.kubernetes.io/unreachable`, Ready=False
  `node.kubernetes.io/not-ready`, each NoSchedule and NoExecute; the taints go
  when the node is Ready again. A cordoned node (spec.unschedulable) is
  tainted `node.kubernetes.io/unschedulable:NoSchedule` until it is uncordoned.
- Pods on a node with NoExecute taints are evicted once their toleration runs
  out: `tolerationSeconds` of the matching tolerations, or
  `pod_eviction_timeout` for the not-ready and unreachable taints a pod does
  not tolerate (Kubernetes' DefaultTolerationSeconds). No agent can confirm
  that a pod on an unreachable node stopped, so those are force-deleted.
- Pods left terminating on an unreachable node past their grace period, or on
  a node that no longer exists, are force-deleted too (Kubernetes' pod GC).

Health is judged by when this controller saw the heartbeat change, on its own
monotonic clock, so clock skew between machines does not matter. Every wait
is a timer on the work queue; nothing polls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from agent.protocol.primitives import now_rfc3339, rfc3339_seconds
from control.config import Config
from control.controllers.base import Informers, QueueController, event_object
from control.controllers.objectmeta import Obj, is_deleting
from control.controllers.podstate import is_pod_ready
from control.errors import ApiError
from control.machinery.indexes import NODE_NAME_INDEX, pod_node_name
from control.objects.conditions import ready_condition
from control.objects.kinds import NODE, POD
from control.objects.tolerations import (
    NO_EXECUTE,
    NO_SCHEDULE,
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
)

log = logging.getLogger(__name__)

COMPONENT = "node-controller"
CONDITION_TAINTS = (UNREACHABLE, NOT_READY)
# The taints this controller keeps in line with the node.
MANAGED_TAINTS = (*CONDITION_TAINTS, UNSCHEDULABLE)
# The conditions a node agent reports, which go Unknown when it stops.
AGENT_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def _pod_name(pod: Obj) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


class _Changed(Exception):
    """The node changed since the decision was made; look again."""


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Kubernetes' Toleration.ToleratesTaint."""
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def sooner(a: float | None, b: float | None) -> float | None:
    """The shorter of two delays, where None is never."""
    if a is None:
        return b
    return a if b is None else min(a, b)


def toleration_seconds(pod: Obj, taints: list[Obj], default: float) -> float | None:
    """How long `pod` may stay on a node with these NoExecute taints: 0 to
    evict now, None to stay for good."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    limit: float | None = None
    for taint in taints:
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            if taint.get("key") not in CONDITION_TAINTS:
                return 0.0
            seconds: float | None = default
        else:
            bounded = [
                t["tolerationSeconds"] for t in matching if t.get("tolerationSeconds") is not None
            ]
            seconds = max(0.0, float(min(bounded))) if bounded else None
        limit = sooner(limit, seconds)
    return limit


class NodeLifecycleController(QueueController):
    name = COMPONENT

    def __init__(
        self,
        manager: Informers,
        config: Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(manager, config, workers=2)
        self.grace = config.controllers.node_monitor_grace_period
        self.eviction_timeout = config.controllers.pod_eviction_timeout
        self.nodes = self.informer(NODE)
        self.pods = self.informer(POD)
        self.pods.add_index(NODE_NAME_INDEX, pod_node_name)
        self._now = clock  # the event loop's clock too, so queue delays agree
        self._wall = wall_clock
        # node -> (the heartbeat last seen, when this controller saw it change)
        self._probes: dict[str, tuple[Any, float]] = {}
        # (node, taint key, effect) -> when the taint was first seen
        self._taint_since: dict[tuple[str, str, str], float] = {}
        # node -> when pods were first seen bound to it while it did not exist
        self._missing_since: dict[str, float] = {}
        # uids deleted by this controller whose deletion the cache has yet to show
        self._deleted: set[str] = set()
        self.nodes.add_handler(self._on_node)
        self.pods.add_handler(self._on_pod)

    def on_synced(self) -> None:
        for node in self.nodes.list():
            self.queue.add(str(node["metadata"]["name"]))

    # -- event handlers ------------------------------------------------------

    def _on_node(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = event_object(old, new)
        name = str(obj["metadata"]["name"])
        if new is None:
            self._probes.pop(name, None)
        else:
            self._observe(name, new)
        self.queue.add(name)

    def _observe(self, name: str, node: Obj) -> None:
        ready = ready_condition(node)
        beat = (ready or {}).get("lastHeartbeatTime")
        seen = self._probes.get(name)
        if seen is None or seen[0] != beat:
            self._probes[name] = (beat, self._now())

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        pod = event_object(old, new)
        if new is None:
            self._deleted.discard(str(pod["metadata"].get("uid")))
        for name in pod_node_name(pod):
            node = self.nodes.get(name)
            if node is None or self._troubled(node):
                self.queue.add(name)

    @staticmethod
    def _troubled(node: Obj) -> bool:
        ready = ready_condition(node)
        if ready is None or ready.get("status") != "True":
            return True
        taints = (node.get("spec") or {}).get("taints") or []
        return any(t.get("effect") == NO_EXECUTE for t in taints)

    # -- reconciling ---------------------------------------------------------

    async def reconcile(self, name: str) -> float | None:
        node = self.nodes.get(name)
        now = self._now()
        if node is None:
            self._forget_taints(name, set())
            return await self._collect_orphans(name, now)
        self._missing_since.pop(name, None)
        if name not in self._probes:
            self._observe(name, node)
        again: float | None = None
        ready = ready_condition(node)
        status = ready.get("status") if ready else None
        if status != "Unknown":
            age = now - self._probes[name][1]
            if age >= self.grace:
                await self._mark_unknown(node)
                return None  # the write comes back as an event
            again = self.grace - age
        if not await self._sync_taints(node, status):
            return None  # likewise
        again = sooner(again, await self._evict(node, status))
        return sooner(again, await self._collect_terminating(node, status))

    async def _mark_unknown(self, node: Obj) -> None:
        name = str(node["metadata"]["name"])
        seen_beat = (ready_condition(node) or {}).get("lastHeartbeatTime")
        never = seen_beat is None
        reason = "NodeStatusNeverUpdated" if never else "NodeStatusUnknown"
        message = (
            "Kubelet never posted node status." if never else "Kubelet stopped posting node status."
        )
        now = now_rfc3339()

        def build(obj: Obj) -> Obj:
            if (ready_condition(obj) or {}).get("lastHeartbeatTime") != seen_beat:
                raise _Changed
            status = obj.setdefault("status", {})
            conditions = {c.get("type"): c for c in status.get("conditions") or []}
            for kind in AGENT_CONDITIONS:
                c = conditions.get(kind)
                if c is None:
                    if kind != "Ready":
                        continue
                    c = {"type": "Ready"}
                    conditions["Ready"] = c
                if c.get("status") != "Unknown":
                    c["lastTransitionTime"] = now
                c.update(status="Unknown", reason=reason, message=message)
            status["conditions"] = list(conditions.values())
            return obj

        try:
            kv = await self.registry.patch(NODE, None, name, build, subresource="status")
        except _Changed:
            self.queue.add(name)
            return
        log.info("node %s: %s", name, message)
        await self.recorder.record(
            kv.obj, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady"
        )
        await self._mark_pods_not_ready(name)

    async def _mark_pods_not_ready(self, node: str) -> None:
        """As Kubernetes: pods on a node that stopped reporting are not ready."""
        now = now_rfc3339()
        for pod in self.pods.by_index(NODE_NAME_INDEX, node):
            meta = pod["metadata"]
            if not is_pod_ready(pod):
                continue
            uid = meta.get("uid")

            def build(obj: Obj, uid: Any = uid) -> Obj:
                if obj["metadata"].get("uid") != uid:
                    raise _Changed
                for c in (obj.get("status") or {}).get("conditions") or []:
                    if c.get("type") == "Ready" and c.get("status") == "True":
                        c.update(status="False", lastTransitionTime=now)
                return obj

            try:
                await self.registry.patch(
                    POD, meta["namespace"], meta["name"], build, subresource="status"
                )
            except (_Changed, ApiError):
                continue

    async def _sync_taints(self, node: Obj, status: str | None) -> bool:
        """Put the condition taints in line with Ready, and the unschedulable
        taint with spec.unschedulable; True when nothing had to change."""
        name = str(node["metadata"]["name"])
        want = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(status or "")
        spec = node.get("spec") or {}
        taints = spec.get("taints") or []
        have = {(t.get("key"), t.get("effect")) for t in taints if t.get("key") in MANAGED_TAINTS}
        wanted = {(want, e) for e in (NO_SCHEDULE, NO_EXECUTE)} if want else set()
        if spec.get("unschedulable"):
            wanted.add((UNSCHEDULABLE, NO_SCHEDULE))
        self._forget_taints(name, {(str(t.get("key")), str(t.get("effect"))) for t in taints})
        if have == wanted:
            return True
        now = now_rfc3339()

        def build(obj: Obj) -> Obj:
            spec = obj.setdefault("spec", {})
            want_here = {w for w in wanted if w[0] != UNSCHEDULABLE}
            if spec.get("unschedulable"):  # as stored now: a cordon may have raced
                want_here.add((UNSCHEDULABLE, NO_SCHEDULE))
            kept = [
                t
                for t in spec.get("taints") or []
                if t.get("key") not in MANAGED_TAINTS
                or (t.get("key"), t.get("effect")) in want_here
            ]
            present = {(t.get("key"), t.get("effect")) for t in kept}
            for key, effect in sorted(want_here - present):
                kept.append({"key": key, "effect": effect, "timeAdded": now})
            if kept:
                spec["taints"] = kept
            else:
                spec.pop("taints", None)
            return obj

        await self.registry.patch(NODE, None, name, build)
        if wanted - have:
            for key, effect in wanted - have:
                self._taint_since[(name, str(key), effect)] = self._now()
            log.info("node %s: tainted %s", name, ", ".join(sorted({k for k, _ in wanted - have})))
        return False

    def _forget_taints(self, node: str, present: set[tuple[str, str]]) -> None:
        for k in [k for k in self._taint_since if k[0] == node and (k[1], k[2]) not in present]:
            del self._taint_since[k]

    def _since(self, node: str, taint: Obj) -> float:
        """When this NoExecute taint started, on the monotonic clock."""
        k = (node, str(taint.get("key")), str(taint.get("effect")))
        since = self._taint_since.get(k)
        if since is None:
            now = self._now()
            added = rfc3339_seconds(taint.get("timeAdded"))
            since = now - max(0.0, self._wall() - added) if added is not None else now
            self._taint_since[k] = since
        return since

    async def _evict(self, node: Obj, status: str | None) -> float | None:
        name = str(node["metadata"]["name"])
        taints = [
            t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == NO_EXECUTE
        ]
        if not taints:
            return None
        started = min(self._since(name, t) for t in taints)
        elapsed = self._now() - started

        def due_in(pod: Obj) -> float | None:
            if is_deleting(pod):
                return None
            allowed = toleration_seconds(pod, taints, self.eviction_timeout)
            return None if allowed is None else max(allowed - elapsed, 0.0)

        return await self._delete_when_due(
            name,
            due_in,
            status == "Unknown",  # force: nobody can confirm the pod stopped
            "TaintManagerEviction",
            lambda pod: f"Marking for deletion Pod {_pod_name(pod)}",
        )

    async def _collect_terminating(self, node: Obj, status: str | None) -> float | None:
        """Pods terminating on an unreachable node: force-delete past their grace."""
        if status != "Unknown":
            return None
        name = str(node["metadata"]["name"])
        wall = self._wall()

        def due_in(pod: Obj) -> float | None:
            deadline = rfc3339_seconds(pod["metadata"].get("deletionTimestamp"))
            if deadline is None:
                return None
            # + 1: timestamps have whole seconds
            return deadline - wall + 1.0 if deadline > wall else 0.0

        return await self._delete_when_due(
            name,
            due_in,
            True,
            "NodeUnreachable",
            lambda pod: f"Deleting Pod {_pod_name(pod)}: its node {name} is unreachable",
        )

    async def _delete_when_due(
        self,
        node: str,
        due_in: Callable[[Obj], float | None],
        force: bool,
        reason: str,
        message: Callable[[Obj], str],
    ) -> float | None:
        """Delete the node's pods that are due (`due_in` is 0; None: never);
        returns the seconds until the next one is, or None."""
        again: float | None = None
        for pod in self.pods.by_index(NODE_NAME_INDEX, node):
            wait = due_in(pod)
            if wait is None:
                continue
            if wait > 0:
                again = sooner(again, wait)
                continue
            await self._delete_pod(pod, force, reason, message(pod))
        return again

    async def _collect_orphans(self, node: str, now: float) -> float | None:
        """Pods bound to a node that does not exist: nothing runs them. As
        Kubernetes' pod GC, wait a grace period first (the node may be about
        to register), then force-delete them."""
        pods = self.pods.by_index(NODE_NAME_INDEX, node)
        if not pods:
            self._missing_since.pop(node, None)
            return None
        wait = self.grace - (now - self._missing_since.setdefault(node, now))
        if wait > 0:
            return wait
        for pod in pods:
            message = f"Deleting Pod {_pod_name(pod)}: its node {node} does not exist"
            await self._delete_pod(pod, True, "NodeDeleted", message)
        return None

    async def _delete_pod(self, pod: Obj, force: bool, reason: str, message: str) -> None:
        meta = pod["metadata"]
        uid = str(meta.get("uid"))
        if uid in self._deleted:
            return
        log.info("%s: %s", reason, message)
        # Recorded first, as Kubernetes' taint manager does: the pod may be gone a moment later.
        await self.recorder.record(pod, "Normal", reason, message)
        try:
            await self.registry.delete(
                POD,
                meta["namespace"],
                meta["name"],
                expected_uid=meta.get("uid"),
                grace_period_seconds=0 if force else None,
            )
        except ApiError as e:
            if e.code not in (404, 409):
                raise
        else:
            if force:
                self._deleted.add(uid)
