"""The ReplicaSet controller: keeps `spec.replicas` active pods per ReplicaSet."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable
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
from control.controllers.expectations import Expectations
from control.controllers.objectmeta import Obj, is_deleting, labels_of, meta
from control.controllers.ownership import claim, selector_of
from control.controllers.podcontrol import PodControl, pod_from_template, write_status
from control.controllers.podstate import (
    TERMINAL_PHASES,
    available_in,
    is_pod_active,
    is_pod_ready,
)
from control.errors import ApiError
from control.objects.conditions import ready_condition
from control.objects.kinds import POD, REPLICASET, object_key

if TYPE_CHECKING:
    from control.controllers.manager import ControllerManager

log = logging.getLogger(__name__)

COMPONENT = "replicaset-controller"
# At most this many creates or deletes per sync, as Kubernetes' burstReplicas.
BURST_REPLICAS = 500


# -- pods ----------------------------------------------------------------------


def _sync_view(pod: Obj) -> tuple[Any, ...]:
    """What of a pod a ReplicaSet's sync reads to decide and to count: owners,
    labels, deletion, a terminal phase (these three make it active or not), and
    its readiness with its time (for availability). A change elsewhere needs no sync."""
    m = meta(pod)
    ready = ready_condition(pod) or {}
    return (
        m.get("ownerReferences"),
        m.get("labels"),
        bool(m.get("deletionTimestamp")),
        (pod.get("status") or {}).get("phase") in TERMINAL_PHASES,
        ready.get("status"),
        ready.get("lastTransitionTime"),
    )


def restart_count(pod: Obj) -> int:
    return sum(
        int(s.get("restartCount") or 0)
        for s in (pod.get("status") or {}).get("containerStatuses") or ()
    )


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_rank(pod: Obj) -> tuple[int, int, int, float, int]:
    """Sort key: the pods to delete first come first. Unscheduled before
    scheduled, Pending before Unknown before Running, not ready before ready,
    newest first, then the most restarted."""
    created = rfc3339_seconds(meta(pod).get("creationTimestamp"))
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        _PHASE_RANK.get(str((pod.get("status") or {}).get("phase")), 0),
        1 if is_pod_ready(pod) else 0,
        -(created if created is not None else float("inf")),
        -restart_count(pod),
    )


async def slow_start(count: int, make: Callable[[], Awaitable[None]], initial: int = 1) -> int:
    """Run `make` `count` times in doubling batches, stopping at a batch with a
    failure (Kubernetes' slowStartBatch). Returns how many succeeded; raises the
    first error after the batch it happened in."""
    done, batch = 0, min(count, initial)
    while batch > 0:
        results = await asyncio.gather(*(make() for _ in range(batch)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        done += batch - len(failures)
        if failures:
            raise failures[0]
        batch = min(2 * batch, count - done)
    return done


# -- the controller ------------------------------------------------------------


class ReplicaSetController(QueueController):
    name = COMPONENT

    def __init__(self, manager: ControllerManager, config: Config, *, workers: int = 4) -> None:
        super().__init__(manager, config, workers=workers)
        self.pods = self.informer(POD, claimable=True)
        self.replicasets = self.informer(REPLICASET, claimable=True)
        self.expectations = Expectations()
        self.pod_control = PodControl(self.registry, self.recorder, self.expectations)
        self.replicasets.add_handler(self._on_replicaset)
        self.pods.add_handler(self._on_pod)

    # -- event handlers ------------------------------------------------------

    def _on_replicaset(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = event_object(old, new)
        key = object_key(obj)
        if kind == "DELETED":
            self.expectations.forget(key)
        self.queue.add(key)

    def _owner_key(self, pod: Obj) -> str | None:
        """The key of the ReplicaSet controlling `pod`, if it is one we know."""
        return owner_key(self.replicasets, "ReplicaSet", pod)

    def _enqueue_matching(self, pod: Obj) -> None:
        """An orphan: wake every ReplicaSet that could adopt it."""
        if is_deleting(pod):
            return
        for key in selecting_keys(self.replicasets, pod):
            self.queue.add(key)

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if kind == "ADDED":
            assert new is not None
            ref = controller_ref(new)
            key = self._owner_key(new)
            if key is None:
                if ref is None:
                    self._enqueue_matching(new)
                return
            if is_deleting(new):
                self.expectations.deletion_observed(key, object_key(new))
            else:
                self.expectations.creation_observed(key)
            self.queue.add(key)
        elif kind == "MODIFIED":
            assert old is not None and new is not None
            ref, old_ref = controller_ref(new), controller_ref(old)
            if ref is None and old_ref is None:  # an orphan before and after
                if labels_of(old) != labels_of(new):
                    self._enqueue_matching(new)
                return
            if (ref is not None or old_ref is not None) and _sync_view(old) == _sync_view(new):
                return  # a change a sync would not see (a binding, a container's state)
            key = self._owner_key(new)
            if is_deleting(new) and not is_deleting(old) and key is not None:
                self.expectations.deletion_observed(key, object_key(new))
            old_key = self._owner_key(old)
            if old_key is not None and old_key != key:
                self.queue.add(old_key)
            if key is not None:
                self.queue.add(key)
            elif ref is None and (labels_of(old) != labels_of(new) or old_ref is not None):
                self._enqueue_matching(new)
        else:
            assert old is not None
            key = self._owner_key(old)
            if key is not None:
                self.expectations.deletion_observed(key, object_key(old))
                self.queue.add(key)

    async def reconcile(self, key: str) -> float | None:
        rs = self.replicasets.get(key)
        if rs is None:
            self.expectations.forget(key)
            return None
        selector = selector_of(rs)
        if selector is None or selector.empty:
            return None
        candidates = [p for p in claim_candidates(self.pods, rs) if is_pod_active(p)]
        pods = await claim(self.registry, POD, rs, REPLICASET, selector, candidates)
        failure: ApiError | None = None
        create_failed = False
        if self.expectations.satisfied(key) and not is_deleting(rs):
            diff = len(pods) - int((rs.get("spec") or {}).get("replicas", 1))
            try:
                if diff < 0:
                    await self._create(key, rs, min(-diff, BURST_REPLICAS))
                elif diff > 0:
                    victims = sorted(pods, key=deletion_rank)[: min(diff, BURST_REPLICAS)]
                    self.expectations.expect(key, deletes=[object_key(p) for p in victims])
                    await self.pod_control.delete_all(key, rs, victims)
            except ApiError as e:
                failure, create_failed = e, diff < 0
        again = await self._update_status(rs, pods, failure if create_failed else None)
        if failure is not None:
            raise failure
        return again

    async def _create(self, key: str, rs: Obj, count: int) -> None:
        template = (rs.get("spec") or {}).get("template") or {}
        body = pod_from_template(rs, REPLICASET, template, f"{meta(rs).get('name')}-")
        self.expectations.expect(key, adds=count)
        attempted = 0

        async def create_one() -> None:
            nonlocal attempted
            attempted += 1
            await self.pod_control.create(key, rs, copy.deepcopy(body))

        try:
            created = await slow_start(count, create_one)
        except ApiError as e:
            for _ in range(count - attempted):  # skipped creates: no event will come
                self.expectations.creation_observed(key)
            await self.recorder.record(rs, "Warning", "FailedCreate", f"Error creating: {e}")
            raise
        log.debug("%s: created %d pods", key, created)

    async def _update_status(
        self, rs: Obj, pods: list[Obj], create_failure: ApiError | None
    ) -> float | None:
        spec = rs.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        now = time.time()
        ready = available = labeled = 0
        wait: float | None = None
        for pod in pods:
            labels = labels_of(pod)
            if all(labels.get(k) == v for k, v in template_labels.items()):
                labeled += 1
            remaining = available_in(pod, min_ready, now)
            if remaining is None:
                continue
            ready += 1
            if remaining == 0.0:
                available += 1
            else:
                wait = remaining if wait is None else min(wait, remaining)
        old = rs.get("status") or {}
        status: Obj = {
            "replicas": len(pods),
            "fullyLabeledReplicas": labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": int(meta(rs).get("generation") or 1),
        }
        conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        if create_failure is not None:
            conditions.append(
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreate",
                    "message": create_failure.message,
                }
            )
        if conditions:
            status["conditions"] = conditions
        if status != old:
            await write_status(self.registry, REPLICASET, rs, status)
        # A ready pod becomes available minReadySeconds later, with no event to say so.
        return None if wait is None else wait + 0.05
