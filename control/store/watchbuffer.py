"""One watch's live buffer, bounded: a watcher that falls behind is told to re-read.

Only touched on the event loop. The backend pushes each committed event to the
buffers whose prefix matches; the watch pops them. When a buffer is full, in
events or in the bytes of their values, it is dropped and marked `overflowed`:
the watch then catches up from the backend's event log and goes live again, so
a slow watcher costs no unbounded memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator

from control.store.interface import WatchEvent

# The bytes of values one buffer may hold, by default.
DEFAULT_LIMIT_BYTES = 16 * 1024 * 1024


class WatchBuffer:
    __slots__ = ("buf", "closed", "limit", "limit_bytes", "nbytes", "overflowed", "prefix", "wake")

    def __init__(self, prefix: str, limit: int, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> None:
        self.prefix = prefix
        self.limit = limit
        self.limit_bytes = limit_bytes
        self.buf: deque[WatchEvent] = deque()
        self.nbytes = 0  # of the values in buf
        self.overflowed = False
        self.closed = False
        self.wake = asyncio.Event()

    def push(self, ev: WatchEvent) -> None:
        if self.overflowed or self.closed:
            return
        size = len(ev.kv.raw)
        if len(self.buf) >= self.limit or (self.buf and self.nbytes + size > self.limit_bytes):
            # Too slow: drop the buffer; the watch re-reads from the event log.
            self.buf.clear()
            self.nbytes = 0
            self.overflowed = True
        else:
            self.buf.append(ev)
            self.nbytes += size
        self.wake.set()

    def pop(self) -> WatchEvent:
        ev = self.buf.popleft()
        self.nbytes -= len(ev.kv.raw)
        return ev

    def close(self) -> None:
        self.closed = True
        self.wake.set()


class Watchers:
    """A backend's live watch buffers, in the order they were added (a
    CachedStore's own comes first, so the cache applies each event before
    other watches see it), and which of them each resource's events reach."""

    __slots__ = ("_all", "_routes")

    def __init__(self) -> None:
        self._all: dict[WatchBuffer, None] = {}
        # "/registry/pods/" -> the buffers whose prefix may match its keys.
        self._routes: dict[str, tuple[WatchBuffer, ...]] = {}

    def add(self, w: WatchBuffer) -> None:
        self._all[w] = None
        self._routes.clear()

    def discard(self, w: WatchBuffer) -> None:
        if w in self._all:
            del self._all[w]
            self._routes.clear()

    def __bool__(self) -> bool:
        return bool(self._all)

    def __iter__(self) -> Iterator[WatchBuffer]:
        return iter(list(self._all))

    def push(self, ev: WatchEvent) -> None:
        """`ev` to every buffer whose prefix its key starts with."""
        key = ev.kv.key
        route = _route(key)
        candidates = self._routes.get(route)
        if candidates is None:
            # A prefix that matches the key is either within the route or
            # extends it.
            candidates = self._routes[route] = tuple(
                w for w in self._all if route.startswith(w.prefix) or w.prefix.startswith(route)
            )
        for w in candidates:
            if key.startswith(w.prefix):
                w.push(ev)


def _route(key: str) -> str:
    """The key up to its third "/": "/registry/pods/" of "/registry/pods/ns/name"."""
    end = key.find("/", key.find("/", 1) + 1)
    return key if end < 0 else key[: end + 1]
