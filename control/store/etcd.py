"""The etcd store: the `Store` contract on an etcd v3 cluster, for several control planes.

Keys: a store key (always starting with "/") is stored under the configured
prefix, `"/pilothouse" + "/registry/pods/ns/name"`. Beside the keys, one
marker key, `prefix + "#revision-base"`, outside every key range the store
reads, is created by the first store to open the prefix.

Revisions are etcd's, counted from that marker's: store revision = etcd
revision - the marker's create revision. So a new prefix starts at 0, and each
write under it is one etcd revision; writes elsewhere in the same etcd (other
prefixes, leases' keys) leave gaps, as they do in Kubernetes.

Values are stored without `metadata.resourceVersion` (the revision is known
only once etcd has committed the write) and stamped with their mod revision
when read.

Writes are single-key transactions: a create compares the key's create
revision with 0, a compare-and-swap its mod revision; a lost comparison
reads the key to tell KeyNotFound from RevisionConflict.

Compaction: `compact(r)` compacts etcd at r, which keeps the state at r; a
read or watch from below r is refused by etcd, mapped to `Compacted`. etcd
does not say how far it has compacted, so `compacted_revision` finds it by
bisection with reads at past revisions.

Watches: one etcd watch stream each, asking for the previous value of deleted
keys. The read cache in front of this store (cache.py) follows it, so writes
made by other control planes on the same etcd reach this one's cache and watches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Final, Literal

import grpc
import grpc.aio
import orjson

from control.objects import Obj
from control.store import keyspace
from control.store.etcdclient import (
    EtcdClient,
    EtcdCompacted,
    EtcdTLS,
    FutureRevision,
)
from control.store.etcdpb import rpc_pb2 as pb
from control.store.interface import (
    KV,
    Compacted,
    KeyExists,
    KeyNotFound,
    ListResult,
    Matcher,
    RevisionConflict,
    Store,
    StoreError,
    WatchEvent,
)
from control.store.pages import Page
from control.store.resourceversion import stamp

log = logging.getLogger(__name__)

_MARKER: Final = "#revision-base"
_CHUNK: Final = 1000  # keys per read while listing
_EQUAL: Final = pb.Compare.CompareResult.EQUAL
_GREATER: Final = pb.Compare.CompareResult.GREATER
_CREATE: Final = pb.Compare.CompareTarget.CREATE
_MOD: Final = pb.Compare.CompareTarget.MOD
_VERSION: Final = pb.Compare.CompareTarget.VERSION
_DELETE: Final = pb.Event.EventType.DELETE


def _check_key(key: str) -> None:
    if not key.startswith("/"):
        raise ValueError(f"store key must start with '/': {key!r}")


class EtcdStore(Store):
    """The store on etcd. See the module docstring.

    `compact_keep` revisions of history are kept for watch resume and paging
    (0 turns automatic compaction off); this store compacts each time its own
    writes have moved the revision `compact_every` past that.
    """

    def __init__(
        self,
        endpoints: tuple[str, ...],
        *,
        prefix: str = "/pilothouse",
        tls: EtcdTLS | None = None,
        compact_keep: int = 10000,
        compact_every: int = 1000,
    ) -> None:
        self.client = EtcdClient(endpoints, tls)
        self.prefix = prefix.rstrip("/")
        self._root = self.prefix.encode()
        self._marker = (self.prefix + _MARKER).encode()
        self._compact_keep = compact_keep
        self._compact_every = max(1, compact_every)
        self._state: Literal["new", "open", "closed"] = "new"
        self._base = 0  # etcd revision of the marker: store revision 0
        self._compacted = 0  # a lower bound of etcd's compaction, in store revisions
        self._compacting: asyncio.Task[None] | None = None
        self._watches: set[grpc.aio.StreamStreamCall] = set()

    def __repr__(self) -> str:
        return f"EtcdStore({self.client.endpoint}, prefix={self.prefix!r})"

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        if self._state != "new":
            raise StoreError(f"{self!r} was already opened")
        self._state = "closed"  # until it has opened
        self._base = await self.client.open(self._marker_revision)
        self._state = "open"
        try:
            self._compacted = await self.compacted_revision()
        except BaseException:
            await self.close()
            raise

    async def _marker_revision(self) -> int:
        """Create the marker unless it exists; its create revision."""
        resp = await self.client.txn(
            pb.TxnRequest(
                compare=[pb.Compare(key=self._marker, target=_CREATE, create_revision=0)],
                success=[pb.RequestOp(request_put=pb.PutRequest(key=self._marker, value=b"1"))],
                failure=[pb.RequestOp(request_range=pb.RangeRequest(key=self._marker))],
            )
        )
        if resp.succeeded:
            return int(resp.header.revision)
        return int(resp.responses[0].response_range.kvs[0].create_revision)

    async def close(self) -> None:
        if self._state != "open":
            return
        self._state = "closed"
        for call in list(self._watches):
            call.cancel()
        if self._compacting is not None:
            await asyncio.wait({self._compacting})
        await self.client.close()

    def _check_open(self) -> None:
        if self._state != "open":
            raise StoreError("store is closed")

    # -- keys and values ---------------------------------------------------

    def _key(self, key: str) -> bytes:
        return self._root + key.encode()

    def _range(self, prefix: str) -> tuple[bytes, bytes]:
        """etcd's [start, end) for the keys under a store prefix ("" is every key)."""
        if not prefix:
            prefix = "/"
        _check_key(prefix)
        end = keyspace.prefix_end(prefix)
        # No end: the keys after the prefix's last code point, which UTF-8 never starts with.
        return self._key(prefix), (self._root + b"\xff" if end is None else self._key(end))

    def _kv(self, kv: pb.KeyValue) -> KV:
        mod = kv.mod_revision - self._base
        return KV(
            kv.key[len(self._root) :].decode(),
            stamp(orjson.loads(kv.value), mod),
            mod,
            kv.create_revision - self._base,
        )

    # -- reads -------------------------------------------------------------

    async def revision(self) -> int:
        self._check_open()
        resp = await self.client.range(pb.RangeRequest(key=self._marker, count_only=True))
        return int(resp.header.revision) - self._base

    async def get(self, key: str) -> KV | None:
        self._check_open()
        resp = await self.client.range(pb.RangeRequest(key=self._key(key)))
        return self._kv(resp.kvs[0]) if resp.kvs else None

    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        continue_token: str | None = None,
        match: Matcher | None = None,
    ) -> ListResult:
        """See `Store.list`; pages after the first are read at the first page's
        revision. A malformed `continue_token` raises ValueError."""
        self._check_open()
        start, end = self._range(prefix)
        at = 0  # etcd revision to read at; 0 is the current one
        if continue_token:
            token_rev, rel = keyspace.decode_token(continue_token)
            at = token_rev + self._base
            start = self._key(prefix + rel) + b"\x00"  # the next key after the last one served
        page = Page(match, limit)
        chunk = limit + 1 if match is None and 0 < limit < _CHUNK else _CHUNK
        total: int | None = None  # keys from the page's start on, at its revision
        while True:
            req = pb.RangeRequest(key=start, range_end=end, limit=chunk, revision=at)
            try:
                resp = await self.client.range(req)
            except EtcdCompacted:
                compacted = await self.compacted_revision()
                raise Compacted(at - self._base, compacted) from None
            except FutureRevision:
                raise ValueError("invalid continue token: revision from the future") from None
            at = at or int(resp.header.revision)
            if total is None:
                total = int(resp.count)
            full = page.add(map(self._kv, resp.kvs))
            if full or not resp.more:
                break
            start = resp.kvs[-1].key + b"\x00"
        remaining = None if match is not None or total is None else total - len(page.items)
        return page.result(at - self._base, prefix, remaining)

    # -- writes ------------------------------------------------------------

    async def create(self, key: str, obj: Obj) -> KV:
        self._check_open()
        _check_key(key)
        k = self._key(key)
        resp = await self.client.txn(
            pb.TxnRequest(
                compare=[pb.Compare(key=k, target=_CREATE, result=_EQUAL, create_revision=0)],
                success=[pb.RequestOp(request_put=pb.PutRequest(key=k, value=stamp(obj, None)))],
            )
        )
        if not resp.succeeded:
            raise KeyExists(key)
        rev = self._wrote(resp)
        return KV(key, stamp(obj, rev), rev, rev)

    async def update(self, key: str, obj: Obj, *, expected_revision: int | None = None) -> KV:
        self._check_open()
        _check_key(key)
        k = self._key(key)
        put = pb.PutRequest(key=k, value=stamp(obj, None), prev_kv=True)
        resp = await self._write(key, pb.RequestOp(request_put=put), expected_revision)
        rev = self._wrote(resp)
        created = resp.responses[0].response_put.prev_kv.create_revision - self._base
        return KV(key, stamp(obj, rev), rev, created)

    async def delete(self, key: str, *, expected_revision: int | None = None) -> KV:
        self._check_open()
        _check_key(key)
        op = pb.RequestOp(
            request_delete_range=pb.DeleteRangeRequest(key=self._key(key), prev_kv=True)
        )
        resp = await self._write(key, op, expected_revision)
        rev = self._wrote(resp)
        prev = resp.responses[0].response_delete_range.prev_kvs[0]
        return KV(key, stamp(orjson.loads(prev.value), rev), rev, prev.create_revision - self._base)

    async def _write(self, key: str, op: pb.RequestOp, expected: int | None) -> pb.TxnResponse:
        """`op` on an existing key, compare-and-swap on its revision when `expected` is set."""
        k = self._key(key)
        if expected is None:
            cmp = pb.Compare(key=k, target=_VERSION, result=_GREATER, version=0)
        else:
            cmp = pb.Compare(key=k, target=_MOD, result=_EQUAL, mod_revision=expected + self._base)
        resp = await self.client.txn(
            pb.TxnRequest(
                compare=[cmp],
                success=[op],
                failure=[pb.RequestOp(request_range=pb.RangeRequest(key=k, keys_only=True))],
            )
        )
        if resp.succeeded:
            return resp
        current = resp.responses[0].response_range.kvs
        if not current:
            raise KeyNotFound(key)
        assert expected is not None  # an unconditional write fails only on a missing key
        raise RevisionConflict(key, expected, current[0].mod_revision - self._base)

    def _wrote(self, resp: pb.TxnResponse) -> int:
        """The store revision of a successful write; compacts when history has grown."""
        rev = int(resp.header.revision) - self._base
        keep = self._compact_keep
        if (
            keep > 0
            and rev - self._compacted >= keep + self._compact_every
            and self._compacting is None
        ):
            self._compacting = asyncio.create_task(self._auto_compact(rev - keep))
        return rev

    async def _auto_compact(self, revision: int) -> None:
        try:
            await self.compact(revision)
        except StoreError as e:
            log.error("%r: compaction failed: %s", self, e)
        finally:
            self._compacting = None

    # -- compaction --------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """See `Store.compact`. A revision beyond the current one raises ValueError."""
        self._check_open()
        try:
            await self.client.compact(pb.CompactionRequest(revision=revision + self._base))
        except FutureRevision:
            raise ValueError(
                f"cannot compact to revision {revision}: it is in the future"
            ) from None
        except EtcdCompacted:
            pass  # compacted at or past it already
        self._compacted = max(self._compacted, revision)

    async def compacted_revision(self) -> int:
        self._check_open()
        lo = self._compacted
        if await self._readable(lo):
            return lo
        # Bisect (lo, hi]: lo is compacted away, the current revision is readable.
        hi = await self.revision()
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if await self._readable(mid):
                hi = mid
            else:
                lo = mid
        self._compacted = hi
        return hi

    async def _readable(self, revision: int) -> bool:
        """Whether etcd still serves reads at this store revision."""
        try:
            await self.client.range(
                pb.RangeRequest(key=self._marker, count_only=True, revision=revision + self._base)
            )
        except EtcdCompacted:
            return False
        except FutureRevision:
            return True
        return True

    # -- watch -------------------------------------------------------------

    async def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        """See `Store.watch`."""
        if self._state != "open":
            return
        start, end = self._range(prefix)
        # etcd refuses a watch from below its compaction, not one from the
        # compacted revision itself: check that one with a read.
        if from_revision < self._compacted or not await self._readable(from_revision):
            raise Compacted(from_revision, await self.compacted_revision())
        call = self.client.watch.Watch()
        self._watches.add(call)
        try:
            create = pb.WatchCreateRequest(
                key=start,
                range_end=end,
                start_revision=from_revision + 1 + self._base,
                prev_kv=True,
            )
            await call.write(pb.WatchRequest(create_request=create))
            while True:
                try:
                    resp = await call.read()
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if self._state == "closed" and not (task and task.cancelling()):
                        return  # the store closed
                    raise
                if resp is grpc.aio.EOF:
                    return
                if resp.compact_revision:
                    raise Compacted(from_revision, int(resp.compact_revision) - self._base)
                if resp.canceled:
                    raise StoreError(f"etcd ended the watch: {resp.cancel_reason}")
                for ev in resp.events:
                    yield self._event(ev)
        except grpc.aio.AioRpcError as e:
            if self._state == "closed":
                return
            raise self.client.translate(e) from None
        finally:
            self._watches.discard(call)
            call.cancel()

    def _event(self, ev: pb.Event) -> WatchEvent:
        if ev.type != _DELETE:
            kv = ev.kv
            added = kv.create_revision == kv.mod_revision
            return WatchEvent("ADDED" if added else "MODIFIED", self._kv(kv))
        rev = ev.kv.mod_revision - self._base
        key = ev.kv.key[len(self._root) :].decode()
        prev = ev.prev_kv
        if not prev.key:
            # etcd no longer had the value before the delete (compacted).
            log.warning("%r: deleted %s without its last value", self, key)
            return WatchEvent("DELETED", KV(key, stamp({}, rev), rev, 0))
        created = prev.create_revision - self._base
        return WatchEvent("DELETED", KV(key, stamp(orjson.loads(prev.value), rev), rev, created))
