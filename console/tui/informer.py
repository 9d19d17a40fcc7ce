"""A list+watch cache of one kind, through the API client.

It lists, then watches from the list's resourceVersion. A watch that answers
410 Gone (too old) lists again and reports the difference, and a dropped
connection retries with capped backoff. Subscribers get the keys that changed;
they read the objects from `objects`. With `project`, the cache keeps only
what `project(obj)` returns (the fields the views read), page by page as the
list arrives, so the full objects are never all held at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Iterator

from control.client import Client, ClusterUnreachable
from control.errors import ApiError
from control.objects import Obj
from control.objects.kinds import ResourceType, object_key

log = logging.getLogger(__name__)

Listener = Callable[[set[str]], None]
Projection = Callable[[Obj], Obj]
PAGE = 2000  # whole pods decoded at once: fewer keep the peak (and so RSS) down


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """No garbage collection while decoding or rendering thousands of objects.

    They allocate millions of objects without making cycles, and each full
    collection on the way walks every object in the process (the hosted control
    plane's too): pure cost, paid with the GIL held. Afterwards what survived is
    frozen out of later collections.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.freeze()


class WatchCache:
    def __init__(self, client: Client, rt: ResourceType, project: Projection | None = None) -> None:
        self.client = client
        self.rt = rt
        self.project: Projection = project or (lambda obj: obj)
        self.objects: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        self.error: str | None = None
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._rv: str | None = None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"watch {self.rt.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _notify(self, keys: set[str]) -> None:
        if keys:
            for listener in list(self._listeners):
                listener(keys)

    async def _list(self) -> None:
        # The first list shows each page as it arrives; a re-list reports the
        # difference once it has every page.
        first = not self.objects
        fresh: dict[str, Obj] = self.objects if first else {}
        project = self.project
        with bulk():
            page = await self.client.list(self.rt, limit=PAGE)
        while True:
            # Ask for the next page before taking this one: the server works on it meanwhile.
            token = (page.get("metadata") or {}).get("continue")
            following = (
                asyncio.ensure_future(self.client.list(self.rt, limit=PAGE, continue_token=token))
                if token
                else None
            )
            with bulk():
                keys = set()
                for obj in page.get("items") or []:
                    key = object_key(obj)
                    fresh[key] = project(obj)
                    keys.add(key)
                if following is None:
                    self._rv = str((page.get("metadata") or {}).get("resourceVersion") or "")
                    self.error = None
                if first:
                    if following is None:
                        self.synced.set()  # before the last page's news: it completes the list
                    self._notify(keys)
            if following is None:
                break
            with bulk():
                page = await following
        if first:
            return
        changed = set(self.objects.keys() - fresh.keys())
        for key, obj in fresh.items():
            old = self.objects.get(key)
            if old is None or old.get("metadata", {}).get("resourceVersion") != obj.get(
                "metadata", {}
            ).get("resourceVersion"):
                changed.add(key)
        self.objects = fresh
        self.synced.set()
        self._notify(changed)

    async def _run(self) -> None:
        backoff = 0.2
        need_list = True
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                async for kind, obj in self.client.watch(self.rt, resource_version=self._rv):
                    key = object_key(obj)
                    rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if rv:
                        self._rv = str(rv)
                    if kind == "DELETED":
                        self.objects.pop(key, None)
                    elif kind in ("ADDED", "MODIFIED"):
                        self.objects[key] = self.project(obj)
                    else:
                        continue
                    self._notify({key})
                    backoff = 0.2
            except ApiError as e:
                if e.code == 410:
                    need_list = True
                    continue
                self.error = f"{self.rt.plural}: {e.message}"
                log.debug("watch %s: %s", self.rt.plural, e)
            except ClusterUnreachable as e:
                self.error = str(e)
                need_list = True
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.error = f"{self.rt.plural}: {e}"
                log.exception("watch %s", self.rt.plural)
                need_list = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
