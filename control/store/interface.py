"""The store: a revisioned key-value store with etcd's semantics.

Every write bumps one global revision. Values are Kubernetes objects (JSON
dicts); the store stamps `metadata.resourceVersion` with the revision of the
write, so a stored value can be served as-is. Updates and deletes may be
compare-and-swap on the object's current revision. A watch starts from a
revision: it first replays what happened after it, then streams live events. A
watch from a revision that was compacted away raises `Compacted` (410 Gone).

Backends (`sqlite`, `etcd`) implement `Store` and pass the one contract suite
in `tests/store/contract.py`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

import orjson

from control.errors import DataDirLocked
from control.objects import Obj

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


class StoreError(Exception):
    """Base class for store failures. The API server maps each to a Status."""


class KeyExists(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key already exists: {key}")
        self.key = key


class KeyNotFound(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionConflict(StoreError):
    """The object changed since the revision the caller expected."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"revision conflict on {key}: expected {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class Compacted(StoreError):
    """The requested revision is older than the oldest one kept (410 Gone)."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"too old resource version: {requested} ({compacted})")
        self.requested = requested
        self.compacted = compacted


class StoreLocked(StoreError, DataDirLocked):
    """Another process holds this store's data dir."""


@dataclass(frozen=True, slots=True)
class KV:
    """One stored object: its key, raw JSON bytes and revisions."""

    key: str
    raw: bytes
    mod_revision: int
    create_revision: int

    @property
    def obj(self) -> Obj:
        """A fresh dict parsed from `raw`; callers may mutate it."""
        parsed: Obj = orjson.loads(self.raw)
        return parsed


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: EventType
    kv: KV  # for DELETED: the last value, stamped with the delete's revision

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KV]
    revision: int  # the store revision the list was read at
    continue_token: str | None  # opaque; pass back to list() to get the next page
    remaining: int | None = None  # items left after this page, when known


# A predicate over a parsed object, built from label and field selectors.
Matcher = Callable[[Obj], bool]


class Store(abc.ABC):
    """The store interface. All methods are coroutines unless noted."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Open or create the store. Raises StoreLocked if another process holds it."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the store. Live watches end."""

    @abc.abstractmethod
    async def revision(self) -> int:
        """The current global revision (0 for an empty store)."""

    @abc.abstractmethod
    async def get(self, key: str) -> KV | None:
        """The current value of `key`, or None."""

    @abc.abstractmethod
    async def list(
        self,
        prefix: str,
        *,
        match: Matcher | None = None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> ListResult:
        """Keys under `prefix` in key order, filtered by `match`.

        `limit` > 0 pages the result; `continue_token` resumes after the last
        key of the previous page. A token from a compacted revision raises
        Compacted.
        """

    @abc.abstractmethod
    async def create(self, key: str, obj: Obj) -> KV:
        """Store a new object. Raises KeyExists."""

    @abc.abstractmethod
    async def update(self, key: str, obj: Obj, *, expected_revision: int | None = None) -> KV:
        """Replace an object. With `expected_revision`, compare-and-swap.

        Raises KeyNotFound, or RevisionConflict when the current revision differs.
        """

    @abc.abstractmethod
    async def delete(self, key: str, *, expected_revision: int | None = None) -> KV:
        """Delete an object and return its last value, stamped with the delete revision.

        Raises KeyNotFound or RevisionConflict.
        """

    @abc.abstractmethod
    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        """Events for keys under `prefix` with revision > `from_revision`, in order.

        Replays stored history first, then streams live events, with no gap and
        no duplicate. Raises Compacted (on first iteration) when `from_revision`
        is older than the compacted revision. Ends when the store closes.
        """

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history at and below `revision`. Current values stay."""

    @abc.abstractmethod
    async def compacted_revision(self) -> int:
        """The newest revision that was compacted away (0 if none)."""
