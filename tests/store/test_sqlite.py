"""The SQLite store: the shared contract, plus what only this backend promises."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import stat
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control.store.interface import (
    Compacted,
    Store,
    StoreError,
    StoreFull,
    StoreLocked,
    WatchEvent,
)
from control.store.sqlite import SqliteStore
from tests.store.contract import (
    StoreContract,
    close_iter,
    key,
    next_event,
    opened,
    pod,
    take,
)

REPO = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def slow_watcher(
    db_path: Path, watch_buffer: int, **more: int
) -> AsyncIterator[tuple[SqliteStore, AsyncIterator[WatchEvent]]]:
    """A store with a watch of the pods from the start that has taken the first
    write's event (p0), and reads no more until the test does."""
    async with opened(SqliteStore(db_path, watch_buffer=watch_buffer, **more)) as s:
        it = s.watch("/registry/pods/", 0)
        try:
            await s.create(key("p0"), pod("p0"))
            assert (await next_event(it)).revision == 1
            yield s, it
        finally:
            await close_iter(it)


class TestSqliteStore(StoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Store]:
        async with opened(SqliteStore(tmp_path / "store.db")) as s:
            yield s


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "store.db"


async def test_wal_mode_is_on(db_path: Path) -> None:
    async with opened(SqliteStore(db_path)) as s:
        await s.create(key("a"), pod("a"))
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _modes(db_path: Path) -> dict[str, int]:
    """The permission bits of the store's files that exist, by suffix."""
    paths = {suffix: Path(f"{db_path}{suffix}") for suffix in ("", "-wal", "-shm")}
    return {s: stat.S_IMODE(p.stat().st_mode) for s, p in paths.items() if p.exists()}


