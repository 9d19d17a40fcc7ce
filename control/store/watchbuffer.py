"""One watch's live buffer, bounded: a watcher that falls behind is told to re-read.

Only touched on the event loop. The backend pushes each committed event to the
buffers whose prefix matches; the watch pops them. When a buffer is full it is
dropped and marked `overflowed`: the watch then catches up from the backend's
event log and goes live again, so a slow watcher costs no unbounded memory.
"""

from __future__ import annotations

import asyncio
from collections import deque

from control.store.interface import WatchEvent


class WatchBuffer:
    __slots__ = ("buf", "closed", "limit", "overflowed", "prefix", "wake")

    def __init__(self, prefix: str, limit: int) -> None:
        self.prefix = prefix
        self.limit = limit
        self.buf: deque[WatchEvent] = deque()
        self.overflowed = False
        self.closed = False
        self.wake = asyncio.Event()

    def push(self, ev: WatchEvent) -> None:
        if self.overflowed or self.closed:
            return
        if len(self.buf) >= self.limit:
            # Too slow: drop the buffer; the watch re-reads from the event log.
            self.buf.clear()
            self.overflowed = True
        else:
            self.buf.append(ev)
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()
