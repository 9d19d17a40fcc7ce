"""The garbage collector: deletes objects whose owners are gone.

Every kind but Event is watched. An object is garbage when none of its
ownerReferences resolves to a live object with that uid; it is then deleted
(background propagation: its own dependents follow when their turn comes).
An object that keeps at least one live owner only loses its dangling
references.

It also carries out the finalizers of the other propagation policies, as
Kubernetes' does: an owner deleted with `orphan` first has its uid taken out
of its dependents' ownerReferences; one deleted with `foregroundDeletion`
waits until its dependents that have blockOwnerDeletion are gone (they are
garbage now: an owner waiting for its dependents does not keep them). Then
the finalizer comes off, and the registry deletes the owner.

Triggers are events, never scans: an owner's deletion wakes its dependents
(through an index by owner uid), and a new or changed object whose owner uid
is unknown is checked once the informers had a moment to catch up. At
startup, one full pass checks every object that has owners.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

from control import errors
from control.api.options import (
    BACKGROUND,
    FOREGROUND,
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    DeleteOptions,
)
from control.config import Config
from control.controllers.base import QueueController
from control.controllers.objectmeta import Obj, is_deleting, meta
from control.controllers.ownership import drop_owner_refs
from control.errors import ApiError
from control.machinery.informer import Handler, Informer
from control.objects.kinds import EVENT, RESOURCES, ResourceType, by_kind, object_key

if TYPE_CHECKING:
    from control.controllers.manager import ControllerManager

log = logging.getLogger(__name__)

COMPONENT = "garbage-collector"
OWNER_UID_INDEX = "owner-uid"
# Informers of different kinds run independently: a new pod may be seen before
# the ReplicaSet that made it. Give them this long before asking the store.
CATCH_UP = 0.5

OwnerState = Literal["live", "gone", "waiting"]
LIVE: OwnerState = "live"
GONE: OwnerState = "gone"
WAITING: OwnerState = "waiting"


def owner_uid_index(obj: Obj) -> list[str]:
    return [str(r["uid"]) for r in meta(obj).get("ownerReferences") or () if r.get("uid")]


def _owner_uids(obj: Obj | None) -> list[str]:
    return owner_uid_index(obj) if obj is not None else []


def _finalizing(obj: Obj | None, finalizer: str) -> bool:
    """`obj` is being deleted and waits for the garbage collector's `finalizer`."""
    return obj is not None and is_deleting(obj) and finalizer in (meta(obj).get("finalizers") or ())


def _gc_finalizing(obj: Obj | None) -> bool:
    return _finalizing(obj, ORPHAN_FINALIZER) or _finalizing(obj, FOREGROUND_FINALIZER)


