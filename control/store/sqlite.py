"""The embedded store: one SQLite file in WAL mode, with etcd's semantics.

Layout:
- `objects`: the current value of each key, with its mod and create revisions.
- `events`: the log of writes, one row per revision, used to resume watches and to
  serve paged lists at a fixed revision.
- `meta`: the compacted revision. The global revision is the newest event's.

Threads: every write runs in one writer thread, with its own connection. Writes
queued while a transaction runs are committed together in the next one (group
commit); each caller is answered only after the transaction holding its write
has committed. Reads (get, list, watch replay) run in one reader thread with a
second connection; WAL lets it read while the writer writes. The event loop
never touches SQLite.

Durability: WAL with synchronous=NORMAL. A committed write survives a crash of
the process (kill -9); a power cut may lose the last transactions.

Watches: in-process fan-out, after the commit. Each watcher has a bounded
buffer. A watcher whose buffer overflows is not ended: its buffer is dropped and
it catches up from the event log, then goes live again. It ends with
`Compacted` only if compaction overtook it while it was behind.

Compaction keeps, for each key, its latest write at or below the compacted
revision (as etcd does), so that paged lists can be served at their first
page's revision. It runs by itself every `compact_every` writes, keeping the
last `compact_keep` revisions.

Pieces in modules of their own: continue tokens and key prefixes (`keyspace`,
shared with the cache), calls into the store threads (`storethread`), the
watchers' buffers (`watchbuffer`) and the data dir lock (`lockfile`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import heapq
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import starmap
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import orjson

from control.store.interface import (
    KV,
    Compacted,
    EventType,
    KeyExists,
    KeyNotFound,
    ListResult,
    Matcher,
    Obj,
    RevisionConflict,
    Store,
    StoreError,
    StoreFull,
    WatchEvent,
)
from control.store.keyspace import decode_token, prefix_end
from control.store.lockfile import acquire_lock
from control.store.pages import Page
from control.store.resourceversion import stamp
from control.store.storethread import Call, Stop, call_in, noop, post, run_call
from control.store.watchbuffer import DEFAULT_LIMIT_BYTES, WatchBuffer, Watchers

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION: Final = 1
_PAGE_SIZE: Final = 8192  # pods are 1-3 KiB; larger pages keep rows off overflow pages
_WAL_AUTOCHECKPOINT: Final = 4000  # pages; checkpoints fsync, so not too often
_REPLAY_CHUNK: Final = 1000

# The current revision is not stored: it is the newest event's, or the compacted
# revision if compaction dropped that event (a delete). One page less per commit.
_REVISIONS_SQL: Final = """
SELECT max(coalesce((SELECT max(revision) FROM events), 0), value), value
FROM meta WHERE key = 'compacted'
"""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    mod_revision INTEGER NOT NULL,
    create_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    revision INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_key ON events (key, revision);
INSERT OR IGNORE INTO meta (key, value) VALUES ('compacted', 0);
"""

_Kind = Literal["create", "update", "delete"]
_Outcome = tuple[EventType, KV] | BaseException
# Aliases for signatures inside SqliteStore, where `list` names the method.
_Cursors = list[sqlite3.Cursor]
_Outcomes = list[_Outcome]
_Events = list[WatchEvent]


class _StoreClosed(StoreError):
    def __init__(self) -> None:
        super().__init__("store is closed")


@dataclass(slots=True, eq=False)
class _Op:
    kind: _Kind
    key: str
    obj: Obj | None
    expected: int | None
    fut: asyncio.Future[KV]


_Batch = list[_Op]


_Item = _Batch | Call | Stop


def _revisions(conn: sqlite3.Connection) -> tuple[int, int]:
    """(current, compacted) revisions, read in the caller's transaction."""
    current, compacted = conn.execute(_REVISIONS_SQL).fetchone()
    return int(current), int(compacted)


def _write_failed(cause: Exception) -> StoreError:
    full = isinstance(cause, sqlite3.Error) and cause.sqlite_errorcode == sqlite3.SQLITE_FULL
    err = (
        StoreFull(f"store write failed: the disk is full ({cause})")
        if full
        else StoreError(f"store write failed: {cause}")
    )
    err.__cause__ = cause
    return err


