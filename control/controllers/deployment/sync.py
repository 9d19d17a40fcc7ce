"""Syncing a Deployment: its ReplicaSets and revisions, scaling, and status.

The operations every phase of a rollout shares (Kubernetes' sync.go): find or
create the new ReplicaSet and sync revisions, scale a ReplicaSet, scale the
Deployment (proportionally mid-rollout), clean up old ReplicaSets, and compute
and write the Deployment's status. Sizes and availability count the pods seen,
not only ReplicaSet specs (see the package's docstring).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

from agent.protocol.primitives import controller_ref, new_controller_ref
from control import errors
from control.api.registry import Registry
from control.controllers.deployment.annotations import (
    annotations_of,
    next_revision,
    set_new_rs_annotations,
    set_replicas_annotations,
)
from control.controllers.deployment.mutations import MutationCache
from control.controllers.deployment.progress import (
    FOUND_NEW_RS,
    MIN_AVAILABLE,
    MIN_UNAVAILABLE,
    NEW_RS_CREATED,
    PAUSED,
    RESUMED,
    TIMED_OUT,
    has_progress_deadline,
    new_condition,
    recheck_after,
    set_condition,
    update_rollout_conditions,
)
from control.controllers.deployment.replicas import (
    active,
    by_creation,
    is_rolling,
    max_surge,
    max_unavailable,
    new_rs_replicas,
    proportional_sizes,
    replicas,
    status_int,
)
from control.controllers.deployment.templatehash import pod_template_hash
from control.controllers.objectmeta import Obj, is_deleting, meta
from control.controllers.ownership import (
    CONTROLLER_UID_INDEX,
)
from control.controllers.podstate import is_pod_active, is_pod_available
from control.errors import ApiError
from control.machinery.events import EventRecorder
from control.machinery.informer import Informer
from control.objects.conditions import get_condition
from control.objects.kinds import DEPLOYMENT, REPLICASET, object_key
from control.objects.revisions import (
    DESIRED_REPLICAS,
    HASH_LABEL,
    REVISION,
    equal_ignore_hash,
    revision,
)

log = logging.getLogger(__name__)


@dataclass
class SyncState:
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
        return sorted((rs for uid, rs in self.rss.items() if uid != self.new_uid), key=by_creation)

    def all(self) -> list[Obj]:
        new = self.new
        return [*self.olds, *([new] if new is not None else [])]

    def put(self, rs: Obj) -> Obj:
        self.rss[str(meta(rs).get("uid"))] = rs
        return rs


def calculate_status(st: SyncState) -> Obj:
    """The Deployment's status from its ReplicaSets', with the Available condition."""
    d, all_rss, new = st.d, st.all(), st.new
    available = sum(status_int(rs, "availableReplicas") for rs in all_rss)
    status = copy.deepcopy(d.get("status") or {})
    status.update(
        observedGeneration=int(meta(d).get("generation") or 1),
        replicas=sum(status_int(rs, "replicas") for rs in all_rss),
        updatedReplicas=status_int(new, "replicas") if new is not None else 0,
        readyReplicas=sum(status_int(rs, "readyReplicas") for rs in all_rss),
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


class DeploymentSync:
    """The Deployment controller's shared operations; its phases build on them."""

    registry: Registry
    pods: Informer
    recorder: EventRecorder
    # ReplicaSets and Deployments as this controller last wrote them.
    _written: MutationCache
    _written_deployments: MutationCache

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

    def _new_rs_replicas(self, d: Obj, others: list[Obj], new: Obj) -> int:
        """How far the new ReplicaSet may grow now, counting the pods seen."""
        current = self._size(new) + sum(self._size(rs) for rs in others)
        return new_rs_replicas(d, replicas(new), current)

    # -- ReplicaSets -------------------------------------------------------------

    async def _get_all(self, st: SyncState, *, create: bool) -> None:
        """Find (or create) the new ReplicaSet and sync revisions (getAllReplicaSetsAndSyncRevision)."""
        d = st.d
        template = (d.get("spec") or {}).get("template") or {}
        if st.new_uid is None:
            for rs in sorted(st.rss.values(), key=by_creation):
                if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
                    st.new_uid = str(meta(rs).get("uid"))
                    break
        new_revision = next_revision(st.olds)
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

    async def _create_new_rs(self, st: SyncState, new_revision: int) -> None:
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
                "ownerReferences": [new_controller_ref(d, DEPLOYMENT.api_version, DEPLOYMENT.kind)],
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
        created = st.put(self._written.wrote(kv.obj))
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

    async def _name_taken(self, st: SyncState, name: str) -> None:
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

    async def _update_rs(self, st: SyncState, based: Obj, rs: Obj) -> Obj:
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
        return st.put(self._written.wrote(kv.obj))

    async def _scale(self, st: SyncState, rs: Obj, size: int) -> bool:
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

    async def _cleanup(self, st: SyncState) -> None:
        """Delete the oldest zero-sized ReplicaSets beyond revisionHistoryLimit."""
        d = st.d
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in st.olds if not is_deleting(rs)]
        excess = len(alive) - int(limit)
        if excess <= 0:
            return
        alive.sort(key=lambda rs: (revision(rs), by_creation(rs)))
        for rs in alive[:excess]:
            m = meta(rs)
            if (
                status_int(rs, "replicas") != 0
                or replicas(rs) != 0
                or int(m.get("generation") or 1) > status_int(rs, "observedGeneration")
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

    # -- the Deployment's own writes -----------------------------------------------

    async def _set_revision(self, st: SyncState, rev: int) -> None:
        ann = meta(st.d).get("annotations") or {}
        if ann.get(REVISION) == str(rev):
            return
        d = copy.deepcopy(st.d)
        annotations_of(d)[REVISION] = str(rev)
        m = meta(d)
        kv = await self.registry.update(DEPLOYMENT, m.get("namespace"), str(m.get("name")), d)
        self._remember(st, kv.obj)

    async def _write_status(self, st: SyncState, status: Obj) -> None:
        if status == (st.d.get("status") or {}):
            return
        m = meta(st.d)
        body = {**st.d, "status": status}
        kv = await self.registry.update(
            DEPLOYMENT, m.get("namespace"), str(m.get("name")), body, subresource="status"
        )
        self._remember(st, kv.obj)

    def _remember(self, st: SyncState, d: Obj) -> None:
        st.d = self._written_deployments.wrote(d)

    async def _check_paused_conditions(self, st: SyncState) -> None:
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

    async def _is_scaling_event(self, st: SyncState) -> bool:
        await self._get_all(st, create=False)
        want = str(replicas(st.d))
        for rs in active(st.all()):
            desired = (meta(rs).get("annotations") or {}).get(DESIRED_REPLICAS)
            if desired is not None and desired != want:
                return True
        return False

    async def _sync(self, st: SyncState) -> None:
        """Scale (a replicas change, or a paused Deployment), then report status."""
        await self._get_all(st, create=False)
        await self._scale_deployment(st)
        if (st.d.get("spec") or {}).get("paused"):
            await self._cleanup(st)
        await self._sync_status(st)

    async def _scale_deployment(self, st: SyncState) -> None:
        d = st.d
        want = replicas(d)
        new, olds = st.new, st.olds
        active_rss = active(st.all())
        if len(active_rss) <= 1:
            target = active_rss[0] if active_rss else (new or (olds[-1] if olds else None))
            if target is not None:
                await self._scale(st, target, want)
            return
        if (
            new is not None
            and (meta(new).get("annotations") or {}).get(DESIRED_REPLICAS) == str(want)
            and replicas(new) == want
            and status_int(new, "availableReplicas") == want
        ):
            for rs in active(olds):
                await self._scale(st, rs, 0)
            return
        if not is_rolling(d):
            return
        for rs, size in proportional_sizes(d, active_rss):
            await self._scale(st, rs, size)

    # -- status -------------------------------------------------------------------

    async def _sync_status(self, st: SyncState) -> None:
        await self._write_status(st, calculate_status(st))

    async def _sync_rollout_status(self, st: SyncState) -> float | None:
        """Write the status with the rollout's conditions; when to look again."""
        status = calculate_status(st)
        update_rollout_conditions(st.d, status, st.new, st.olds)
        await self._write_status(st, status)
        return recheck_after(st.d, status)
