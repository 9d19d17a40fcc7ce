"""The ReplicaSet controller: keeps `spec.replicas` active pods per ReplicaSet.

It also holds what the workload controllers share: controller references and
claiming (adopt orphans, release strays), pod activity, readiness and
availability, and client-go's expectations.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from control import errors
from control.api.registry import Registry
from control.config import Config
from control.controllers.base import run_workers
from control.errors import ApiError
from control.machinery.events import EventRecorder
from control.machinery.queue import WorkQueue
from control.objects.kinds import POD, REPLICASET, ResourceType, object_key
from control.objects.selectors import LabelSelector, SelectorError, selector_from_match

if TYPE_CHECKING:
    from control.controllers.manager import ControllerManager

log = logging.getLogger(__name__)

Obj = dict[str, Any]

COMPONENT = "replicaset-controller"
# Index of objects by the uid of their controller (ownerReference with controller: true).
CONTROLLER_UID_INDEX = "controller-uid"
# Index of objects without a controller, by namespace: candidates for adoption.
ORPHAN_INDEX = "orphans"
# At most this many creates or deletes per sync, as Kubernetes' burstReplicas.
BURST_REPLICAS = 500
# Expectations older than this are presumed lost (a missed watch event) and ignored.
EXPECTATIONS_TTL = 300.0


# -- ownership ---------------------------------------------------------------


def meta(obj: Obj) -> dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def controller_ref(obj: Obj) -> dict[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def controller_uid_index(obj: Obj) -> list[str]:
    ref = controller_ref(obj)
    return [str(ref["uid"])] if ref and ref.get("uid") else []


def orphan_index(obj: Obj) -> list[str]:
    return [] if controller_ref(obj) else [str(meta(obj).get("namespace") or "")]


def owner_reference(owner: Obj, rt: ResourceType) -> dict[str, Any]:
    """A controller ownerReference to `owner`, as a workload controller sets it."""
    m = meta(owner)
    return {
        "apiVersion": rt.api_version,
        "kind": rt.kind,
        "name": m.get("name"),
        "uid": m.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_deleting(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def labels_of(obj: Obj) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def selector_of(obj: Obj) -> LabelSelector | None:
    """The compiled `spec.selector`, or None when it is unusable."""
    try:
        return selector_from_match((obj.get("spec") or {}).get("selector"))
    except SelectorError as e:
        log.warning("%s: invalid selector: %s", object_key(obj), e)
        return None


async def claim(
    registry: Registry,
    rt: ResourceType,
    owner: Obj,
    owner_rt: ResourceType,
    selector: LabelSelector,
    candidates: Iterable[Obj],
) -> list[Obj]:
    """The candidates `owner` controls, after adopting matching orphans and
    releasing owned objects the selector no longer matches (client-go's
    ControllerRefManager)."""
    uid = meta(owner).get("uid")
    owner_deleting = is_deleting(owner)
    claimed: list[Obj] = []
    for obj in candidates:
        ref = controller_ref(obj)
        matches = selector.matches(labels_of(obj))
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches:
                claimed.append(obj)
            elif not owner_deleting:
                await _release(registry, rt, obj, str(uid))
            continue
        if owner_deleting or is_deleting(obj) or not matches:
            continue
        adopted = await _adopt(registry, rt, obj, owner_reference(owner, owner_rt), selector)
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def _adopt(
    registry: Registry, rt: ResourceType, obj: Obj, ref: dict[str, Any], selector: LabelSelector
) -> Obj | None:
    m = meta(obj)

    def add_ref(current: Obj) -> Obj:
        if controller_ref(current) is not None or not selector.matches(labels_of(current)):
            raise errors.conflict(rt.plural, str(m.get("name")), rt.group, "no longer an orphan")
        cm = current.setdefault("metadata", {})
        cm["ownerReferences"] = [*(cm.get("ownerReferences") or []), ref]
        return current

    try:
        kv = await registry.patch(rt, m.get("namespace"), str(m.get("name")), add_ref)
    except ApiError as e:
        if e.code in (404, 409):
            return None
        raise
    log.info("%s %s adopted by %s %s", rt.kind, object_key(obj), ref["kind"], ref["name"])
    return kv.obj


async def _release(registry: Registry, rt: ResourceType, obj: Obj, owner_uid: str) -> None:
    m = meta(obj)

    def drop_ref(current: Obj) -> Obj:
        cm = current.setdefault("metadata", {})
        refs = [r for r in cm.get("ownerReferences") or [] if r.get("uid") != owner_uid]
        if refs:
            cm["ownerReferences"] = refs
        else:
            cm.pop("ownerReferences", None)
        return current

    try:
        await registry.patch(rt, m.get("namespace"), str(m.get("name")), drop_ref)
    except ApiError as e:
        if e.code != 404:
            raise


# -- pods ----------------------------------------------------------------------


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


_TERMINAL_PHASES = ("Succeeded", "Failed")


def is_pod_active(pod: Obj) -> bool:
    """Counts toward replicas: not terminating, not Succeeded or Failed."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in _TERMINAL_PHASES and not is_deleting(pod)