def _key_range(lo: str, inclusive: bool, hi: str | None) -> tuple[str, list[Any]]:
    """A WHERE fragment for `lo <(=) key < hi`. SQLite's BINARY order is code point order."""
    sql = "key >= ?" if inclusive else "key > ?"
    params: list[Any] = [lo]
    if hi is not None:
        sql += " AND key < ?"
        params.append(hi)
    return sql, params


def _make_private(path: Path) -> None:
    """The store holds Secrets: its files are the owner's alone, 0600, also
    those an older version left wider. SQLite gives the -wal and -shm files
    it creates the database file's mode, so the database file is made first."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(file, 0o600)


class SqliteStore(Store):
    """The embedded default store. See the module docstring.

    `compact_keep` revisions of history are kept for watch resume and paging
    (0 turns automatic compaction off); compaction runs each time
    `compact_every` more writes have happened. `watch_buffer` bounds each
    watcher's in-memory queue in events, `watch_buffer_bytes` in the bytes of
    their values. `max_batch` bounds the writes in one transaction.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        compact_keep: int = 10000,
        compact_every: int = 1000,
        watch_buffer: int = 1000,
        watch_buffer_bytes: int = DEFAULT_LIMIT_BYTES,
        max_batch: int = 1000,
    ) -> None:
        self.path = Path(path)
        self.lock_path = Path(f"{self.path}.lock")
        self._compact_keep = compact_keep
        self._compact_every = max(1, compact_every)
        self._watch_buffer = max(1, watch_buffer)
        self._watch_buffer_bytes = max(1, watch_buffer_bytes)
        self._max_batch = max(1, max_batch)

        self._state: Literal["new", "opening", "open", "closing", "closed"] = "new"
        self._wqueue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._pending: list[_Op] = []  # writes of this loop iteration, not yet queued
        self._wdone: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._rqueue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._rdone: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._watchers = Watchers()
        # Loop side: what has been committed and announced.
        self._rev = 0
        self._compacted = 0
        # Writer-thread side.
        self._wconn: sqlite3.Connection | None = None
        self._wrev = 0
        self._wcompacted = 0
        self._lock_fd: int | None = None
        # Reader-thread side.
        self._rconn: sqlite3.Connection | None = None

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        if self._state != "new":
            raise StoreError(f"store {self.path} was already opened")
        self._state = "opening"
        loop = asyncio.get_running_loop()
        opened: concurrent.futures.Future[tuple[int, int]] = concurrent.futures.Future()
        # Daemons: a store left open must not hold up interpreter exit (that is
        # no worse for the data than kill -9).
        threading.Thread(
            target=self._writer_main, args=(loop, opened), name="store-writer", daemon=True
        ).start()
        threading.Thread(
            target=self._reader_main, args=(loop,), name="store-reader", daemon=True
        ).start()
        try:
            self._rev, self._compacted = await asyncio.wrap_future(opened)
            await call_in(self._rqueue, self._open_reader)
        except BaseException:
            self._wqueue.put(Stop())
            self._rqueue.put(Stop())
            await asyncio.wrap_future(self._wdone)
            await asyncio.wrap_future(self._rdone)
            self._state = "closed"
            raise
        self._state = "open"

    async def close(self) -> None:
        if self._state != "open":
            return
        self._state = "closing"
        # Writes queued before this are committed and answered first.
        self._flush_writes()
        await call_in(self._wqueue, noop)
        self._state = "closed"
        for w in self._watchers:
            w.close()
        # Reads in flight finish first. The writer goes last, so the lock is
        # released only once neither connection is open.
        self._rqueue.put(Stop())
        await asyncio.wrap_future(self._rdone)
        self._wqueue.put(Stop())
        await asyncio.wrap_future(self._wdone)

    def _open_writer(self) -> tuple[int, int]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd = acquire_lock(self.lock_path, self.path)
        _make_private(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._wconn = conn
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"store {self.path}: cannot enable WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT}")
        conn.execute(f"PRAGMA journal_size_limit = {2 * _WAL_AUTOCHECKPOINT * _PAGE_SIZE}")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.executescript(_SCHEMA)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {version}, expected {SCHEMA_VERSION}"
            )
        self._wrev, self._wcompacted = _revisions(conn)
        return self._wrev, self._wcompacted

    def _close_writer(self) -> None:
        if self._wconn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._wconn.close()
            self._wconn = None
        if self._lock_fd is not None:
            # Closing the file releases the flock.
            os.close(self._lock_fd)
            self._lock_fd = None

    def _open_reader(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
        self._rconn = conn

    def _close_reader(self) -> None:
        if self._rconn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._rconn.close()
            self._rconn = None

    # -- reads -------------------------------------------------------------

    async def revision(self) -> int:
        return self._rev

    async def compacted_revision(self) -> int:
        return self._compacted

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._state != "open":
            raise _StoreClosed()
        return await call_in(self._rqueue, fn, *args)

    def _reader_main(self, loop: asyncio.AbstractEventLoop) -> None:
        """The reader thread: owns the read connection."""
        try:
            while not isinstance(item := self._rqueue.get(), Stop):
                if isinstance(item, Call):
                    run_call(loop, item)
        finally:
            try:
                self._close_reader()
            finally:
                self._rdone.set_result(None)

    async def get(self, key: str) -> KV | None:
        return await self._read(self._get_sync, key)

    def _get_sync(self, key: str) -> KV | None:
        assert self._rconn is not None
        row = self._rconn.execute(
            "SELECT value, mod_revision, create_revision FROM objects WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else KV(key, row[0], row[1], row[2])

    async def list(
        self,
        prefix: str,
        *,
        match: Matcher | None = None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> ListResult:
        """See `Store.list`. A malformed `continue_token` raises ValueError.

        `match` runs in the reader thread, so it must not touch loop state.
        Pages after the first are read at the first page's revision.
        """
        start = decode_token(continue_token) if continue_token else None
        return await self._read(self._list_sync, prefix, match, limit, start)

    def _list_sync(
        self, prefix: str, match: Matcher | None, limit: int, start: tuple[int, str] | None
    ) -> ListResult:
        conn = self._rconn
        assert conn is not None
        end = prefix_end(prefix)
        cursors: list[sqlite3.Cursor] = []
        conn.execute("BEGIN")
        try:
            current, compacted = _revisions(conn)
            rows: Iterable[tuple[str, bytes, int, int]]
            if start is None:
                revision = current
                where, params = _key_range(prefix, True, end)
                sql = f"SELECT key, value, mod_revision, create_revision FROM objects WHERE {where} ORDER BY key"
                if match is None and limit > 0:
                    sql += " LIMIT ?"
                    params.append(limit + 1)
                cur = conn.execute(sql, params)
                cursors.append(cur)
                rows = cur
            else:
                revision, rel = start
                if revision < compacted:
                    raise Compacted(revision, compacted)
                if revision > current:
                    raise ValueError("invalid continue token: revision from the future")
                rows = self._snapshot_rows(conn, cursors, prefix + rel, end, revision)

            if match is None and limit <= 0:
                return ListResult(list(starmap(KV, rows)), revision, None, None)

            page = Page(match, limit)
            page.add(starmap(KV, rows))
            remaining: int | None = None
            if page.more and match is None and start is None:
                where, params = _key_range(page.items[-1].key, False, end)
                remaining = conn.execute(
                    f"SELECT count(*) FROM objects WHERE {where}", params
                ).fetchone()[0]
            return page.result(revision, prefix, remaining)
        finally:
            for cur in cursors:
                cur.close()
            conn.execute("COMMIT")

    def _snapshot_rows(
        self,
        conn: sqlite3.Connection,
        cursors: _Cursors,
        after: str,
        end: str | None,
        revision: int,
    ) -> Iterator[tuple[str, bytes, int, int]]:
        """Keys > `after` (and < `end`) as they were at `revision`, in key order."""
        where, params = _key_range(after, False, end)
        # Keys untouched since `revision` are read from `objects` as they are now.
        unchanged = conn.execute(
            "SELECT key, value, mod_revision, create_revision FROM objects "
            f"WHERE {where} AND mod_revision <= ? ORDER BY key",
            [*params, revision],
        )
        cursors.append(unchanged)
        # Keys written since: their last write at or before `revision`, if it was not a delete.
        changed = sorted(
            k
            for (k,) in conn.execute(
                f"SELECT DISTINCT key FROM events WHERE revision > ? AND {where}",
                [revision, *params],
            )
        )
        older: list[tuple[str, bytes, int, int]] = []
        for key in changed:
            row = conn.execute(
                "SELECT type, value, revision, create_revision FROM events "
                "WHERE key = ? AND revision <= ? ORDER BY revision DESC LIMIT 1",
                (key, revision),
            ).fetchone()
            if row is not None and row[0] != "DELETED":
                older.append((key, row[1], row[2], row[3]))
        return heapq.merge(unchanged, older, key=itemgetter(0))

    # -- writes ------------------------------------------------------------

    async def create(self, key: str, obj: Obj) -> KV:
        return await self._submit("create", key, obj, None)

    async def update(self, key: str, obj: Obj, *, expected_revision: int | None = None) -> KV:
        return await self._submit("update", key, obj, expected_revision)

    async def delete(self, key: str, *, expected_revision: int | None = None) -> KV:
        return await self._submit("delete", key, None, expected_revision)

    async def _submit(self, kind: _Kind, key: str, obj: Obj | None, expected: int | None) -> KV:
        """Queue a write; the caller must not mutate `obj` until this returns."""
        if self._state != "open":
            raise _StoreClosed()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[KV] = loop.create_future()
        # Hand the writer thread every write of this loop iteration at once: one
        # wake-up and one transaction for many writes, not a GIL hand-off each.
        if not self._pending:
            loop.call_soon(self._flush_writes)
        self._pending.append(_Op(kind, key, obj, expected, fut))
        return await fut

    def _flush_writes(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self._wqueue.put(pending)

    async def _write_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` in the writer thread, after the writes queued before it."""
        if self._state != "open":
            raise _StoreClosed()
        self._flush_writes()
        return await call_in(self._wqueue, fn, *args)

    def _writer_main(
        self, loop: asyncio.AbstractEventLoop, opened: concurrent.futures.Future[tuple[int, int]]
    ) -> None:
        """The writer thread: owns the write connection and the lock."""
        try:
            try:
                opened.set_result(self._open_writer())
            except BaseException as e:
                opened.set_exception(e)
                return
            self._serve_writes(loop)
        finally:
            try:
                self._close_writer()
            finally:
                self._wdone.set_result(None)

    def _serve_writes(self, loop: asyncio.AbstractEventLoop) -> None:
        q = self._wqueue
        limit = self._max_batch
        while True:
            item: _Item | None = q.get()
            # Group commit: everything queued meanwhile goes in one transaction.
            batch: list[_Op] = []
            while isinstance(item, list):
                batch.extend(item)
                item = q.get() if len(batch) < limit and not q.empty() else None
            for start in range(0, len(batch), limit):
                chunk = batch[start : start + limit]
                try:
                    outcomes = self._apply_batch(chunk)
                except Exception as e:
                    log.error("store %s: write transaction failed: %s", self.path, e)
                    outcomes = [_write_failed(e) for _ in chunk]
                post(loop, self._finish, chunk, outcomes)
            if isinstance(item, Call):
                run_call(loop, item)
            elif isinstance(item, Stop):
                return
            if (
                self._compact_keep > 0
                and self._wrev - self._wcompacted >= self._compact_keep + self._compact_every
            ):
                try:
                    compacted = self._compact_sync(self._wrev - self._compact_keep)
                except Exception as e:
                    log.error("store %s: compaction failed: %s", self.path, e)
                else:
                    post(loop, self._set_compacted, compacted)

    def _set_compacted(self, revision: int) -> None:
        self._compacted = max(self._compacted, revision)

    def _finish(self, batch: _Batch, outcomes: _Outcomes) -> None:
        watchers = self._watchers
        for op, out in zip(batch, outcomes, strict=True):
            if isinstance(out, BaseException):
                if not op.fut.done():
                    op.fut.set_exception(out)
                continue
            etype, kv = out
            self._rev = kv.mod_revision
            if watchers:
                watchers.push(WatchEvent(etype, kv))
            if not op.fut.done():
                op.fut.set_result(kv)

    def _apply_batch(self, batch: _Batch) -> _Outcomes:
        """Writer thread: apply `batch` in one transaction."""
        conn = self._wconn
        assert conn is not None
        base = self._wrev
        outcomes: list[_Outcome] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op in batch:
                try:
                    outcomes.append(self._apply_one(conn, op))
                except (StoreError, TypeError, ValueError) as e:
                    # Raised before the op wrote anything.
                    outcomes.append(e)
            conn.execute("COMMIT")
        except BaseException:
            self._wrev = base
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return outcomes

    def _apply_one(self, conn: sqlite3.Connection, op: _Op) -> tuple[EventType, KV]:
        key = op.key
        rev = self._wrev + 1
        if op.kind == "create":
            assert op.obj is not None
            raw = stamp(op.obj, rev)
            cur = conn.execute(
                "INSERT INTO objects (key, value, mod_revision, create_revision) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (key, raw, rev, rev),
            )
            if cur.rowcount != 1:
                raise KeyExists(key)
            conn.execute(
                "INSERT INTO events (revision, type, key, value, create_revision) "
                "VALUES (?, 'ADDED', ?, ?, ?)",
                (rev, key, raw, rev),
            )
            self._wrev = rev
            return "ADDED", KV(key, raw, rev, rev)

        row = conn.execute(
            "SELECT value, mod_revision, create_revision FROM objects WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            raise KeyNotFound(key)
        old, mod, created = row
        if op.expected is not None and op.expected != mod:
            raise RevisionConflict(key, op.expected, mod)
        etype: EventType
        if op.kind == "update":
            assert op.obj is not None
            etype = "MODIFIED"
            raw = stamp(op.obj, rev)
            conn.execute(
                "UPDATE objects SET value = ?, mod_revision = ? WHERE key = ?", (raw, rev, key)
            )
        else:
            etype = "DELETED"
            raw = stamp(orjson.loads(old), rev)
            conn.execute("DELETE FROM objects WHERE key = ?", (key,))
        conn.execute(
            "INSERT INTO events (revision, type, key, value, create_revision) "
            "VALUES (?, ?, ?, ?, ?)",
            (rev, etype, key, raw, created),
        )
        self._wrev = rev
        return etype, KV(key, raw, rev, created)

    # -- compaction --------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """See `Store.compact`. A revision beyond the current one raises ValueError."""
        self._set_compacted(await self._write_call(self._compact_sync, revision))

    def _compact_sync(self, revision: int) -> int:
        conn = self._wconn
        assert conn is not None
        if revision > self._wrev:
            raise ValueError(f"cannot compact to revision {revision}: the store is at {self._wrev}")
        previous = self._wcompacted
        if revision <= previous:
            return previous
        conn.execute("BEGIN IMMEDIATE")
        try:
            # For each key written in (previous, revision], drop its events at or
            # below `revision` except the latest, and that one too if a delete.
            conn.execute(
                """
                DELETE FROM events
                WHERE revision <= :rev
                  AND key IN (SELECT key FROM events WHERE revision > :prev AND revision <= :rev)
                  AND (type = 'DELETED' OR revision < (
                        SELECT max(e.revision) FROM events AS e
                        WHERE e.key = events.key AND e.revision <= :rev))
                """,
                {"rev": revision, "prev": previous},
            )
            conn.execute("UPDATE meta SET value = ? WHERE key = 'compacted'", (revision,))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        self._wcompacted = revision
        return revision

    # -- watch -------------------------------------------------------------

    async def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        """See `Store.watch`. A slow watcher catches up from the event log."""
        if self._state != "open":
            return
        w = WatchBuffer(prefix, self._watch_buffer, self._watch_buffer_bytes)
        # Registered before reading history, so nothing falls between the two;
        # events seen in both are dropped by revision.
        self._watchers.add(w)
        try:
            last = from_revision
            while True:
                w.overflowed = False
                while True:
                    try:
                        events = await self._read(self._replay_sync, prefix, last)
                    except _StoreClosed:
                        return
                    for ev in events:
                        yield ev
                        last = ev.revision
                    if len(events) < _REPLAY_CHUNK:
                        break
                while True:
                    if w.buf:
                        ev = w.pop()
                        if ev.revision > last:
                            yield ev
                            last = ev.revision
                    elif w.overflowed:
                        break
                    elif w.closed:
                        return
                    else:
                        w.wake.clear()
                        await w.wake.wait()
        finally:
            self._watchers.discard(w)

    def _replay_sync(self, prefix: str, after: int) -> _Events:
        conn = self._rconn
        assert conn is not None
        where, params = _key_range(prefix, True, prefix_end(prefix))
        conn.execute("BEGIN")
        try:
            (compacted,) = conn.execute("SELECT value FROM meta WHERE key = 'compacted'").fetchone()
            if after < compacted:
                raise Compacted(after, compacted)
            rows = conn.execute(
                "SELECT type, key, value, revision, create_revision FROM events "
                f"WHERE revision > ? AND {where} ORDER BY revision LIMIT ?",
                [after, *params, _REPLAY_CHUNK],
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        return [WatchEvent(t, KV(k, v, r, c)) for t, k, v, r, c in rows]
