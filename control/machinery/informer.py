"""An informer: a local cache of one kind, kept current by list and watch.

Controllers read from informers, never from the store in a loop. Each change
calls the handlers with (type, old, new) after the cache is updated. A watch
that falls too far behind (410 Gone) lists again and reports the difference.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from control.api.registry import Registry
from control.errors import ApiError
from control.objects import Obj
from control.objects.kinds import ResourceType, object_key

log = logging.getLogger(__name__)

Handler = Callable[[str, Obj | None, Obj | None], None]
IndexFunc = Callable[[Obj], list[str]]


class Informer:
    def __init__(self, registry: Registry, rt: ResourceType, namespace: str | None = None) -> None:
        self.registry = registry
        self.rt = rt
        self.namespace = namespace
        self.objects: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        self._handlers: list[Handler] = []
        self._indexers: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        # Each object's values in each index, so an update computes only the new ones.
        self._values: dict[str, dict[str, list[str]]] = {}
        self.revision = 0

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Keep a secondary index: index value -> keys of the objects that have it."""
        self._indexers[name] = func
        index: dict[str, set[str]] = {}
        values: dict[str, list[str]] = {}
        for key, obj in self.objects.items():
            values[key] = func(obj)
            for value in values[key]:
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index
        self._values[name] = values

    def get(self, key: str) -> Obj | None:
        return self.objects.get(key)

    def by_index(self, name: str, value: str) -> list[Obj]:
        keys = self._indexes[name].get(value, ())
        return [self.objects[k] for k in keys if k in self.objects]

    def list(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            return list(self.objects.values())
        prefix = f"{namespace}/"
        return [o for k, o in self.objects.items() if k.startswith(prefix)]

    # -- running -------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await self._relist()
            try:
                async for ev in self.registry.watch(self.rt, self.namespace, self.revision):
                    obj = ev.kv.obj
                    self.revision = ev.revision
                    if ev.type == "DELETED":
                        self._delete(object_key(obj))
                    else:
                        self._put(obj)
            except ApiError as e:
                if e.code != 410:
                    raise
                log.info("%s informer fell behind; listing again", self.rt.plural)
                continue
            return  # the store closed

    async def _relist(self) -> None:
        listed = await self.registry.list(self.rt, self.namespace)
        seen = set()
        for kv in listed.items:
            obj = kv.obj
            seen.add(object_key(obj))
            self._put(obj)
        for key in [k for k in self.objects if k not in seen]:
            self._delete(key)
        self.revision = listed.revision
        self.synced.set()

    def _put(self, obj: Obj) -> None:
        key = object_key(obj)
        old = self.objects.get(key)
        if old is not None and _rv(old) >= _rv(obj):
            return
        self.objects[key] = obj
        self._reindex(key, old, obj)
        self._notify("MODIFIED" if old is not None else "ADDED", old, obj)

    def _delete(self, key: str) -> None:
        old = self.objects.pop(key, None)
        if old is None:
            return
        self._reindex(key, old, None)
        self._notify("DELETED", old, None)

    def _reindex(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for name, func in self._indexers.items():
            values = self._values[name]
            before = values.get(key, [])
            after = func(new) if new is not None else []
            if before == after:
                continue  # most updates leave an index alone
            index = self._indexes[name]
            for value in before:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in after:
                index.setdefault(value, set()).add(key)
            if new is None:
                del values[key]
            else:
                values[key] = after

    def _notify(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for handler in self._handlers:
            try:
                handler(kind, old, new)
            except Exception:
                log.exception("%s informer handler failed", self.rt.plural)


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0
