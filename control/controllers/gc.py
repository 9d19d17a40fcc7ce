"""The garbage collector: deletes objects whose owners are gone.

Every kind but Event is watched. An object is garbage when none of its
ownerReferences resolves to a live object with that uid; it is then deleted
(background propagation: its own dependents follow when their turn comes).
An object that keeps at least one live owner only loses its dangling
references.

Triggers are events, never scans: an owner's deletion wakes its dependents
(through an index by owner uid), and a new or changed object whose owner uid
is unknown is checked once the informers had a moment to catch up. At
startup, one full pass checks every object that has owners.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from control.config import Config
from control.controllers.base import run_workers
from control.controllers.replicaset import is_deleting, meta
from control.errors import ApiError
from control.machinery.informer import Handler, Informer
from control.machinery.queue import WorkQueue
from control.objects.kinds import EVENT, RESOURCES, ResourceType, by_kind, object_key

if TYPE_CHECKING:
    from control.controllers.manager import ControllerManager

log = logging.getLogger(__name__)

Obj = dict[str, Any]

COMPONENT = "garbage-collector"
OWNER_UID_INDEX = "owner-uid"
# Informers of different kinds run independently: a new pod may be seen before
# the ReplicaSet that made it. Give them this long before asking the store.
CATCH_UP = 0.5


def owner_uid_index(obj: Obj) -> list[str]:
    return [str(r["uid"]) for r in meta(obj).get("ownerReferences") or () if r.get("uid")]


def _owner_uids(obj: Obj | None) -> list[str]:
    return owner_uid_index(obj) if obj is not None else []


class GarbageCollector:
    name = COMPONENT

    def __init__(self, manager: ControllerManager, config: Config, *, workers: int = 4) -> None:
        self.registry = manager.registry
        self.config = config
        self.workers = workers
        self.queue = WorkQueue()
        self.informers: dict[str, Informer] = {}
        self._uids: set[str] = set()  # of every watched object
        self._started = False
        for rt in RESOURCES:
            if rt == EVENT:
                continue
            informer = manager.informer(rt)
            informer.add_index(OWNER_UID_INDEX, owner_uid_index)
            informer.add_handler(self._handler(rt))
            self.informers[rt.plural] = informer

    async def run(self) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self.informers.values()))
        self._started = True
        for plural, informer in self.informers.items():
            for obj in informer.list():
                if any(uid not in self._uids for uid in owner_uid_index(obj)):
                    self.queue.add(f"{plural}|{object_key(obj)}")
        try:
            await run_workers(self.name, self.queue, self.reconcile, self.workers)
        except asyncio.CancelledError:
            self.queue.shutdown()
            raise

    def _handler(self, rt: ResourceType) -> Handler:
        def handle(kind: str, old: Obj | None, new: Obj | None) -> None:
            self._on_change(rt, old, new)

        return handle

    def _on_change(self, rt: ResourceType, old: Obj | None, new: Obj | None) -> None:
        old_uid = str(meta(old).get("uid")) if old is not None else None
        new_uid = str(meta(new).get("uid")) if new is not None else None
        if old_uid is not None and old_uid != new_uid:
            # Deleted, or replaced by a namesake while the informer was relisting.
            self._uids.discard(old_uid)
            if self._started:
                for plural, informer in self.informers.items():
                    for dependent in informer.by_index(OWNER_UID_INDEX, old_uid):
                        self.queue.add(f"{plural}|{object_key(dependent)}")
        if new is None or new_uid is None:
            return
        self._uids.add(new_uid)
        if not self._started:
            return  # the startup pass looks at everything
        owners = _owner_uids(new)
        if owners and owners != _owner_uids(old):
            if any(uid not in self._uids for uid in owners):
                self.queue.add_after(f"{rt.plural}|{object_key(new)}", CATCH_UP)

    async def reconcile(self, item: str) -> float | None:
        plural, _, key = item.partition("|")
        informer = self.informers.get(plural)
        if informer is None:
            return None
        obj = informer.get(key)
        if obj is None or is_deleting(obj):
            return None
        refs = [r for r in meta(obj).get("ownerReferences") or () if isinstance(r, dict)]
        if not refs:
            return None
        live: list[Obj] = []
        dangling: list[Obj] = []
        for ref in refs:
            state = await self._owner_state(informer.rt, obj, ref)
            if state is None:
                return None  # an owner we cannot judge: leave the object alone
            (live if state else dangling).append(ref)
        if not dangling:
            return None
        m = meta(obj)
        rt = informer.rt
        ns = m.get("namespace")
        name = str(m.get("name"))
        if not live:
            log.info("garbage collecting %s %s: its owners are gone", rt.kind, key)
            try:
                await self.registry.delete(rt, ns, name, expected_uid=m.get("uid"))
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
            return None
        gone = {str(r.get("uid")) for r in dangling}

        def drop_dangling(current: Obj) -> Obj:
            cm = current.setdefault("metadata", {})
            cm["ownerReferences"] = [
                r for r in cm.get("ownerReferences") or [] if str(r.get("uid")) not in gone
            ]
            return current

        try:
            await self.registry.patch(rt, ns, name, drop_dangling)
        except ApiError as e:
            if e.code != 404:
                raise
        return None

    async def _owner_state(self, rt: ResourceType, obj: Obj, ref: Obj) -> bool | None:
        """True: the owner lives; False: it is gone; None: unknown kind."""
        uid = str(ref.get("uid"))
        if uid in self._uids:
            return True
        owner_rt = by_kind(str(ref.get("apiVersion")), str(ref.get("kind")))
        if owner_rt is None:
            log.debug("%s: owner kind %s is not served", object_key(obj), ref.get("kind"))
            return None
        if owner_rt.namespaced and not rt.namespaced:
            return False  # a cluster-scoped object cannot have a namespaced owner
        ns = meta(obj).get("namespace") if owner_rt.namespaced else None
        try:
            owner = (await self.registry.get(owner_rt, ns, str(ref.get("name")))).obj
        except ApiError as e:
            if e.code == 404:
                return False
            raise
        return bool(meta(owner).get("uid") == uid)
