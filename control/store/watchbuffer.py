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