class GarbageCollector(QueueController):
    name = COMPONENT

    def __init__(self, manager: ControllerManager, config: Config, *, workers: int = 4) -> None:
        super().__init__(manager, config, workers=workers)
        self.informers: dict[str, Informer] = {}
        self._items: dict[str, str] = {}  # the work item of every watched object, by uid
        self._started = False
        for rt in RESOURCES:
            if rt == EVENT:
                continue
            informer = self.informer(rt)
            informer.add_index(OWNER_UID_INDEX, owner_uid_index)
            informer.add_handler(self._handler(rt))
            self.informers[rt.plural] = informer

    def on_synced(self) -> None:
        self._started = True
        for plural, informer in self.informers.items():
            for obj in informer.list():
                if _gc_finalizing(obj) or any(
                    uid not in self._items for uid in owner_uid_index(obj)
                ):
                    self.queue.add(f"{plural}|{object_key(obj)}")

    def _handler(self, rt: ResourceType) -> Handler:
        def handle(kind: str, old: Obj | None, new: Obj | None) -> None:
            self._on_change(rt, old, new)

        return handle

    def _on_change(self, rt: ResourceType, old: Obj | None, new: Obj | None) -> None:
        # Called for every change of every object: each value is computed once.
        old_meta = meta(old) if old is not None else {}
        new_meta = meta(new) if new is not None else {}
        old_uid = str(old_meta.get("uid")) if old is not None else None
        new_uid = str(new_meta.get("uid")) if new is not None else None
        replaced = old_uid is not None and old_uid != new_uid
        if replaced:
            # Deleted, or replaced by a namesake while the informer was relisting.
            self._items.pop(str(old_uid), None)
            if self._started:
                self._queue_dependents(str(old_uid))
        # Most objects have no owners: no lists to build then.
        old_owners = _owner_uids(old) if old_meta.get("ownerReferences") else []
        owners = _owner_uids(new) if new_meta.get("ownerReferences") else []
        if self._started and old is not None and (replaced or old_owners != owners):
            self._wake_waiting_owners(old)
        if new is None or new_uid is None:
            return
        item = self._items.get(new_uid)
        if item is None:
            item = self._items[new_uid] = f"{rt.plural}|{object_key(new)}"
        if not self._started:
            return  # the startup pass looks at everything
        if new_meta.get("deletionTimestamp") and _gc_finalizing(new):
            self.queue.add(item)
            if _finalizing(new, FOREGROUND_FINALIZER) and not _finalizing(
                old, FOREGROUND_FINALIZER
            ):
                self._queue_dependents(new_uid)  # they are garbage now
        if owners and owners != old_owners:
            if any(uid not in self._items for uid in owners):
                self.queue.add_after(item, CATCH_UP)

    def _dependents(self, uid: str) -> list[tuple[str, Obj]]:
        return [
            (plural, dependent)
            for plural, informer in self.informers.items()
            for dependent in informer.by_index(OWNER_UID_INDEX, uid)
        ]

    def _queue_dependents(self, uid: str) -> None:
        for plural, dependent in self._dependents(uid):
            self.queue.add(f"{plural}|{object_key(dependent)}")

    def _wake_waiting_owners(self, dependent: Obj) -> None:
        """A dependent went or let go: its owners that wait for it may finish."""
        for uid in owner_uid_index(dependent):
            item = self._items.get(uid)
            if item is not None and _finalizing(self._object(item), FOREGROUND_FINALIZER):
                self.queue.add(item)

    def _object(self, item: str) -> Obj | None:
        plural, _, key = item.partition("|")
        informer = self.informers.get(plural)
        return informer.get(key) if informer is not None else None

    async def reconcile(self, item: str) -> float | None:
        plural, _, key = item.partition("|")
        informer = self.informers.get(plural)
        if informer is None:
            return None
        obj = informer.get(key)
        if obj is None:
            return None
        if is_deleting(obj):
            if _finalizing(obj, ORPHAN_FINALIZER):
                await self._orphan_dependents(informer.rt, obj)
            elif _finalizing(obj, FOREGROUND_FINALIZER):
                await self._finish_foreground(informer.rt, obj)
            return None
        refs = [r for r in meta(obj).get("ownerReferences") or () if isinstance(r, dict)]
        if not refs:
            return None
        live: list[Obj] = []
        dangling: list[Obj] = []
        waiting: list[Obj] = []  # owners deleted in the foreground, waiting for their dependents
        for ref in refs:
            state = await self._owner_state(informer.rt, obj, ref)
            if state is None:
                return None  # an owner we cannot judge: leave the object alone
            {LIVE: live, GONE: dangling, WAITING: waiting}[state].append(ref)
        if not dangling and not waiting:
            return None
        m = meta(obj)
        rt = informer.rt
        if not live:
            log.info("garbage collecting %s %s: its owners are gone", rt.kind, key)
            # Its own dependents go first when an owner waits for it.
            policy = FOREGROUND if waiting and self._dependents(str(m.get("uid"))) else BACKGROUND
            options = DeleteOptions(propagation_policy=policy, uid=m.get("uid"))
            try:
                await self.registry.delete(rt, m.get("namespace"), str(m.get("name")), options)
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
            return None
        await drop_owner_refs(
            self.registry, rt, obj, {str(r.get("uid")) for r in dangling + waiting}
        )
        return None

    async def _orphan_dependents(self, rt: ResourceType, owner: Obj) -> None:
        uid = str(meta(owner).get("uid"))
        for plural, dependent in self._dependents(uid):
            await drop_owner_refs(self.registry, self.informers[plural].rt, dependent, {uid})
        log.info("orphaned the dependents of %s %s", rt.kind, object_key(owner))
        await self._remove_finalizer(rt, owner, ORPHAN_FINALIZER)

    async def _finish_foreground(self, rt: ResourceType, owner: Obj) -> None:
        """Remove `foregroundDeletion` once no dependent blocks it; until
        then, see that the blocking ones are deleted."""
        uid = str(meta(owner).get("uid"))
        blocking = [
            (plural, dependent)
            for plural, dependent in self._dependents(uid)
            if any(
                str(r.get("uid")) == uid and r.get("blockOwnerDeletion")
                for r in meta(dependent).get("ownerReferences") or ()
            )
        ]
        for plural, dependent in blocking:
            if not is_deleting(dependent):
                self.queue.add(f"{plural}|{object_key(dependent)}")
        if not blocking:
            await self._remove_finalizer(rt, owner, FOREGROUND_FINALIZER)

    async def _remove_finalizer(self, rt: ResourceType, owner: Obj, finalizer: str) -> None:
        m = meta(owner)
        uid = m.get("uid")

        def remove(current: Obj) -> Obj:
            cm = current.setdefault("metadata", {})
            if cm.get("uid") != uid:
                raise errors.conflict(rt.plural, str(m.get("name")), rt.group, "uid changed")
            cm["finalizers"] = [f for f in cm.get("finalizers") or [] if f != finalizer]
            return current

        try:
            await self.registry.patch(rt, m.get("namespace"), str(m.get("name")), remove)
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    async def _owner_state(self, rt: ResourceType, obj: Obj, ref: Obj) -> OwnerState | None:
        """LIVE, GONE, WAITING (deleted in the foreground, waiting for its
        dependents), or None: a kind that is not served."""
        uid = str(ref.get("uid"))
        item = self._items.get(uid)
        if item is not None:
            return WAITING if _finalizing(self._object(item), FOREGROUND_FINALIZER) else LIVE
        owner_rt = by_kind(str(ref.get("apiVersion")), str(ref.get("kind")))
        if owner_rt is None:
            log.debug("%s: owner kind %s is not served", object_key(obj), ref.get("kind"))
            return None
        if owner_rt.namespaced and not rt.namespaced:
            return GONE  # a cluster-scoped object cannot have a namespaced owner
        ns = meta(obj).get("namespace") if owner_rt.namespaced else None
        try:
            owner = (await self.registry.get(owner_rt, ns, str(ref.get("name")))).obj
        except ApiError as e:
            if e.code == 404:
                return GONE
            raise
        if meta(owner).get("uid") != uid:
            return GONE
        return WAITING if _finalizing(owner, FOREGROUND_FINALIZER) else LIVE
