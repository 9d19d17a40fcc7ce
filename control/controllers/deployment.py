"""The Deployment controller: one ReplicaSet per pod template, rolled by strategy.

It follows Kubernetes' controller (pkg/controller/deployment) closely: the
`pod-template-hash` label, revisions and their history, RollingUpdate with
maxSurge/maxUnavailable, Recreate, proportional scaling, pause, and the
Progressing and Available conditions.

One deliberate difference: rollout decisions count pods, not only ReplicaSet
specs and statuses. Per ReplicaSet, the size is max(spec.replicas, active pods
seen) and the available count is min(spec.replicas, available pods seen), so
pods still being deleted count against maxSurge, and pods about to be deleted
do not count as available. That keeps both bounds true at every observed
moment, not only once the ReplicaSets have caught up.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from control import errors
from control.api.registry import now_rfc3339
from control.config import Config
from control.controllers.base import run_workers
from control.controllers.replicaset import (
    CONTROLLER_UID_INDEX,
    ORPHAN_INDEX,
    claim,
    controller_ref,
    controller_uid_index,
    is_deleting,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    labels_of,
    meta,
    orphan_index,
    owner_reference,
    parse_time,
    selector_of,
)
from control.errors import ApiError
from control.machinery.events import EventRecorder
from control.machinery.queue import WorkQueue
from control.objects.kinds import DEPLOYMENT, POD, REPLICASET, object_key
from control.objects.revisions import (
    DESIRED_REPLICAS,
    HASH_LABEL,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    SKIP_ANNOTATIONS,
    equal_ignore_hash,
    revision,
)
from control.objects.selectors import LabelSelector

if TYPE_CHECKING:
    from control.controllers.manager import ControllerManager

log = logging.getLogger(__name__)

Obj = dict[str, Any]

COMPONENT = "deployment-controller"
NO_PROGRESS_DEADLINE = 2**31 - 1
_MAX_REVISION_HISTORY_CHARS = 2000

# Condition reasons, as Kubernetes names them.
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


# -- the pod template hash ---------------------------------------------------------

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels: no words, as Kubernetes


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def pod_template_hash(template: Obj, collision_count: int | None = None) -> str:
    """A short, stable hash of a pod template (Kubernetes' ComputeHash shape)."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0"
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(_fnv32a(data)))


# -- numbers -----------------------------------------------------------------------


def replicas(obj: Obj) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


def _status_int(obj: Obj, name: str) -> int:
    return int((obj.get("status") or {}).get(name) or 0)


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """An int-or-percent of `total`, rounded as Kubernetes rounds it."""
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(
    max_surge: int | str, max_unavailable: int | str, desired: int
) -> tuple[int, int]:
    """(surge, unavailable): surge rounds up, unavailable down; never both zero."""
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # validation forbids both zero, but rounding down can get there
    return surge, unavailable


def _strategy(d: Obj) -> Obj:
    return (d.get("spec") or {}).get("strategy") or {}


def is_rolling(d: Obj) -> bool:
    return _strategy(d).get("type", "RollingUpdate") == "RollingUpdate"


def _fenceposts(d: Obj) -> tuple[int, int]:
    ru = _strategy(d).get("rollingUpdate") or {}
    return resolve_fenceposts(
        ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), replicas(d)
    )


def max_surge(d: Obj) -> int:
    return _fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(_fenceposts(d)[1], replicas(d))


def _created(obj: Obj) -> tuple[float, str]:
    return (parse_time(meta(obj).get("creationTimestamp")) or 0.0, str(meta(obj).get("name")))


def _rv(obj: Obj) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


# -- annotations -------------------------------------------------------------------