def _ready_condition(pod: Obj) -> dict[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c
    return None


def _sync_view(pod: Obj) -> tuple[Any, ...]:
    """What of a pod a ReplicaSet's sync reads to decide and to count: owners,
    labels, deletion, a terminal phase (these three make it active or not), and
    its readiness with its time (for availability). A change elsewhere needs no sync."""
    m = meta(pod)
    ready = _ready_condition(pod) or {}
    return (
        m.get("ownerReferences"),
        m.get("labels"),
        bool(m.get("deletionTimestamp")),
        (pod.get("status") or {}).get("phase") in _TERMINAL_PHASES,
        ready.get("status"),
        ready.get("lastTransitionTime"),
    )


def is_pod_ready(pod: Obj) -> bool:
    c = _ready_condition(pod)
    return c is not None and c.get("status") == "True"


def available_in(pod: Obj, min_ready_seconds: int, now: float) -> float | None:
    """Seconds until a ready pod counts as available (0: it is), or None if it is not ready."""
    c = _ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = parse_time(c.get("lastTransitionTime"))
    if since is None:
        return 0.0
    return max(0.0, since + min_ready_seconds - now)


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    return available_in(pod, min_ready_seconds, now) == 0.0


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
    created = parse_time(meta(pod).get("creationTimestamp"))
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        _PHASE_RANK.get(str((pod.get("status") or {}).get("phase")), 0),
        1 if is_pod_ready(pod) else 0,
        -(created if created is not None else float("inf")),
        -restart_count(pod),
    )


# -- expectations --------------------------------------------------------------


@dataclass
class _Expected:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    since: float = field(default_factory=time.monotonic)


class Expectations:
    """client-go's (UID-tracking) ControllerExpectations.

    A controller records the creates and deletes it issues; its informer's
    events lower them. Until they are all seen, the cache does not reflect the
    controller's own writes, and acting on it would create or delete twice.
    """

    def __init__(self, ttl: float = EXPECTATIONS_TTL) -> None:
        self._ttl = ttl
        self._by_key: dict[str, _Expected] = {}

    def satisfied(self, key: str) -> bool:
        e = self._by_key.get(key)
        if e is None or (e.adds <= 0 and not e.deletes):
            return True
        return time.monotonic() - e.since > self._ttl

    def expect(self, key: str, adds: int = 0, deletes: Iterable[str] = ()) -> None:
        self._by_key[key] = _Expected(adds, set(deletes))

    def creation_observed(self, key: str) -> None:
        e = self._by_key.get(key)
        if e is not None and e.adds > 0:
            e.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.deletes.discard(pod_key)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)


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


