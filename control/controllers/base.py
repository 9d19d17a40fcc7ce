"""The shape of a controller: informers feed keys into a queue, workers reconcile them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from agent.protocol.primitives import controller_ref
from control.api.registry import Registry
from control.config import Config
from control.controllers.expectations import Expectations
from control.controllers.objectmeta import Obj, labels_of, meta
from control.controllers.ownership import (
    CONTROLLER_UID_INDEX,
    ORPHAN_INDEX,
    controller_uid_index,
    orphan_index,
    selector_of,
)
from control.controllers.podcontrol import PodControl
from control.errors import ApiError
from control.machinery.events import EventRecorder
from control.machinery.informer import Handler, Informer
from control.machinery.queue import WorkQueue
from control.objects.kinds import ResourceType, object_key

log = logging.getLogger(__name__)

# Reconcile one key; return seconds until it should be looked at again, or None.
Reconcile = Callable[[str], Awaitable[float | None]]


async def run_workers(name: str, queue: WorkQueue, reconcile: Reconcile, workers: int = 1) -> None:
    """Process keys until the queue shuts down. Failures are retried with backoff."""

    async def worker() -> None:
        while (key := await queue.get()) is not None:
            try:
                again = await reconcile(key)
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                # Conflicts are routine: someone wrote first; look again soon.
                level = logging.DEBUG if e.code == 409 else logging.WARNING
                log.log(level, "%s: reconciling %s: %s", name, key, e)
                queue.add_rate_limited(key)
            except Exception:
                log.exception("%s: reconciling %s failed", name, key)
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
                if again is not None:
                    queue.add_after(key, again)
            finally:
                queue.done(key)

    await asyncio.gather(*(worker() for _ in range(workers)))


class Informers(Protocol):
    """What a controller gets from the controller manager."""

    registry: Registry

    def informer(self, rt: ResourceType) -> Informer: ...


class QueueController:
    """A controller whose informers' handlers add keys to `queue`: once those
    informers have synced, `workers` workers reconcile the keys until cancelled."""

    name: str

    def __init__(self, manager: Informers, config: Config, *, workers: int) -> None:
        self._manager = manager
        self._informers: list[Informer] = []
        self.registry = manager.registry
        self.config = config
        self.workers = workers
        self.queue = WorkQueue()
        self.recorder = EventRecorder(self.registry, self.name)
        self._expectations: Expectations | None = None

    def informer(
        self, rt: ResourceType, *, claimable: bool = False, handler: Handler | None = None
    ) -> Informer:
        """The manager's shared informer of `rt`; `run` waits for it to sync.
        `claimable`: indexed for `claim_candidates`; `handler`: added to it."""
        informer = self._manager.informer(rt)
        if handler is not None:
            informer.add_handler(handler)
        if claimable:
            informer.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
            informer.add_index(ORPHAN_INDEX, orphan_index)
        self._informers.append(informer)
        return informer

    def new_pod_control(self) -> PodControl:
        """The controller's pod writes, with expectations that `enqueue`
        forgets for deleted owners."""
        self._expectations = Expectations()
        return PodControl(self.registry, self.recorder, self._expectations)

    def event_owner(
        self, owners: Informer, kind: str, old: Obj | None, new: Obj | None
    ) -> tuple[Obj, str | None]:
        """An event's object, and the key of its `kind` owner if `owners` has it."""
        obj = event_object(old, new)
        return obj, owner_key(owners, kind, obj)

    def enqueue(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """An informer handler: queue the object's own key; once it is deleted,
        what was expected of it is forgotten (a new one may take its name)."""
        key = object_key(event_object(old, new))
        if kind == "DELETED" and self._expectations is not None:
            self._expectations.forget(key)
        self.queue.add(key)

    async def reconcile(self, key: str) -> float | None:
        raise NotImplementedError

    def on_synced(self) -> None:
        """Called once the informers have synced, before the workers start."""

    async def run(self) -> None:
        await asyncio.gather(*(informer.synced.wait() for informer in self._informers))
        self.on_synced()
        try:
            await run_workers(self.name, self.queue, self.reconcile, self.workers)
        finally:
            self.queue.shutdown()


def event_object(old: Obj | None, new: Obj | None) -> Obj:
    """What an informer event is about: the new object, or the deleted one."""
    obj = new if new is not None else old
    assert obj is not None
    return obj


def claim_candidates(owned: Informer, owner: Obj) -> list[Obj]:
    """What `owner` may claim from `owned` (a claimable informer):
    the objects it controls, and the orphans in its namespace."""
    m = meta(owner)
    return [
        *owned.by_index(CONTROLLER_UID_INDEX, str(m.get("uid"))),
        *owned.by_index(ORPHAN_INDEX, str(m.get("namespace"))),
    ]


def owner_key(owners: Informer, kind: str, obj: Obj) -> str | None:
    """The key of the `kind` object that controls `obj`, if `owners` holds that
    very object (the same uid)."""
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    key = f"{meta(obj).get('namespace')}/{ref.get('name')}"
    owner = owners.get(key)
    return key if owner is not None and meta(owner).get("uid") == ref.get("uid") else None


def selecting_keys(owners: Informer, obj: Obj) -> list[str]:
    """The keys of the objects in `owners` whose (non-empty) selector selects
    `obj`: those that could adopt it."""
    labels = labels_of(obj)
    keys = []
    for owner in owners.list(meta(obj).get("namespace")):
        selector = selector_of(owner)
        if selector is not None and not selector.empty and selector.matches(labels):
            keys.append(object_key(owner))
    return keys