def _annotations(obj: Obj) -> dict[str, str]:
    m = obj.setdefault("metadata", {})
    ann = m.get("annotations")
    if not isinstance(ann, dict):
        ann = m["annotations"] = {}
    return ann


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = _annotations(rs)
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """Copy the Deployment's annotations, and raise the revision (keeping the
    old one in the revision history when it is a rollback to this template)."""
    ann = _annotations(rs)
    changed = False
    for key, value in (meta(d).get("annotations") or {}).items():
        if key not in SKIP_ANNOTATIONS and ann.get(key) != value:
            ann[key] = value
            changed = True
    old = ann.get(REVISION)
    try:
        old_revision = int(old) if old else 0
    except ValueError:
        old_revision = 0
    if old_revision < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old:
            history = [r for r in ann.get(REVISION_HISTORY, "").split(",") if r]
            history.append(old)
            while len(",".join(history)) > _MAX_REVISION_HISTORY_CHARS and len(history) > 1:
                history.pop(0)
            ann[REVISION_HISTORY] = ",".join(history)
    if not exists:
        set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d))
        changed = True
    return changed


# -- conditions --------------------------------------------------------------------


def get_condition(status: Obj, type_: str) -> Obj | None:
    for c in status.get("conditions") or ():
        if c.get("type") == type_:
            return c
    return None