class ReplicaSetController:
    name = COMPONENT

    def __init__(self, manager: ControllerManager, config: Config, *, workers: int = 4) -> None:
        self.registry = manager.registry
        self.config = config
        self.workers = workers
        self.pods = manager.informer(POD)
        self.replicasets = manager.informer(REPLICASET)
        for informer in (self.pods, self.replicasets):
            informer.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
            informer.add_index(ORPHAN_INDEX, orphan_index)
        self.queue = WorkQueue()
        self.expectations = Expectations()
        self.recorder = EventRecorder(self.registry, COMPONENT)
        self.replicasets.add_handler(self._on_replicaset)
        self.pods.add_handler(self._on_pod)

    async def run(self) -> None:
        await asyncio.gather(self.pods.synced.wait(), self.replicasets.synced.wait())
        try:
            await run_workers(self.name, self.queue, self.reconcile, self.workers)
        except asyncio.CancelledError:
            self.queue.shutdown()
            raise

    # -- event handlers ------------------------------------------------------

    def _on_replicaset(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        key = object_key(obj)
        if kind == "DELETED":
            self.expectations.forget(key)
        self.queue.add(key)

    def _owner_key(self, pod: Obj, ref: dict[str, Any] | None) -> str | None:
        """The key of the ReplicaSet controlling `pod` (`ref` is its controller
        reference), if it is one we know."""
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        key = f"{meta(pod).get('namespace')}/{ref.get('name')}"
        rs = self.replicasets.get(key)
        if rs is None or meta(rs).get("uid") != ref.get("uid"):
            return None
        return key

    def _enqueue_matching(self, pod: Obj) -> None:
        """An orphan: wake every ReplicaSet that could adopt it."""
        if is_deleting(pod):
            return
        labels = labels_of(pod)
        for rs in self.replicasets.list(meta(pod).get("namespace")):
            selector = selector_of(rs)
            if selector is not None and not selector.empty and selector.matches(labels):
                self.queue.add(object_key(rs))

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if kind == "ADDED":
            assert new is not None
            ref = controller_ref(new)
            key = self._owner_key(new, ref)
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
            if (ref is not None or old_ref is not None) and _sync_view(old) == _sync_view(new):
                return  # a change a sync would not see (a binding, a container's state)
            key = self._owner_key(new, ref)
            if is_deleting(new) and not is_deleting(old) and key is not None:
                self.expectations.deletion_observed(key, object_key(new))
            old_key = self._owner_key(old, old_ref)
            if old_key is not None and old_key != key:
                self.queue.add(old_key)
            if key is not None:
                self.queue.add(key)
            elif ref is None and (labels_of(old) != labels_of(new) or old_ref is not None):
                self._enqueue_matching(new)
        else:
            assert old is not None
            key = self._owner_key(old, controller_ref(old))
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
        candidates = [
            *self.pods.by_index(CONTROLLER_UID_INDEX, str(meta(rs).get("uid"))),
            *self.pods.by_index(ORPHAN_INDEX, str(meta(rs).get("namespace"))),
        ]
        candidates = [p for p in candidates if is_pod_active(p)]
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
                    await self._delete(key, rs, victims)
            except ApiError as e:
                failure, create_failed = e, diff < 0
        again = await self._update_status(rs, pods, failure if create_failed else None)
        if failure is not None:
            raise failure
        return again

    async def _create(self, key: str, rs: Obj, count: int) -> None:
        m = meta(rs)
        ns = str(m.get("namespace"))
        template = (rs.get("spec") or {}).get("template") or {}
        tmeta = template.get("metadata") or {}
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": f"{m.get('name')}-",
                "namespace": ns,
                "ownerReferences": [owner_reference(rs, REPLICASET)],
            },
            "spec": template.get("spec") or {},
        }
        for field_name in ("labels", "annotations"):
            if tmeta.get(field_name):
                body["metadata"][field_name] = dict(tmeta[field_name])
        self.expectations.expect(key, adds=count)
        attempted = 0

        async def create_one() -> None:
            nonlocal attempted
            attempted += 1
            try:
                kv = await self.registry.create(POD, ns, copy.deepcopy(body))
            except BaseException:
                self.expectations.creation_observed(key)  # its event will never come
                raise
            name = meta(kv.obj).get("name")
            await self.recorder.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {name}")

        try:
            created = await slow_start(count, create_one)
        except ApiError as e:
            for _ in range(count - attempted):  # skipped creates: no event will come
                self.expectations.creation_observed(key)
            await self.recorder.record(rs, "Warning", "FailedCreate", f"Error creating: {e}")
            raise
        log.debug("%s: created %d pods", key, created)

    async def _delete(self, key: str, rs: Obj, victims: list[Obj]) -> None:
        self.expectations.expect(key, deletes=[object_key(p) for p in victims])

        async def delete_one(pod: Obj) -> None:
            pm = meta(pod)
            try:
                await self.registry.delete(
                    POD, pm.get("namespace"), str(pm.get("name")), expected_uid=pm.get("uid")
                )
            except ApiError as e:
                self.expectations.deletion_observed(key, object_key(pod))
                if e.code == 404:
                    return
                await self.recorder.record(
                    rs, "Warning", "FailedDelete", f"Error deleting: {e.message}"
                )
                raise
            await self.recorder.record(
                rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pm.get('name')}"
            )

        results = await asyncio.gather(*(delete_one(p) for p in victims), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

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
            m = meta(rs)

            def set_status(current: Obj) -> Obj:
                current["status"] = status
                return current

            try:
                await self.registry.patch(
                    REPLICASET,
                    m.get("namespace"),
                    str(m.get("name")),
                    set_status,
                    subresource="status",
                )
            except ApiError as e:
                if e.code != 404:
                    raise
        # A ready pod becomes available minReadySeconds later, with no event to say so.
        return None if wait is None else wait + 0.05
