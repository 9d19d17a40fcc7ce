"""The store contract: every backend passes these tests unchanged.

A backend's test module subclasses `StoreContract` and overrides the `store`
fixture to yield an open, empty store (closed after the test):

    class TestMyStore(StoreContract):
        @pytest.fixture
        async def store(self, tmp_path): ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest

from control.store.interface import (
    KV,
    Compacted,
    KeyExists,
    KeyNotFound,
    Obj,
    RevisionConflict,
    Store,
    WatchEvent,
)

TIMEOUT = 3.0

S = TypeVar("S", bound=Store)


@contextlib.asynccontextmanager
async def opened(store: S) -> AsyncIterator[S]:
    """`store`, open until the block ends."""
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def pod(name: str, ns: str = "default", **labels: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }


def key(name: str, ns: str = "default") -> str:
    return f"/registry/pods/{ns}/{name}"


async def next_event(it: AsyncIterator[WatchEvent]) -> WatchEvent:
    return await asyncio.wait_for(anext(it), TIMEOUT)


async def take(it: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
    return [await next_event(it) for _ in range(n)]


async def no_event(it: AsyncIterator[WatchEvent]) -> None:
    """Assert nothing arrives for a moment. The iterator is unusable afterwards."""
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(anext(it), 0.2)


async def close_iter(it: AsyncIterator[Any]) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()


def rv(kv: KV) -> str:
    return str(kv.obj["metadata"]["resourceVersion"])


class StoreContract:
    @pytest.fixture
    async def store(self) -> AsyncIterator[Store]:
        raise NotImplementedError("a backend's test class overrides the store fixture")
        yield  # pragma: no cover

    # -- create / get ------------------------------------------------------

    async def test_empty_store(self, store: Store) -> None:
        assert await store.revision() == 0
        assert await store.compacted_revision() == 0
        assert await store.get(key("nope")) is None
        result = await store.list("/registry/")
        assert result.items == []
        assert result.continue_token is None

    async def test_create_and_get(self, store: Store) -> None:
        obj = pod("a", app="web")
        kv = await store.create(key("a"), obj)
        assert kv.key == key("a")
        assert kv.mod_revision == kv.create_revision == 1
        assert kv.obj["metadata"]["resourceVersion"] == "1"
        assert kv.obj["spec"] == obj["spec"]
        assert "resourceVersion" not in obj["metadata"], "the caller's dict is not mutated"
        got = await store.get(key("a"))
        assert got == kv
        assert got.obj == kv.obj

    async def test_create_existing_raises(self, store: Store) -> None:
        await store.create(key("a"), pod("a"))
        with pytest.raises(KeyExists) as info:
            await store.create(key("a"), pod("a"))
        assert info.value.key == key("a")
        assert await store.revision() == 1, "a failed write does not bump the revision"

    async def test_revision_increments_by_one_per_write(self, store: Store) -> None:
        revs = [(await store.create(key(f"p{i}"), pod(f"p{i}"))).mod_revision for i in range(3)]
        revs.append((await store.update(key("p0"), pod("p0"))).mod_revision)
        revs.append((await store.delete(key("p1"))).mod_revision)
        assert revs == [1, 2, 3, 4, 5]
        assert await store.revision() == 5

    async def test_resource_version_is_stamped(self, store: Store) -> None:
        obj = pod("a")
        obj["metadata"]["resourceVersion"] = "999"
        created = await store.create(key("a"), obj)
        assert rv(created) == str(created.mod_revision)
        updated = await store.update(key("a"), created.obj)
        assert rv(updated) == str(updated.mod_revision) == "2"
        got = await store.get(key("a"))
        assert got is not None and rv(got) == "2"
        deleted = await store.delete(key("a"))
        assert rv(deleted) == str(deleted.mod_revision) == "3"

    # -- list --------------------------------------------------------------

    async def test_list_is_in_key_order_and_prefix_isolated(self, store: Store) -> None:
        for ns, name in [("a", "z"), ("ab", "x"), ("a", "b"), ("b", "c"), ("a", "m"), ("a-", "q")]:
            await store.create(key(name, ns), pod(name, ns))
        await store.create("/registry/services/a/s", {"metadata": {"name": "s"}})
        result = await store.list("/registry/pods/a/")
        assert [kv.key for kv in result.items] == [key("b", "a"), key("m", "a"), key("z", "a")]
        assert result.revision == await store.revision() == 7
        assert result.continue_token is None
        everything = await store.list("/registry/pods/")
        assert [kv.key for kv in everything.items] == sorted(kv.key for kv in everything.items)
        assert len(everything.items) == 6
        assert len((await store.list("")).items) == 7

    async def test_list_items_carry_revisions(self, store: Store) -> None:
        await store.create(key("a"), pod("a"))
        await store.create(key("b"), pod("b"))
        await store.update(key("a"), pod("a"))
        items = (await store.list("/registry/pods/")).items
        assert [(kv.key, kv.mod_revision, kv.create_revision) for kv in items] == [
            (key("a"), 3, 1),
            (key("b"), 2, 2),
        ]
        assert [rv(kv) for kv in items] == ["3", "2"]

    async def test_list_paging(self, store: Store) -> None:
        names = [f"p{i:02d}" for i in range(25)]
        for name in names:
            await store.create(key(name), pod(name))
        seen: list[str] = []
        token: str | None = None
        pages = 0
        revision = await store.revision()
        while True:
            page = await store.list("/registry/pods/", limit=10, continue_token=token)
            pages += 1
            assert len(page.items) <= 10
            assert page.revision == revision
            seen += [kv.key for kv in page.items]
            token = page.continue_token
            if token is None:
                break
        assert pages == 3
        assert seen == [key(n) for n in names]
        # A page that ends exactly at the last item has no continue token.
        exact = await store.list("/registry/pods/", limit=25)
        assert len(exact.items) == 25
        assert exact.continue_token is None

    async def test_list_paging_reads_at_first_page_revision(self, store: Store) -> None:
        for i in range(6):
            await store.create(key(f"p{i}"), pod(f"p{i}", v="old"))
        first = await store.list("/registry/pods/", limit=2)
        assert [kv.key for kv in first.items] == [key("p0"), key("p1")]
        # Writes after the first page do not show in the next ones.
        await store.update(key("p3"), pod("p3", v="new"))
        await store.delete(key("p4"))
        await store.create(key("p2a"), pod("p2a"))
        rest: list[KV] = []
        token = first.continue_token
        while token is not None:
            page = await store.list("/registry/pods/", limit=2, continue_token=token)
            assert page.revision == first.revision
            rest += page.items
            token = page.continue_token
        assert [kv.key for kv in rest] == [key(f"p{i}") for i in range(2, 6)]
        p3 = next(kv for kv in rest if kv.key == key("p3"))
        assert p3.obj["metadata"]["labels"]["v"] == "old"
        assert p3.mod_revision <= first.revision
        # A fresh list sees the new state.
        now = await store.list("/registry/pods/")
        assert [kv.key for kv in now.items] == [
            key(n) for n in ["p0", "p1", "p2", "p2a", "p3", "p5"]
        ]

    async def test_list_match_filters_before_limit(self, store: Store) -> None:
        for i in range(20):
            await store.create(key(f"p{i:02d}"), pod(f"p{i:02d}", even=str(i % 2 == 0).lower()))

        def even(obj: Obj) -> bool:
            return bool(obj["metadata"]["labels"]["even"] == "true")

        page = await store.list("/registry/pods/", match=even, limit=4)
        assert [kv.key for kv in page.items] == [key(f"p{i:02d}") for i in (0, 2, 4, 6)]
        seen = [kv.key for kv in page.items]
        while page.continue_token is not None:
            page = await store.list(
                "/registry/pods/", match=even, limit=4, continue_token=page.continue_token
            )
            assert len(page.items) <= 4
            seen += [kv.key for kv in page.items]
        assert seen == [key(f"p{i:02d}") for i in range(0, 20, 2)]
        unpaged = await store.list("/registry/pods/", match=even)
        assert [kv.key for kv in unpaged.items] == seen

    async def test_list_token_from_compacted_revision(self, store: Store) -> None:
        for i in range(4):
            await store.create(key(f"p{i}"), pod(f"p{i}"))
        first = await store.list("/registry/pods/", limit=2)
        assert first.continue_token is not None
        await store.update(key("p3"), pod("p3"))
        await store.compact(await store.revision())
        with pytest.raises(Compacted):
            await store.list("/registry/pods/", limit=2, continue_token=first.continue_token)

    # -- update ------------------------------------------------------------

    async def test_update_compare_and_swap(self, store: Store) -> None:
        created = await store.create(key("a"), pod("a"))
        obj = created.obj
        obj["spec"]["nodeName"] = "n1"
        updated = await store.update(key("a"), obj, expected_revision=created.mod_revision)
        assert updated.mod_revision == created.mod_revision + 1
        assert updated.create_revision == created.create_revision
        assert updated.obj["spec"]["nodeName"] == "n1"
        with pytest.raises(RevisionConflict) as info:
            await store.update(key("a"), pod("a"), expected_revision=created.mod_revision)
        assert info.value.expected == created.mod_revision
        assert info.value.actual == updated.mod_revision
        assert await store.get(key("a")) == updated
        assert await store.revision() == updated.mod_revision

    async def test_update_unconditional(self, store: Store) -> None:
        await store.create(key("a"), pod("a"))
        await store.update(key("a"), pod("a", x="1"))
        final = await store.update(key("a"), pod("a", x="2"))
        assert final.mod_revision == 3
        got = await store.get(key("a"))
        assert got is not None and got.obj["metadata"]["labels"] == {"x": "2"}

    async def test_update_missing_key(self, store: Store) -> None:
        with pytest.raises(KeyNotFound):
            await store.update(key("a"), pod("a"))
        with pytest.raises(KeyNotFound):
            await store.update(key("a"), pod("a"), expected_revision=1)
        assert await store.revision() == 0

    async def test_concurrent_updates_exactly_one_wins(self, store: Store) -> None:
        created = await store.create(key("a"), pod("a"))
        results = await asyncio.gather(
            store.update(key("a"), pod("a", w="1"), expected_revision=created.mod_revision),
            store.update(key("a"), pod("a", w="2"), expected_revision=created.mod_revision),
            return_exceptions=True,
        )
        wins = [r for r in results if isinstance(r, KV)]
        conflicts = [r for r in results if isinstance(r, RevisionConflict)]
        assert len(wins) == 1 and len(conflicts) == 1, results
        assert await store.get(key("a")) == wins[0]

    # -- delete ------------------------------------------------------------

    async def test_delete_returns_last_value(self, store: Store) -> None:
        created = await store.create(key("a"), pod("a", app="web"))
        deleted = await store.delete(key("a"))
        assert deleted.mod_revision == 2
        assert deleted.create_revision == created.create_revision
        assert deleted.obj["metadata"]["labels"] == {"app": "web"}
        assert rv(deleted) == "2"
        assert await store.get(key("a")) is None
        assert (await store.list("/registry/pods/")).items == []
        with pytest.raises(KeyNotFound):
            await store.delete(key("a"))
        # The key can be created again, with a new create revision.
        again = await store.create(key("a"), pod("a"))
        assert again.create_revision == again.mod_revision == 3

    async def test_delete_compare_and_swap(self, store: Store) -> None:
        created = await store.create(key("a"), pod("a"))
        await store.update(key("a"), pod("a"))
        with pytest.raises(RevisionConflict):
            await store.delete(key("a"), expected_revision=created.mod_revision)
        assert await store.get(key("a")) is not None
        deleted = await store.delete(key("a"), expected_revision=2)
        assert deleted.mod_revision == 3
        with pytest.raises(KeyNotFound):
            await store.delete(key("a"), expected_revision=3)

    # -- watch -------------------------------------------------------------

    async def test_watch_from_current_revision_streams_live_events(self, store: Store) -> None:
        await store.create(key("old"), pod("old"))
        it = store.watch("/registry/pods/", await store.revision())
        try:
            waiter = asyncio.ensure_future(take(it, 3))
            await asyncio.sleep(0.05)
            a = await store.create(key("a"), pod("a"))
            await store.create("/registry/services/default/s", {"metadata": {"name": "s"}})
            b = await store.update(key("a"), pod("a", x="1"))
            c = await store.delete(key("a"))
            events = await waiter
            assert [(e.type, e.kv) for e in events] == [
                ("ADDED", a),
                ("MODIFIED", b),
                ("DELETED", c),
            ]
            assert [e.revision for e in events] == [2, 4, 5]
        finally:
            await close_iter(it)

    async def test_watch_prefix_isolation(self, store: Store) -> None:
        it = store.watch("/registry/pods/a/", 0)
        try:
            await store.create(key("x", "ab"), pod("x", "ab"))
            await store.create(key("y", "a"), pod("y", "a"))
            event = await next_event(it)
            assert event.kv.key == key("y", "a")
            await no_event(it)
        finally:
            await close_iter(it)

    async def test_watch_resume_replays_then_goes_live(self, store: Store) -> None:
        kvs = [await store.create(key(f"p{i}"), pod(f"p{i}")) for i in range(5)]
        it = store.watch("/registry/pods/", kvs[1].mod_revision)
        try:
            replayed = await take(it, 3)
            assert [e.kv for e in replayed] == kvs[2:]
            assert all(e.type == "ADDED" for e in replayed)
            live = await store.update(key("p0"), pod("p0"))
            event = await next_event(it)
            assert (event.type, event.kv) == ("MODIFIED", live)
        finally:
            await close_iter(it)

    async def test_watch_has_no_gap_or_duplicate_under_concurrent_writes(
        self, store: Store
    ) -> None:
        for i in range(50):
            await store.create(key(f"pre{i}"), pod(f"pre{i}"))

        async def write() -> None:
            for i in range(150):
                await store.create(key(f"live{i}"), pod(f"live{i}"))

        writer = asyncio.ensure_future(write())
        it = store.watch("/registry/pods/", 10)
        try:
            events = await take(it, 190)
            await writer
            assert [e.revision for e in events] == list(range(11, 201))
        finally:
            await close_iter(it)

    async def test_watch_deleted_event_carries_last_value(self, store: Store) -> None:
        await store.create(key("a"), pod("a", app="web"))
        it = store.watch("/registry/pods/", 1)
        try:
            await store.delete(key("a"))
            event = await next_event(it)
            assert event.type == "DELETED"
            assert event.revision == 2
            assert event.kv.obj["metadata"]["labels"] == {"app": "web"}
            assert rv(event.kv) == "2"
        finally:
            await close_iter(it)

    async def test_watch_replayed_deleted_event_carries_last_value(self, store: Store) -> None:
        await store.create(key("a"), pod("a", app="web"))
        await store.delete(key("a"))
        it = store.watch("/registry/pods/", 0)
        try:
            added, deleted = await take(it, 2)
            assert (added.type, deleted.type) == ("ADDED", "DELETED")
            assert deleted.kv.obj["metadata"]["labels"] == {"app": "web"}
            assert rv(deleted.kv) == "2"
            assert deleted.kv.create_revision == 1
        finally:
            await close_iter(it)

    async def test_watch_from_compacted_revision_raises(self, store: Store) -> None:
        for i in range(5):
            await store.create(key(f"p{i}"), pod(f"p{i}"))
        await store.compact(3)
        assert await store.compacted_revision() == 3
        it = store.watch("/registry/pods/", 2)
        try:
            with pytest.raises(Compacted) as info:
                await next_event(it)
            assert info.value.requested == 2
            assert info.value.compacted == 3
        finally:
            await close_iter(it)
        # From the compacted revision itself, nothing is missing.
        it = store.watch("/registry/pods/", 3)
        try:
            assert [e.revision for e in await take(it, 2)] == [4, 5]
        finally:
            await close_iter(it)

    async def test_watch_ends_when_store_closes(self, store: Store) -> None:
        it = store.watch("/registry/pods/", await store.revision())

        async def drain() -> list[WatchEvent]:
            return [e async for e in it]

        task = asyncio.ensure_future(drain())
        await asyncio.sleep(0.05)
        await store.create(key("a"), pod("a"))
        await asyncio.sleep(0.05)
        await store.close()
        events = await asyncio.wait_for(task, TIMEOUT)
        assert [e.type for e in events] == ["ADDED"]
        await store.close()  # closing twice is harmless

    # -- compaction --------------------------------------------------------

    async def test_compaction_keeps_current_values(self, store: Store) -> None:
        await store.create(key("a"), pod("a"))
        await store.create(key("b"), pod("b"))
        await store.update(key("a"), pod("a", v="2"))
        await store.create(key("c"), pod("c"))
        await store.delete(key("c"))
        before = await store.list("/registry/pods/")
        await store.compact(await store.revision())
        assert await store.compacted_revision() == 5
        assert await store.revision() == 5
        after = await store.list("/registry/pods/")
        assert after.items == before.items
        assert [kv.key for kv in after.items] == [key("a"), key("b")]
        got = await store.get(key("a"))
        assert got is not None and got.obj["metadata"]["labels"] == {"v": "2"}
        # Compacting to an older revision is a no-op; writes go on.
        await store.compact(2)
        assert await store.compacted_revision() == 5
        assert (await store.create(key("d"), pod("d"))).mod_revision == 6
