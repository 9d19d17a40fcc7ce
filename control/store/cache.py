"""A read cache in front of any store, like the Kubernetes apiserver's watch cache.

`get`, `list` and `revision` are answered from memory on the event loop: no
thread hop and no round trip. Writes, `watch` and compaction go to the wrapped
backend; a watch's events are held until the cache has applied them, so that
whoever reacts to an event reads at least that state.

How the cache stays current:
- `open()` lists the whole backend, then watches it from that list's revision
  and applies the events in order. Writes made by other API servers sharing the
  backend (etcd) show up through this watch, a little later.
- Each of this store's own successful writes is applied as soon as the backend
  answers it, so a caller reads its own writes at once.
- The two sources race. A key never goes back to an older revision; a delete
  leaves a tombstone with its revision until the watch has passed it, so that
  a late event cannot bring the key back; and an own write at or below the
  watch's revision is dropped, since the watch applied it or something newer.
- A watch that falls behind compaction (`Compacted`) makes the cache list again.

Revisions: `revision()` is the newest revision seen. A list answers at the
newest revision up to which every write has been applied ("synced"); own
writes made after it (answered out of order) may already show in its items.
So a watch from a list's revision misses nothing, though it may repeat such
an own write.

Shared backends (etcd with several API servers): reads are consistent, as
Kubernetes' quorum reads are, so that a client whose requests a load balancer
spreads over the servers reads what it just wrote through another. As
Kubernetes' consistent reads from cache do, `get` and a first `list` page ask
the backend for its revision (one small round trip), wait until the cache has
applied it, and answer from memory; when the cache does not get there within
FRESH_TIMEOUT (a write outside the keyspace leaves a gap its watch never
fills), they read the backend.

Paging: continue tokens have the backend's format. A page is served from
memory only when the token's revision is exactly the cache's current state (no
write applied since); any other page is delegated to the backend, which reads
it at the token's revision (or raises Compacted).

Memory: the raw bytes of every current object are kept, each in a buffer of
its own size (see `_compact`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterator
from heapq import heapify, heappop, heappush
from operator import attrgetter
from typing import Final, Literal

from control.store.interface import (
    KV,
    Compacted,
    ListResult,
    Matcher,
    Obj,
    RevisionConflict,
    Store,
    StoreError,
    WatchEvent,
)
from control.store.keyspace import decode_token, encode_token, prefix_end
from control.store.pages import Page

log = logging.getLogger(__name__)

# The contract makes "" the prefix of every key (`list("")` returns all).
_ALL: Final = ""
_RETRY_MIN: Final = 0.05
# How long a consistent read on a shared backend waits for the cache (see above).
FRESH_TIMEOUT: Final = 0.1
_MAX_WAITERS: Final = 1000
_RETRY_MAX: Final = 2.0

_key_of = attrgetter("key")


def _compact(kv: KV) -> KV:
    """`kv` with its bytes copied to an exact-size buffer.

    A written value's bytes come from `orjson.dumps`, whose buffer keeps several
    KiB allocated behind a value of a few hundred bytes: held for every key, that
    is most of the cache's memory. The copy costs a memcpy per write.
    """
    return KV(kv.key, bytes(memoryview(kv.raw)), kv.mod_revision, kv.create_revision)


async def _aclose(it: AsyncIterator[WatchEvent]) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()


class CachedStore(Store):
    """Serves reads from memory, kept current by a watch on `backend`.

    `catch_up_timeout` bounds how long a write that lost a compare-and-swap
    waits for the cache to show the winning write before raising (so that a
    caller's retry reads it), and how long a watch event waits for the cache
    to apply it. Both matter when other API servers write.
    """

    def __init__(
        self, backend: Store, *, catch_up_timeout: float = 1.0, shared: bool = False
    ) -> None:
        self.backend = backend
        self._shared = shared  # other writers share the backend: read it, not memory
        self._catch_up_timeout = catch_up_timeout
        self._state: Literal["new", "opening", "open", "closed"] = "new"
        # The current objects: by key, and in key order. One sorted list costs a
        # memmove per insert or delete (µs at 20,000 keys) and makes a list a slice.
        self._data: dict[str, KV] = {}
        self._kvs: list[KV] = []
        # Keys deleted by own writes the watch has not passed yet: key -> revision.
        self._tombstones: dict[str, int] = {}
        self._tomb_heap: list[tuple[int, str]] = []
        self._rev = 0  # newest revision seen
        self._watch_rev = 0  # the watch has applied everything up to here
        self._synced = 0  # every write up to here is applied (watch or own)
        self._pending: list[int] = []  # own-write revisions above _synced (a heap)
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_ids = itertools.count()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        if self._state != "new":
            raise StoreError("cached store was already opened")
        self._state = "opening"
        try:
            await self.backend.open()
        except BaseException:
            self._state = "closed"
            raise
        try:
            self._load(await self.backend.list(_ALL))
        except BaseException:
            self._state = "closed"
            await self.backend.close()
            raise
        self._state = "open"
        self._task = asyncio.create_task(self._follow(), name="store-cache-watch")

    async def close(self) -> None:
        if self._state != "open":
            return
        self._state = "closed"
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        for _, _, fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()
        await self.backend.close()

    def _check_open(self) -> None:
        if self._state != "open":
            raise StoreError("store is closed")

    # -- reads -------------------------------------------------------------

    async def revision(self) -> int:
        return self._rev

    async def get(self, key: str) -> KV | None:
        self._check_open()
        if self._shared and not await self._fresh():
            return await self.backend.get(key)
        return self._data.get(key)

    async def list(
        self,
        prefix: str,
        *,
        match: Matcher | None = None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> ListResult:
        """See `Store.list`. A malformed `continue_token` raises ValueError.

        Pages at an older revision than the cache's state are read by the backend.
        """
        self._check_open()
        if self._shared and not continue_token and not await self._fresh():
            return await self.backend.list(prefix, match=match, limit=limit)
        kvs = self._kvs
        if continue_token:
            token_rev, rel = decode_token(continue_token)
            if token_rev != self._synced or token_rev != self._rev:
                return await self.backend.list(
                    prefix, match=match, limit=limit, continue_token=continue_token
                )
            lo = bisect_right(kvs, prefix + rel, key=_key_of)
        else:
            lo = bisect_left(kvs, prefix, key=_key_of)
        end = prefix_end(prefix)
        hi = len(kvs) if end is None else bisect_left(kvs, end, lo, key=_key_of)
        revision = self._synced
        if match is None:
            if limit <= 0 or hi - lo <= limit:
                return ListResult(kvs[lo:hi], revision, None, None)
            items = kvs[lo : lo + limit]
            token = encode_token(revision, prefix, items[-1].key)
            return ListResult(items, revision, token, hi - lo - limit)

        # `match` runs on the event loop now: orjson keeps the parse per object
        # to microseconds, and nothing is parsed when there is no `match`.
        page = Page(match, limit)
        page.add(map(kvs.__getitem__, range(lo, hi)))
        return page.result(revision, prefix)

    # -- writes ------------------------------------------------------------

    async def create(self, key: str, obj: Obj) -> KV:
        kv = await self.backend.create(key, obj)
        self._apply_own(kv, deleted=False)
        return kv

    async def update(self, key: str, obj: Obj, *, expected_revision: int | None = None) -> KV:
        try:
            kv = await self.backend.update(key, obj, expected_revision=expected_revision)
        except RevisionConflict as e:
            await self._catch_up(key, e.actual)
            raise
        self._apply_own(kv, deleted=False)
        return kv

    async def delete(self, key: str, *, expected_revision: int | None = None) -> KV:
        try:
            kv = await self.backend.delete(key, expected_revision=expected_revision)
        except RevisionConflict as e:
            await self._catch_up(key, e.actual)
            raise
        self._apply_own(kv, deleted=True)
        return kv

    # -- delegated ---------------------------------------------------------

    async def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        """The backend's watch, each event held until the cache has applied it.

        So a caller that reacts to an event by reading gets at least that state.
        """
        it = self.backend.watch(prefix, from_revision)
        try:
            async for ev in it:
                if ev.revision > self._synced:
                    await self._wait_synced(ev.revision)
                yield ev
        finally:
            await _aclose(it)

    async def compact(self, revision: int) -> None:
        await self.backend.compact(revision)

    async def compacted_revision(self) -> int:
        return await self.backend.compacted_revision()

    # -- keeping current ---------------------------------------------------

    async def _follow(self) -> None:
        """The watch task: apply the backend's events; list again when compacted."""
        delay = _RETRY_MIN
        relist = False
        while True:
            try:
                if relist:
                    self._load(await self.backend.list(_ALL))
                    relist = False
                it = self.backend.watch(_ALL, self._watch_rev)
                try:
                    async for ev in it:
                        self._apply_event(ev)
                        delay = _RETRY_MIN
                finally:
                    await _aclose(it)
            except Compacted as e:
                log.warning("store cache fell behind compaction (%s); listing again", e)
                relist = True
                continue
            except Exception as e:
                log.warning("store cache watch failed: %s; retrying in %.2fs", e, delay)
            if self._state != "open":
                return
            # The watch ended or failed while open: the backend may be restarting.
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)

    def _load(self, listed: ListResult) -> None:
        """Replace the contents with a full list, keeping own writes newer than it."""
        at = listed.revision
        old, old_tombstones = self._data, self._tombstones
        self._kvs = sorted(listed.items, key=_key_of)  # already sorted: linear
        self._data = {kv.key: kv for kv in self._kvs}
        self._tombstones = {}
        self._tomb_heap = []
        self._watch_rev = at
        self._rev = max(self._rev, at)
        for kv in old.values():
            if kv.mod_revision > at:
                self._store_kv(kv)
        for key, rev in old_tombstones.items():
            if rev > at:
                self._drop_key(key, rev, tombstone=True)
        self._synced = max(self._synced, at)
        self._advance()

    def _apply_event(self, ev: WatchEvent) -> None:
        kv = ev.kv
        rev = kv.mod_revision
        if rev <= self._watch_rev:
            return
        if ev.type == "DELETED":
            self._drop_key(kv.key, rev, tombstone=False)
        else:
            self._store_kv(kv)
        self._watch_rev = rev
        if rev > self._rev:
            self._rev = rev
        heap = self._tomb_heap
        while heap and heap[0][0] <= rev:
            trev, key = heappop(heap)
            if self._tombstones.get(key) == trev:
                del self._tombstones[key]
        if rev > self._synced:
            self._synced = rev
        self._advance()

    def _apply_own(self, kv: KV, *, deleted: bool) -> None:
        rev = kv.mod_revision
        if rev <= self._watch_rev:
            return  # the watch applied it, or a newer state of the key
        if deleted:
            self._drop_key(kv.key, rev, tombstone=True)
        else:
            self._store_kv(kv)
        if rev > self._rev:
            self._rev = rev
        if rev > self._synced:
            heappush(self._pending, rev)
            self._advance()

    def _store_kv(self, kv: KV) -> None:
        """Set a key's value, unless the cache knows a newer one or a newer delete."""
        key = kv.key
        rev = kv.mod_revision
        cur = self._data.get(key)
        if cur is not None:
            if cur.mod_revision >= rev:
                return
            kv = _compact(kv)
            self._kvs[bisect_left(self._kvs, key, key=_key_of)] = kv
        else:
            tomb = self._tombstones.get(key)
            if tomb is not None:
                if tomb >= rev:
                    return
                del self._tombstones[key]
            kv = _compact(kv)
            self._kvs.insert(bisect_left(self._kvs, key, key=_key_of), kv)
        self._data[key] = kv

    def _drop_key(self, key: str, rev: int, *, tombstone: bool) -> None:
        """Delete a key at `rev`, unless the cache holds a newer value for it."""
        cur = self._data.get(key)
        if cur is not None:
            if cur.mod_revision >= rev:
                return
            del self._kvs[bisect_left(self._kvs, key, key=_key_of)]
            del self._data[key]
        if tombstone and self._tombstones.get(key, 0) < rev:
            self._tombstones[key] = rev
            heappush(self._tomb_heap, (rev, key))

    def _advance(self) -> None:
        """Move `_synced` over own writes that close the gap, and wake waiters."""
        pending = self._pending
        synced = self._synced
        # Every revision is one write, so revisions with no gap are all applied.
        while pending and pending[0] <= synced + 1:
            synced = max(synced, heappop(pending))
        self._synced = synced
        waiters = self._waiters
        while waiters and waiters[0][0] <= synced:
            fut = heappop(waiters)[2]
            if not fut.done():
                fut.set_result(None)

    async def _catch_up(self, key: str, revision: int) -> None:
        """After a lost compare-and-swap: wait until `key` shows `revision`."""
        cur = self._data.get(key)
        if cur is None or cur.mod_revision < revision:
            await self._wait_synced(revision)

    async def _fresh(self) -> bool:
        """Whether the cache holds every write the backend had made when asked."""
        revision = await self.backend.revision()
        await self._wait_synced(revision, FRESH_TIMEOUT)
        return self._synced >= revision

    async def _wait_synced(self, revision: int, within: float | None = None) -> None:
        """Wait until every write up to `revision` is applied, or `within`
        seconds (`catch_up_timeout` when None)."""
        if self._synced >= revision or self._state != "open":
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heappush(self._waiters, (revision, next(self._waiter_ids), fut))
        # A timer, not asyncio.timeout: watches come here for many events.
        timer = loop.call_later(self._catch_up_timeout if within is None else within, _expire, fut)
        try:
            await fut
        finally:
            timer.cancel()
        if self._synced < revision and len(self._waiters) > _MAX_WAITERS:
            # Waiters that timed out on revisions the watch may never reach (a
            # gap) are dropped, so that they cannot pile up.
            self._waiters = [w for w in self._waiters if not w[2].done()]
            heapify(self._waiters)


def _expire(fut: asyncio.Future[None]) -> None:
    """A wait's time is up: it goes on with what the cache has."""
    if not fut.done():
        fut.set_result(None)
