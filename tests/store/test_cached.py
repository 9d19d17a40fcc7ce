"""The cached store: the shared contract, plus what the cache itself promises."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from control.store.cache import CachedStore
from control.store.interface import KV, ListResult, RevisionConflict, Store, StoreError, WatchEvent
from control.store.sqlite import SqliteStore
from tests.polling import eventually
from tests.store.contract import TIMEOUT, StoreContract, close_iter, key, opened, pod


class TestCachedStore(StoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Store]:
        async with opened(CachedStore(SqliteStore(tmp_path / "store.db"))) as s:
            yield s


class ProbeStore(SqliteStore):
    """A backend whose watches of every key (the cache's) can be held, as if the
    cache lagged, and let through event by event; it counts the lists it serves."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.permits: int | None = None  # events the watches may still pass; None: all
        self._changed = asyncio.Event()
        self.lists = 0

    def hold(self) -> None:
        self.permits = 0

    def release(self, n: int | None = None) -> None:
        self.permits = None if n is None else (self.permits or 0) + n
        self._changed.set()

    async def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        async with contextlib.aclosing(super().watch(prefix, from_revision)) as events:
            async for ev in events:
                while prefix == "" and self.permits == 0:
                    self._changed.clear()
                    await self._changed.wait()
                if prefix == "" and self.permits is not None:
                    self.permits -= 1
                yield ev

    async def list(self, prefix: str, **kwargs: Any) -> ListResult:
        self.lists += 1
        return await super().list(prefix, **kwargs)


@pytest.fixture
async def backend(tmp_path: Path) -> ProbeStore:
    return ProbeStore(tmp_path / "store.db", watch_buffer=4)


@pytest.fixture
async def cache(backend: ProbeStore) -> AsyncIterator[CachedStore]:
    async with opened(CachedStore(backend)) as c:
        yield c


async def caught_up(cache: CachedStore, backend: Store) -> None:
    """Write a marker key past the cache and wait until the cache's watch shows it."""
    marker = await backend.create(f"/registry/markers/{time.monotonic_ns()}", {"metadata": {}})

    async def seen() -> bool:
        return await cache.get(marker.key) == marker

    await eventually(seen, "the cache's watch reaches the marker", within=TIMEOUT)


async def test_reads_own_writes_while_the_watch_lags(
    cache: CachedStore, backend: ProbeStore
) -> None:
    backend.hold()
    created = await cache.create(key("a"), pod("a"))
    assert await cache.get(key("a")) == created
    assert [kv.key for kv in (await cache.list("/registry/pods/")).items] == [key("a")]
    assert await cache.revision() == created.mod_revision

    updated = await cache.update(key("a"), pod("a", v="2"), expected_revision=created.mod_revision)
    got = await cache.get(key("a"))
    assert got == updated and got.obj["metadata"]["labels"] == {"v": "2"}
    listed = await cache.list("/registry/pods/")
    assert listed.items == [updated]
    assert listed.revision == await cache.revision() == updated.mod_revision

    deleted = await cache.delete(key("a"))
    assert await cache.get(key("a")) is None
    assert (await cache.list("/registry/pods/")).items == []
    assert await cache.revision() == deleted.mod_revision


async def test_backend_writes_become_visible(cache: CachedStore, backend: ProbeStore) -> None:
    # Writes that bypass the cache stand for another API server sharing the backend.
    created = await backend.create(key("a"), pod("a"))

    async def shows(expected: KV | None) -> bool:
        return await cache.get(key("a")) == expected

    await eventually(lambda: shows(created), "a backend create shows", within=TIMEOUT)
    assert [kv.key for kv in (await cache.list("/registry/pods/")).items] == [key("a")]
    updated = await backend.update(key("a"), pod("a", v="2"))
    await eventually(lambda: shows(updated), "a backend update shows", within=TIMEOUT)
    deleted = await backend.delete(key("a"))
    await eventually(lambda: shows(None), "a backend delete shows", within=TIMEOUT)
    assert (await cache.list("/registry/pods/")).items == []
    assert await cache.revision() == deleted.mod_revision


async def test_late_watch_events_neither_resurrect_nor_regress(
    cache: CachedStore, backend: ProbeStore
) -> None:
    backend.hold()
    await cache.create(key("a"), pod("a"))
    await cache.update(key("a"), pod("a", v="2"))
    await cache.delete(key("a"))
    await cache.create(key("b"), pod("b"))
    b = await cache.update(key("b"), pod("b", v="2"))
    # The watch now delivers revisions 1..5 one by one, each older than what
    # the cache holds for its key.
    for revision in range(1, 6):
        backend.release(1)

        async def applied(r: int = revision) -> bool:
            return cache._watch_rev >= r

        await eventually(applied, f"the watch applies revision {revision}", within=TIMEOUT)
        assert await cache.get(key("a")) is None
        assert await cache.get(key("b")) == b
        assert [kv.key for kv in (await cache.list("/registry/pods/")).items] == [key("b")]
        assert await cache.revision() == b.mod_revision
    assert cache._tombstones == {}, "tombstones go once the watch has passed them"
    backend.release()
    await caught_up(cache, backend)
    assert await cache.get(key("a")) is None
    assert await cache.revision() == b.mod_revision + 1  # the marker


async def test_late_own_write_does_not_resurrect(cache: CachedStore, backend: ProbeStore) -> None:
    # An own create whose caller resumes only after the watch has applied both
    # that create and a later delete by another API server.
    created = await backend.create(key("a"), pod("a"))
    await backend.delete(key("a"))
    await caught_up(cache, backend)
    revision = await cache.revision()
    cache._apply_own(created, deleted=False)
    assert await cache.get(key("a")) is None
    assert await cache.revision() == revision


async def test_list_matches_the_backend_and_isolates_prefixes(
    cache: CachedStore, backend: ProbeStore
) -> None:
    names = [("a", "z"), ("ab", "x"), ("a", "b"), ("a-", "q"), ("a", "é"), ("a", "\U0001f600")]
    for ns, name in names:
        await cache.create(key(name, ns), pod(name, ns))
    await cache.create("/registry/pods/a", {"metadata": {"name": "a"}})
    await backend.create(key("m", "a"), pod("m", "a"))  # past the cache
    await caught_up(cache, backend)
    for prefix in ["/registry/pods/a/", "/registry/pods/a", "/registry/pods/", "/registry/", ""]:
        mine, theirs = await cache.list(prefix), await backend.list(prefix)
        assert mine.items == theirs.items, prefix
        assert mine.revision == theirs.revision
        assert all(kv.key.startswith(prefix) for kv in mine.items)
    only_a = await cache.list("/registry/pods/a/")
    assert [kv.key for kv in only_a.items] == [
        key(n, "a") for n in ["b", "m", "z", "é", "\U0001f600"]
    ]
    # Paging from the cache yields the same keys, page by page.
    seen: list[str] = []
    token: str | None = None
    while True:
        page = await cache.list("/registry/pods/a/", limit=2, continue_token=token)
        seen += [kv.key for kv in page.items]
        token = page.continue_token
        if token is None:
            break
    assert seen == [kv.key for kv in only_a.items]


async def test_pages_at_the_current_revision_come_from_memory(
    cache: CachedStore, backend: ProbeStore
) -> None:
    for i in range(5):
        await cache.create(key(f"p{i}"), pod(f"p{i}"))
    backend.lists = 0
    first = await cache.list("/registry/pods/", limit=2)
    assert first.remaining == 3
    second = await cache.list("/registry/pods/", limit=2, continue_token=first.continue_token)
    assert [kv.key for kv in second.items] == [key("p2"), key("p3")]
    assert backend.lists == 0
    # After a write, the cache no longer holds the token's revision: the backend reads it.
    await cache.delete(key("p4"))
    third = await cache.list("/registry/pods/", limit=2, continue_token=second.continue_token)
    assert [kv.key for kv in third.items] == [key("p4")]
    assert third.revision == first.revision
    assert backend.lists == 1


async def test_list_match_runs_on_cached_objects(cache: CachedStore) -> None:
    for i in range(6):
        await cache.create(key(f"p{i}"), pod(f"p{i}", even=str(i % 2 == 0).lower()))
    page = await cache.list(
        "/registry/pods/", match=lambda o: o["metadata"]["labels"]["even"] == "true", limit=2
    )
    assert [kv.key for kv in page.items] == [key("p0"), key("p2")]
    assert page.continue_token is not None
    with pytest.raises(ValueError):
        await cache.list("/registry/pods/", limit=1, continue_token="not a token")


async def test_relists_after_falling_behind_compaction(
    cache: CachedStore, backend: ProbeStore
) -> None:
    await cache.create(key("gone"), pod("gone"))
    backend.hold()
    # More writes than the watch buffers, then compaction past them all.
    kvs = [await backend.create(key(f"p{i:02d}"), pod(f"p{i:02d}")) for i in range(20)]
    await backend.delete(key("gone"))
    await backend.compact(await backend.revision())
    assert await cache.get(key("p19")) is None
    backend.release()

    async def relisted() -> bool:
        return await cache.get(key("p19")) == kvs[-1] and await cache.get(key("gone")) is None

    await eventually(relisted, "the cache lists again", within=TIMEOUT)
    listed = await cache.list("/registry/pods/")
    assert listed.items == kvs
    assert listed.revision == await backend.revision()
    # And it goes on following the backend.
    await caught_up(cache, backend)


async def test_lost_compare_and_swap_waits_for_the_winner(
    cache: CachedStore, backend: ProbeStore
) -> None:
    created = await cache.create(key("a"), pod("a"))
    backend.hold()
    winner = await backend.update(key("a"), pod("a", v="theirs"))
    asyncio.get_running_loop().call_later(0.1, backend.release)
    with pytest.raises(RevisionConflict):
        await asyncio.wait_for(
            cache.update(key("a"), pod("a", v="mine"), expected_revision=created.mod_revision),
            TIMEOUT,
        )
    # The caller's retry reads the write it lost to.
    assert await cache.get(key("a")) == winner


async def test_watch_events_wait_for_the_cache(backend: ProbeStore) -> None:
    cache = CachedStore(backend, catch_up_timeout=TIMEOUT)
    await cache.open()
    it = cache.watch("/registry/pods/", 0)
    try:
        backend.hold()
        created = await backend.create(key("a"), pod("a"))
        pending = asyncio.ensure_future(anext(it))
        await asyncio.sleep(0.2)
        assert not pending.done(), "the event waits until the cache has applied it"
        backend.release()
        event = await asyncio.wait_for(pending, TIMEOUT)
        assert event.kv == created
        assert await cache.get(key("a")) == created
    finally:
        await close_iter(it)
        await cache.close()


async def test_close_stops_the_watch_and_closes_the_backend(backend: ProbeStore) -> None:
    cache = CachedStore(backend)
    await cache.open()
    await cache.create(key("a"), pod("a"))
    task = cache._task
    assert task is not None and not task.done()
    await cache.close()
    assert task.done()
    with pytest.raises(StoreError):
        await cache.get(key("a"))
    with pytest.raises(StoreError):
        await backend.get(key("a"))
    await cache.close()


async def test_reopen_loads_what_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    first = CachedStore(SqliteStore(path))
    await first.open()
    kvs = [await first.create(key(f"p{i}"), pod(f"p{i}")) for i in range(3)]
    await first.delete(key("p1"))
    await first.close()
    async with opened(CachedStore(SqliteStore(path))) as again:
        assert (await again.list("/registry/pods/")).items == [kvs[0], kvs[2]]
        assert await again.revision() == 4
        assert await again.get(key("p2")) == kvs[2]