def new_condition(type_: str, status: str, reason: str, message: str) -> Obj:
    now = now_rfc3339()
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(status: Obj, cond: Obj) -> None:
    current = get_condition(status, cond["type"])
    if current is not None:
        if current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
            return
        if current.get("status") == cond["status"]:
            cond["lastTransitionTime"] = current.get("lastTransitionTime")
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: Obj, type_: str) -> None:
    kept = [c for c in status.get("conditions") or () if c.get("type") != type_]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: Obj) -> bool:
    deadline = (d.get("spec") or {}).get("progressDeadlineSeconds", 600)
    return deadline is not None and deadline != NO_PROGRESS_DEADLINE


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas(d)
    return (
        int(status.get("updatedReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
        and int(status.get("observedGeneration") or 0) >= int(meta(d).get("generation") or 1)
    )


def deployment_progressing(d: Obj, new: Obj) -> bool:
    old = d.get("status") or {}

    def n(s: Obj, k: str) -> int:
        return int(s.get(k) or 0)

    old_old = n(old, "replicas") - n(old, "updatedReplicas")
    new_old = n(new, "replicas") - n(new, "updatedReplicas")
    return (
        n(new, "updatedReplicas") > n(old, "updatedReplicas")
        or new_old < old_old
        or n(new, "readyReplicas") > n(old, "readyReplicas")
        or n(new, "availableReplicas") > n(old, "availableReplicas")
    )


def _deadline_left(d: Obj, status: Obj, now: float) -> float | None:
    """Seconds until the progress deadline of a rollout in progress, else None."""
    if not has_progress_deadline(d):
        return None
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT, PAUSED):
        return None
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    return since + int((d.get("spec") or {}).get("progressDeadlineSeconds", 600)) - now


def deployment_timed_out(d: Obj, status: Obj) -> bool:
    cond = get_condition(status, "Progressing")
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return True
    left = _deadline_left(d, status, time.time())
    return left is not None and left < 0


# -- the controller ----------------------------------------------------------------


@dataclass
class _Sync:
    """One reconcile's view: the Deployment and its ReplicaSets, kept current
    as the reconcile writes them."""

    d: Obj
    rss: dict[str, Obj] = field(default_factory=dict)  # uid -> ReplicaSet
    new_uid: str | None = None

    @property
    def new(self) -> Obj | None:
        return self.rss.get(self.new_uid) if self.new_uid else None

    @property
    def olds(self) -> list[Obj]:
        return sorted((rs for uid, rs in self.rss.items() if uid != self.new_uid), key=_created)

    def all(self) -> list[Obj]:
        new = self.new
        return [*self.olds, *([new] if new is not None else [])]

    def put(self, rs: Obj) -> Obj:
        self.rss[str(meta(rs).get("uid"))] = rs
        return rs


def _active(rss: Iterable[Obj]) -> list[Obj]:
    return [rs for rs in rss if replicas(rs) > 0]


class DeploymentController:
    name = COMPONENT

    def __init__(self, manager: ControllerManager, config: Config, *, workers: int = 2) -> None:
        self.registry = manager.registry
        self.config = config
        self.workers = workers
        self.deployments = manager.informer(DEPLOYMENT)
        self.replicasets = manager.informer(REPLICASET)
        self.pods = manager.informer(POD)
        for informer in (self.replicasets, self.pods):
            informer.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
            informer.add_index(ORPHAN_INDEX, orphan_index)
        self.queue = WorkQueue()
        self.recorder = EventRecorder(self.registry, COMPONENT)
        # ReplicaSets and Deployments as this controller last wrote them, until
        # the informers catch up (client-go's MutationCache): decisions never
        # see our own writes undone.
        self._written: dict[str, Obj] = {}
        self._written_deployments: dict[str, Obj] = {}
        self.deployments.add_handler(self._on_deployment)
        self.replicasets.add_handler(self._on_replicaset)
        self.pods.add_handler(self._on_pod)

    async def run(self) -> None:
        await asyncio.gather(
            self.deployments.synced.wait(),
            self.replicasets.synced.wait(),
            self.pods.synced.wait(),
        )
        try:
            await run_workers(self.name, self.queue, self.reconcile, self.workers)
        except asyncio.CancelledError:
            self.queue.shutdown()
            raise

    # -- event handlers ----------------------------------------------------------

    def _on_deployment(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        key = object_key(obj)
        written = self._written_deployments.get(key)
        if written is not None and (new is None or _rv(new) >= _rv(written)):
            del self._written_deployments[key]
        self.queue.add(key)

    def _deployment_key(self, rs: Obj) -> str | None:
        ref = controller_ref(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        key = f"{meta(rs).get('namespace')}/{ref.get('name')}"
        d = self.deployments.get(key)
        return key if d is not None and meta(d).get("uid") == ref.get("uid") else None

    def _on_replicaset(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        key = object_key(obj)
        written = self._written.get(key)
        if written is not None and (new is None or _rv(new) >= _rv(written)):
            del self._written[key]
        if old is not None and new is not None:
            old_key = self._deployment_key(old)
            if old_key is not None and old_key != self._deployment_key(new):
                self.queue.add(old_key)
        d_key = self._deployment_key(obj)
        if d_key is not None:
            self.queue.add(d_key)
        elif new is not None and controller_ref(new) is None and not is_deleting(new):
            labels = labels_of(new)
            for d in self.deployments.list(meta(new).get("namespace")):
                selector = selector_of(d)
                if selector is not None and not selector.empty and selector.matches(labels):
                    self.queue.add(object_key(d))

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        if old is not None and new is not None and _pod_state(old) == _pod_state(new):
            return
        rs = self.replicasets.get(f"{meta(pod).get('namespace')}/{ref.get('name')}")
        if rs is not None and meta(rs).get("uid") == ref.get("uid"):
            d_key = self._deployment_key(rs)
            if d_key is not None:
                self.queue.add(d_key)

    # -- reconcile ---------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        cached = self.deployments.get(key)
        if cached is None:
            return None
        written = self._written_deployments.get(key)
        if written is not None and meta(written).get("uid") == meta(cached).get("uid"):
            if _rv(written) > _rv(cached):
                cached = written  # our own last write, not yet seen by the informer
        st = _Sync(copy.deepcopy(cached))
        d = st.d
        selector = selector_of(d)
        if selector is None or selector.empty:
            await self.recorder.record(
                d,
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            status = copy.deepcopy(d.get("status") or {})
            status["observedGeneration"] = int(meta(d).get("generation") or 1)
            await self._write_status(st, status)
            return None
        for rs in await self._replicasets_for(d, selector):
            st.put(rs)
        if is_deleting(d):
            await self._get_all(st, create=False)
            await self._sync_status(st)
            return None
        await self._check_paused_conditions(st)
        if (d.get("spec") or {}).get("paused"):
            await self._sync(st)
            return None
        if await self._is_scaling_event(st):
            await self._sync(st)
            return None
        if is_rolling(d):
            return await self._rollout_rolling(st)
        return await self._rollout_recreate(st)

    async def _replicasets_for(self, d: Obj, selector: LabelSelector) -> list[Obj]:
        uid = str(meta(d).get("uid"))
        ns = str(meta(d).get("namespace"))
        found: dict[str, Obj] = {}
        for rs in (
            *self.replicasets.by_index(CONTROLLER_UID_INDEX, uid),
            *self.replicasets.by_index(ORPHAN_INDEX, ns),
        ):
            found[object_key(rs)] = self._fresh(rs)
        for key, rs in self._written.items():
            ref = controller_ref(rs)
            if key not in found and ref is not None and ref.get("uid") == uid:
                found[key] = rs  # created by us, not seen by the informer yet
        return await claim(self.registry, REPLICASET, d, DEPLOYMENT, selector, found.values())

    def _fresh(self, rs: Obj) -> Obj:
        written = self._written.get(object_key(rs))
        if written is not None and meta(written).get("uid") == meta(rs).get("uid"):
            if _rv(written) > _rv(rs):
                return written
        return rs

    # -- pods, as this controller counts them --------------------------------------

    def _pods(self, rs: Obj) -> list[Obj]:
        uid = meta(rs).get("uid")
        return self.pods.by_index(CONTROLLER_UID_INDEX, str(uid)) if uid else []

    def _size(self, rs: Obj) -> int:
        return max(replicas(rs), sum(1 for p in self._pods(rs) if is_pod_active(p)))

    def _available(self, rs: Obj, now: float) -> int:
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        available = sum(
            1 for p in self._pods(rs) if is_pod_active(p) and is_pod_available(p, min_ready, now)
        )
        return min(replicas(rs), available)

    # -- ReplicaSets -------------------------------------------------------------

    async def _get_all(self, st: _Sync, *, create: bool) -> None:
        """Find (or create) the new ReplicaSet and sync revisions (getAllReplicaSetsAndSyncRevision)."""
        d = st.d
        template = (d.get("spec") or {}).get("template") or {}
        if st.new_uid is None:
            for rs in sorted(st.rss.values(), key=_created):
                if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
                    st.new_uid = str(meta(rs).get("uid"))
                    break
        olds = st.olds
        new_revision = max((revision(rs) for rs in olds), default=0) + 1
        new = st.new
        if new is not None:
            rs = copy.deepcopy(new)
            changed = set_new_rs_annotations(d, rs, new_revision, exists=True)
            min_ready = int((d.get("spec") or {}).get("minReadySeconds") or 0)
            if changed or int((rs.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                new = await self._update_rs(st, new, rs)
            await self._set_revision(st, revision(new))
            if (
                has_progress_deadline(d)
                and get_condition(st.d.get("status") or {}, "Progressing") is None
            ):
                status = copy.deepcopy(st.d.get("status") or {})
                name = meta(new).get("name")
                set_condition(
                    status,
                    new_condition(
                        "Progressing", "True", FOUND_NEW_RS, f'Found new replica set "{name}"'
                    ),
                )
                await self._write_status(st, status)
            return
        if create:
            await self._create_new_rs(st, new_revision)

    async def _create_new_rs(self, st: _Sync, new_revision: int) -> None:
        d = st.d
        dm = meta(d)
        spec = d.get("spec") or {}
        collisions = (d.get("status") or {}).get("collisionCount")
        template = copy.deepcopy(spec.get("template") or {})
        h = pod_template_hash(template, collisions)
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: h}
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: h}
        ns = str(dm.get("namespace"))
        rs: Obj = {
            "apiVersion": REPLICASET.api_version,
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{dm.get('name')}-{h}",
                "namespace": ns,
                "labels": dict(tmeta["labels"]),
                "ownerReferences": [owner_reference(d, DEPLOYMENT)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }
        set_new_rs_annotations(d, rs, new_revision, exists=False)
        rs["spec"]["replicas"] = self._new_rs_replicas(d, st.all(), rs)
        try:
            kv = await self.registry.create(REPLICASET, ns, rs)
        except ApiError as e:
            if e.code != 409 or e.reason != "AlreadyExists":
                raise
            await self._name_taken(st, str(rs["metadata"]["name"]))
            return
        created = st.put(kv.obj)
        self._written[object_key(created)] = created
        st.new_uid = str(meta(created).get("uid"))
        size = replicas(created)
        if size > 0:
            await self._scaling_event(d, created, "up", size)
        status = copy.deepcopy(st.d.get("status") or {})
        if has_progress_deadline(d):
            msg = f'Created new replica set "{meta(created).get("name")}"'
            set_condition(status, new_condition("Progressing", "True", NEW_RS_CREATED, msg))
        await self._set_revision(st, revision(created))
        await self._write_status(st, status)

    async def _name_taken(self, st: _Sync, name: str) -> None:
        """The new ReplicaSet's name exists: ours (the informer lags), or a hash collision."""
        d = st.d
        live = (await self.registry.get(REPLICASET, meta(d).get("namespace"), name)).obj
        ref = controller_ref(live)
        template = (d.get("spec") or {}).get("template") or {}
        if (
            ref is not None
            and ref.get("uid") == meta(d).get("uid")
            and equal_ignore_hash((live.get("spec") or {}).get("template") or {}, template)
        ):
            st.put(live)
            st.new_uid = str(meta(live).get("uid"))
            return
        status = copy.deepcopy(d.get("status") or {})
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        await self._write_status(st, status)
        raise ApiError(409, "Conflict", f"hash collision for replica set {name}; retrying")

    async def _update_rs(self, st: _Sync, based: Obj, rs: Obj) -> Obj:
        """Write `rs`'s spec and annotations over `based`, the version the decision
        was made on. A change to those in between is a conflict (decide again); a
        status update by the ReplicaSet controller is not."""
        m = meta(rs)
        name = str(m.get("name"))

        def apply(current: Obj) -> Obj:
            cm = meta(current)
            if (
                cm.get("uid") != meta(based).get("uid")
                or current.get("spec") != based.get("spec")
                or cm.get("annotations") != meta(based).get("annotations")
            ):
                raise errors.conflict(REPLICASET.plural, name, REPLICASET.group)
            current["spec"] = rs["spec"]
            cm["annotations"] = m.get("annotations")
            return current

        kv = await self.registry.patch(REPLICASET, m.get("namespace"), name, apply)
        updated = kv.obj
        self._written[object_key(updated)] = updated
        return st.put(updated)

    async def _scale(self, st: _Sync, rs: Obj, size: int) -> bool:
        """Set a ReplicaSet's replicas (and its replica annotations); True if the size changed."""
        d = st.d
        rs = st.rss.get(str(meta(rs).get("uid")), rs)
        old_size = replicas(rs)
        updated = copy.deepcopy(rs)
        annotated = set_replicas_annotations(updated, replicas(d), replicas(d) + max_surge(d))
        if old_size == size and not annotated:
            return False
        updated["spec"]["replicas"] = size
        await self._update_rs(st, rs, updated)
        if old_size != size:
            await self._scaling_event(d, rs, "up" if size > old_size else "down", size)
        return old_size != size

    async def _scaling_event(self, d: Obj, rs: Obj, direction: str, size: int) -> None:
        msg = f"Scaled {direction} replica set {meta(rs).get('name')} to {size}"
        await self.recorder.record(d, "Normal", "ScalingReplicaSet", msg)

    # -- the Deployment's own writes -----------------------------------------------

    async def _set_revision(self, st: _Sync, rev: int) -> None:
        ann = meta(st.d).get("annotations") or {}
        if ann.get(REVISION) == str(rev):
            return
        d = copy.deepcopy(st.d)
        _annotations(d)[REVISION] = str(rev)
        m = meta(d)
        kv = await self.registry.update(DEPLOYMENT, m.get("namespace"), str(m.get("name")), d)
        self._remember(st, kv.obj)

    async def _write_status(self, st: _Sync, status: Obj) -> None:
        if status == (st.d.get("status") or {}):
            return
        m = meta(st.d)
        body = {**st.d, "status": status}
        kv = await self.registry.update(
            DEPLOYMENT, m.get("namespace"), str(m.get("name")), body, subresource="status"
        )
        self._remember(st, kv.obj)

    def _remember(self, st: _Sync, d: Obj) -> None:
        st.d = d
        self._written_deployments[object_key(d)] = d

    async def _check_paused_conditions(self, st: _Sync) -> None:
        d = st.d
        if not has_progress_deadline(d):
            return
        status = copy.deepcopy(d.get("status") or {})
        cond = get_condition(status, "Progressing")
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return
        paused = bool((d.get("spec") or {}).get("paused"))
        paused_now = cond is not None and cond.get("reason") == PAUSED
        if paused and not paused_now:
            set_condition(
                status, new_condition("Progressing", "Unknown", PAUSED, "Deployment is paused")
            )
        elif not paused and paused_now:
            set_condition(
                status, new_condition("Progressing", "Unknown", RESUMED, "Deployment is resumed")
            )
        else:
            return
        await self._write_status(st, status)

    # -- scaling ------------------------------------------------------------------

    async def _is_scaling_event(self, st: _Sync) -> bool:
        await self._get_all(st, create=False)
        want = str(replicas(st.d))
        for rs in _active(st.all()):
            desired = (meta(rs).get("annotations") or {}).get(DESIRED_REPLICAS)
            if desired is not None and desired != want:
                return True
        return False

    async def _sync(self, st: _Sync) -> None:
        """Scale (a replicas change, or a paused Deployment), then report status."""
        await self._get_all(st, create=False)
        await self._scale_deployment(st)
        if (st.d.get("spec") or {}).get("paused"):
            await self._cleanup(st)
        await self._sync_status(st)

    async def _scale_deployment(self, st: _Sync) -> None:
        d = st.d
        want = replicas(d)
        new, olds = st.new, st.olds
        active = _active(st.all())
        if len(active) <= 1:
            target = active[0] if active else (new or (olds[-1] if olds else None))
            if target is not None:
                await self._scale(st, target, want)
            return
        if (
            new is not None
            and (meta(new).get("annotations") or {}).get(DESIRED_REPLICAS) == str(want)
            and replicas(new) == want
            and _status_int(new, "availableReplicas") == want
        ):
            for rs in _active(olds):
                await self._scale(st, rs, 0)
            return
        if not is_rolling(d):
            return
        # Proportional scaling: spread the change over the active ReplicaSets by size.
        allowed = want + max_surge(d) if want > 0 else 0
        to_add = allowed - sum(replicas(rs) for rs in active)
        if to_add > 0:
            active.sort(key=lambda rs: (-replicas(rs), -_created(rs)[0]))
        elif to_add < 0:
            active.sort(key=lambda rs: (-replicas(rs), _created(rs)[0]))
        sizes: dict[str, int] = {}
        added = 0
        for rs in active:
            proportion = self._proportion(d, rs, to_add, added) if to_add else 0
            sizes[str(meta(rs).get("uid"))] = replicas(rs) + proportion
            added += proportion
        if to_add and active:
            first = str(meta(active[0]).get("uid"))
            sizes[first] = max(0, sizes[first] + to_add - added)
        for rs in active:
            await self._scale(st, rs, sizes[str(meta(rs).get("uid"))])

    @staticmethod
    def _proportion(d: Obj, rs: Obj, to_add: int, added: int) -> int:
        size = replicas(rs)
        if size == 0 or to_add == added:
            return 0
        want = replicas(d)
        if want == 0:
            fraction = -size
        else:
            try:
                annotated = int((meta(rs).get("annotations") or {}).get(MAX_REPLICAS, ""))
            except ValueError:
                annotated = _status_int(d, "replicas")
            if annotated <= 0:
                fraction = 0
            else:
                # Go's math.Round: halves away from zero (sizes are never negative).
                fraction = math.floor(size * (want + max_surge(d)) / annotated + 0.5) - size
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    # -- rollouts -----------------------------------------------------------------

    async def _rollout_rolling(self, st: _Sync) -> float | None:
        await self._get_all(st, create=True)
        if await self._reconcile_new_rs(st):
            return await self._sync_rollout_status(st)
        if await self._reconcile_old_rss(st):
            return await self._sync_rollout_status(st)
        if deployment_complete(st.d, st.d.get("status") or {}):
            await self._cleanup(st)
        return await self._sync_rollout_status(st)

    async def _rollout_recreate(self, st: _Sync) -> float | None:
        await self._get_all(st, create=False)
        scaled = False
        for rs in _active(st.olds):
            scaled = await self._scale(st, rs, 0) or scaled
        if scaled or self._old_pods_running(st):
            return await self._sync_rollout_status(st)
        if st.new is None:
            await self._get_all(st, create=True)
        new = st.new
        if new is not None:
            await self._scale(st, new, replicas(st.d))
        if deployment_complete(st.d, st.d.get("status") or {}):
            await self._cleanup(st)
        return await self._sync_rollout_status(st)

    def _old_pods_running(self, st: _Sync) -> bool:
        for rs in st.olds:
            if _status_int(rs, "replicas") > 0:
                return True
            for pod in self._pods(rs):
                if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    return True
        return False

    def _new_rs_replicas(self, d: Obj, others: list[Obj], new: Obj) -> int:
        """How far the new ReplicaSet may grow now (NewRSNewReplicas)."""
        if not is_rolling(d):
            return replicas(d)
        want = replicas(d)
        max_total = want + max_surge(d)
        current = self._size(new) + sum(self._size(rs) for rs in others)
        if current >= max_total:
            return replicas(new)
        return replicas(new) + min(max_total - current, want - replicas(new))

    async def _reconcile_new_rs(self, st: _Sync) -> bool:
        new = st.new
        assert new is not None
        want = replicas(st.d)
        if replicas(new) == want:
            return False
        if replicas(new) > want:
            return await self._scale(st, new, want)
        return await self._scale(st, new, self._new_rs_replicas(st.d, st.olds, new))

    async def _reconcile_old_rss(self, st: _Sync) -> bool:
        d, new = st.d, st.new
        assert new is not None
        if sum(replicas(rs) for rs in st.olds) == 0:
            return False
        now = time.time()
        min_available = replicas(d) - max_unavailable(d)
        new_unavailable = replicas(new) - self._available(new, now)
        max_scaled_down = sum(replicas(rs) for rs in st.all()) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        # Unhealthy old replicas go first: removing them costs no availability.
        cleaned = 0
        for rs in _active(st.olds):
            if cleaned >= max_scaled_down:
                break
            unhealthy = replicas(rs) - self._available(rs, now)
            if unhealthy <= 0:
                continue
            count = min(max_scaled_down - cleaned, unhealthy)
            await self._scale(st, rs, replicas(rs) - count)
            cleaned += count
        available = sum(self._available(rs, now) for rs in st.all())
        budget = available - min_available
        scaled = 0
        for rs in _active(st.olds):
            if scaled >= budget:
                break
            count = min(replicas(rs), budget - scaled)
            await self._scale(st, rs, replicas(rs) - count)
            scaled += count
        return cleaned + scaled > 0

    async def _cleanup(self, st: _Sync) -> None:
        """Delete the oldest zero-sized ReplicaSets beyond revisionHistoryLimit."""
        d = st.d
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in st.olds if not is_deleting(rs)]
        excess = len(alive) - int(limit)
        if excess <= 0:
            return
        alive.sort(key=lambda rs: (revision(rs), _created(rs)))
        for rs in alive[:excess]:
            m = meta(rs)
            if (
                _status_int(rs, "replicas") != 0
                or replicas(rs) != 0
                or int(m.get("generation") or 1) > _status_int(rs, "observedGeneration")
            ):
                continue
            try:
                await self.registry.delete(
                    REPLICASET, m.get("namespace"), str(m.get("name")), expected_uid=m.get("uid")
                )
            except ApiError as e:
                if e.code != 404:
                    raise
            st.rss.pop(str(m.get("uid")), None)
            log.info("%s: deleted old replica set %s", object_key(d), m.get("name"))

    # -- status -------------------------------------------------------------------

    def _calculate_status(self, st: _Sync) -> Obj:
        d, all_rss, new = st.d, st.all(), st.new
        available = sum(_status_int(rs, "availableReplicas") for rs in all_rss)
        status = copy.deepcopy(d.get("status") or {})
        status.update(
            observedGeneration=int(meta(d).get("generation") or 1),
            replicas=sum(_status_int(rs, "replicas") for rs in all_rss),
            updatedReplicas=_status_int(new, "replicas") if new is not None else 0,
            readyReplicas=sum(_status_int(rs, "readyReplicas") for rs in all_rss),
            availableReplicas=available,
            unavailableReplicas=max(0, sum(replicas(rs) for rs in all_rss) - available),
        )
        if available >= replicas(d) - max_unavailable(d):
            cond = new_condition(
                "Available", "True", MIN_AVAILABLE, "Deployment has minimum availability."
            )
        else:
            cond = new_condition(
                "Available",
                "False",
                MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.",
            )
        set_condition(status, cond)
        return status

    async def _sync_status(self, st: _Sync) -> None:
        await self._write_status(st, self._calculate_status(st))

    async def _sync_rollout_status(self, st: _Sync) -> float | None:
        d, new = st.d, st.new
        status = self._calculate_status(st)
        if not has_progress_deadline(d):
            remove_condition(status, "Progressing")
        cond = get_condition(status, "Progressing")
        name = meta(new).get("name") if new is not None else None
        complete = (
            status.get("replicas") == status.get("updatedReplicas")
            and cond is not None
            and cond.get("reason") == NEW_RS_AVAILABLE
        )
        if has_progress_deadline(d) and not complete:
            if deployment_complete(d, status):
                msg = (
                    f'ReplicaSet "{name}" has successfully progressed.'
                    if name
                    else "Deployment has successfully progressed."
                )
                set_condition(status, new_condition("Progressing", "True", NEW_RS_AVAILABLE, msg))
            elif deployment_progressing(d, status):
                msg = (
                    f'ReplicaSet "{name}" is progressing.' if name else "Deployment is progressing."
                )
                progressing = new_condition("Progressing", "True", RS_UPDATED, msg)
                if cond is not None and cond.get("status") == "True":
                    progressing["lastTransitionTime"] = cond.get("lastTransitionTime")
                remove_condition(status, "Progressing")
                set_condition(status, progressing)
            elif deployment_timed_out(d, status):
                msg = (
                    f'ReplicaSet "{name}" has timed out progressing.'
                    if name
                    else "Deployment has timed out progressing."
                )
                set_condition(status, new_condition("Progressing", "False", TIMED_OUT, msg))
        failure = next(
            (
                c
                for rs in ([new] if new is not None else []) + st.olds
                for c in (rs.get("status") or {}).get("conditions") or ()
                if c.get("type") == "ReplicaFailure"
            ),
            None,
        )
        if failure is not None:
            set_condition(
                status,
                new_condition(
                    "ReplicaFailure",
                    str(failure.get("status")),
                    str(failure.get("reason")),
                    str(failure.get("message")),
                ),
            )
        else:
            remove_condition(status, "ReplicaFailure")
        await self._write_status(st, status)
        if deployment_complete(st.d, status):
            return None
        # A rollout that stops making progress has no event to say so: look again at the deadline.
        left = _deadline_left(st.d, status, time.time())
        return None if left is None else max(left, 0.0) + 1.0


def _pod_state(pod: Obj) -> tuple[bool, bool, str, str]:
    """What about a pod matters to a Deployment's rollout."""
    return (
        is_pod_active(pod),
        is_pod_ready(pod),
        str((pod.get("status") or {}).get("phase")),
        str(controller_ref(pod)),
    )