def _widen(db_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").touch()
        os.chmod(f"{db_path}{suffix}", 0o644)


async def test_files_hold_secrets_so_only_the_owner_reads_them(db_path: Path) -> None:
    old = os.umask(0o022)
    try:
        async with opened(SqliteStore(db_path)) as s:
            await s.create(key("a"), pod("a"))
            assert _modes(db_path) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
            assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
        # Files left wider by an older version are narrowed when the store opens.
        _widen(db_path)
        async with opened(SqliteStore(db_path)) as s:
            assert await s.get(key("a")) is not None
            assert _modes(db_path) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        os.umask(old)


async def test_second_open_fails_at_once(db_path: Path) -> None:
    async with opened(SqliteStore(db_path)) as first:
        second = SqliteStore(db_path)
        started = time.monotonic()
        with pytest.raises(StoreLocked) as info:
            await second.open()
        assert time.monotonic() - started < 1.0
        assert str(db_path) in str(info.value)
        assert f"pid {os.getpid()}" in str(info.value)
        # The refused open did not disturb the holder.
        kv = await first.create(key("a"), pod("a"))
        assert kv.mod_revision == 1
    # Once released, the store opens again with its data.
    async with opened(SqliteStore(db_path)) as again:
        assert await again.revision() == 1
        assert await again.get(key("a")) is not None


async def test_reopen_keeps_data_and_revisions(db_path: Path) -> None:
    s = SqliteStore(db_path)
    await s.open()
    await s.create(key("a"), pod("a"))
    await s.create(key("b"), pod("b"))
    await s.delete(key("b"))
    await s.compact(2)
    await s.close()
    async with opened(SqliteStore(db_path)) as s:
        assert await s.revision() == 3
        assert await s.compacted_revision() == 2
        assert [kv.key for kv in (await s.list("/registry/pods/")).items] == [key("a")]
        assert (await s.create(key("c"), pod("c"))).mod_revision == 4


class FullDiskStore(SqliteStore):
    """A store whose database may grow by a few pages only, as on a full disk."""

    def _open_writer(self) -> tuple[int, int]:
        opened = super()._open_writer()
        assert self._wconn is not None
        pages = self._wconn.execute("PRAGMA page_count").fetchone()[0]
        self._wconn.execute(f"PRAGMA max_page_count = {pages + 20}")
        return opened


async def test_a_full_disk_refuses_the_write_and_keeps_everything_else(db_path: Path) -> None:
    async with opened(FullDiskStore(db_path)) as s:
        blob = "x" * 20_000
        written = []
        with pytest.raises(StoreFull, match="disk is full"):
            for i in range(100):
                await s.create(key(f"p{i}"), {**pod(f"p{i}"), "data": blob})
                written.append(key(f"p{i}"))
        assert written
        assert [kv.key for kv in (await s.list("/registry/pods/")).items] == sorted(written)
        assert await s.revision() == len(written)
        await s.update(key("p0"), pod("p0"))  # smaller: it fits
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


async def test_closed_store_refuses_work(db_path: Path) -> None:
    s = SqliteStore(db_path)
    await s.open()
    await s.close()
    with pytest.raises(StoreError):
        await s.create(key("a"), pod("a"))
    with pytest.raises(StoreError):
        await s.get(key("a"))


async def test_invalid_continue_token(db_path: Path) -> None:
    async with opened(SqliteStore(db_path)) as s:
        with pytest.raises(ValueError):
            await s.list("/registry/pods/", limit=1, continue_token="not a token")


async def test_writes_queued_together_are_each_answered(db_path: Path) -> None:
    async with opened(SqliteStore(db_path, max_batch=7)) as s:
        results = await asyncio.gather(
            *(s.create(key(f"p{i % 40}"), pod(f"p{i}")) for i in range(50)),
            return_exceptions=True,
        )
        revisions = sorted(r.mod_revision for r in results if not isinstance(r, BaseException))
        assert revisions == list(range(1, 41))
        assert sum(isinstance(r, StoreError) for r in results) == 10


async def test_list_reports_remaining_items(db_path: Path) -> None:
    async with opened(SqliteStore(db_path)) as s:
        for i in range(7):
            await s.create(key(f"p{i}"), pod(f"p{i}"))
        page = await s.list("/registry/pods/", limit=3)
        assert page.remaining == 4


async def test_close_answers_queued_writes(db_path: Path) -> None:
    s = SqliteStore(db_path)
    await s.open()
    writes = [asyncio.ensure_future(s.create(key(f"p{i}"), pod(f"p{i}"))) for i in range(100)]
    await asyncio.sleep(0)  # the writes are queued
    await s.close()
    results = await asyncio.wait_for(asyncio.gather(*writes, return_exceptions=True), 5)
    committed = {r.key for r in results if not isinstance(r, BaseException)}
    assert all(isinstance(r, StoreError) for r in results if isinstance(r, BaseException))
    assert committed
    async with opened(SqliteStore(db_path)) as s:
        stored = {kv.key for kv in (await s.list("/registry/pods/")).items}
        assert stored == committed


async def test_slow_watcher_catches_up_from_the_log(db_path: Path) -> None:
    async with slow_watcher(db_path, watch_buffer=8) as (s, it):
        # The watcher reads nothing while 100 writes overflow its buffer of 8.
        for i in range(1, 101):
            await s.create(key(f"p{i:03d}"), pod(f"p{i:03d}"))
        rest = await take(it, 100)
        assert [e.revision for e in rest] == list(range(2, 102))
        live = await s.create(key("last"), pod("last"))
        assert (await next_event(it)).kv == live


async def test_slow_watcher_of_big_values_overflows_by_bytes(db_path: Path) -> None:
    """A buffer of 1,000 events holds no more than its bytes: 40 values of
    64 KiB overflow a 256 KiB buffer, and the watcher catches up from the log."""
    async with slow_watcher(db_path, watch_buffer=1000, watch_buffer_bytes=256 * 1024) as (s, it):
        for i in range(1, 41):
            obj = pod(f"p{i:03d}")
            obj["metadata"]["annotations"] = {"big": "x" * 65536}
            await s.create(key(f"p{i:03d}"), obj)
            assert all(w.nbytes <= 256 * 1024 for w in s._watchers)
        rest = await take(it, 40)
        assert [e.revision for e in rest] == list(range(2, 42))


async def test_slow_watcher_overtaken_by_compaction_gets_compacted(db_path: Path) -> None:
    async with slow_watcher(db_path, watch_buffer=4) as (s, it):
        for i in range(1, 20):
            await s.create(key(f"p{i}"), pod(f"p{i}"))
        await s.compact(10)
        # What was buffered before the overflow may still come; then the gap shows.
        with pytest.raises(Compacted):
            for _ in range(20):
                await next_event(it)


async def test_automatic_compaction(db_path: Path) -> None:
    async with opened(SqliteStore(db_path, compact_keep=20, compact_every=10)) as s:
        for i in range(100):
            await s.create(key(f"p{i:03d}"), pod(f"p{i:03d}"))
        await s.compact(0)  # a no-op, queued behind any automatic compaction in flight
        compacted = await s.compacted_revision()
        assert 70 <= compacted <= 80
        it = s.watch("/registry/pods/", 0)
        with pytest.raises(Compacted):
            await next_event(it)
        await close_iter(it)
        it = s.watch("/registry/pods/", compacted)
        assert (await next_event(it)).revision == compacted + 1
        await close_iter(it)
        assert len((await s.list("/registry/pods/")).items) == 100


async def test_compaction_beyond_current_revision_is_refused(db_path: Path) -> None:
    async with opened(SqliteStore(db_path)) as s:
        await s.create(key("a"), pod("a"))
        with pytest.raises(ValueError):
            await s.compact(5)
        assert await s.compacted_revision() == 0


async def test_paged_list_survives_compaction_of_older_writes(db_path: Path) -> None:
    # Compaction keeps each key's latest write at or below the compacted revision,
    # so a page at a kept revision still shows values written long before.
    async with opened(SqliteStore(db_path)) as s:
        for i in range(4):
            await s.create(key(f"p{i}"), pod(f"p{i}", v="1"))
        first = await s.list("/registry/pods/", limit=2)
        await s.update(key("p3"), pod("p3", v="2"))
        await s.delete(key("p2"))
        await s.compact(first.revision)
        page = await s.list("/registry/pods/", limit=2, continue_token=first.continue_token)
        assert [kv.key for kv in page.items] == [key("p2"), key("p3")]
        assert [kv.obj["metadata"]["labels"]["v"] for kv in page.items] == ["1", "1"]


_WRITER = """
import asyncio, sys
from control.store.sqlite import SqliteStore

async def main() -> None:
    store = SqliteStore(sys.argv[1])
    await store.open()
    print("ready", flush=True)

    async def writer(w: int) -> None:
        i = 0
        while True:
            kv = await store.create(f"/registry/test/{w}/{i:08d}", {"metadata": {}, "n": i})
            sys.stdout.write(f"{kv.key} {kv.mod_revision}\\n")
            sys.stdout.flush()
            i += 1

    await asyncio.gather(*(writer(w) for w in range(8)))

asyncio.run(main())
"""


async def test_acknowledged_writes_survive_kill_9(db_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITER,
        str(db_path),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    acked: dict[str, int] = {}
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"ready\n"
        # Another process holds the store: opening it here fails at once.
        with pytest.raises(StoreLocked) as info:
            await SqliteStore(db_path).open()
        assert f"pid {proc.pid}" in str(info.value)
        while len(acked) < 500:
            line = await asyncio.wait_for(proc.stdout.readline(), 5)
            k, rev = line.decode().split()
            acked[k] = int(rev)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
    # Lines written before the kill are acknowledged writes too.
    for line in (await asyncio.wait_for(proc.stdout.read(), 5)).decode().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            acked[parts[0]] = int(parts[1])
    assert await asyncio.wait_for(proc.wait(), 5) == -signal.SIGKILL

    async with opened(SqliteStore(db_path)) as s:
        assert await s.revision() >= max(acked.values())
        stored = {kv.key: kv.mod_revision for kv in (await s.list("/registry/test/")).items}
        missing = {k: r for k, r in acked.items() if stored.get(k) != r}
        assert not missing, f"{len(missing)} acknowledged writes lost"
        assert await s.create("/registry/test/after", {"metadata": {}})
