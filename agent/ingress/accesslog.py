"""Response times from HAProxy's access log, for the 99th percentile its stats
lack.

HAProxy writes one line per request, "<backend> <%Ta>" (the active time of
the request, from its first byte to the response's last, without keep-alive
idle time), to a pipe the agent made and handed it (`log fd@N`): one write to
a pipe per request, cheaper than a datagram, with no per-message queue limit.
The agent reads the pipe in bulk every READ_EVERY seconds while lines come, so
it wakes a few times a second rather than once per request, and counts
identical lines once (a route's times take few distinct values). The pipe
holds PIPE_BYTES meanwhile; when it is full HAProxy drops lines (it never
waits for the agent).

The agent keeps, per HAProxy backend, one histogram per second for the last
WINDOW_SECONDS; bins grow by GROWTH, so a percentile is at most that much above
the true value. Memory is bounded by backends x seconds x bins.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import math
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

LOG_FORMAT = "%b %Ta"
PIPE_BYTES = 1 << 20  # tens of thousands of lines: seconds at any rate one node serves
MAX_LINE = 256  # longer is not a line of LOG_FORMAT (backend names are short)
WINDOW_SECONDS = 10
GROWTH = 1.05
MAX_MS = 3_600_000.0  # longer times count as an hour
READ_EVERY = 0.2  # seconds between the agent's reads of the pipe
READ_CHUNK = 1 << 20

Histogram = dict[int, int]  # bin -> count


def bin_of(ms: float) -> int:
    """The histogram bin of a time: 0 up to 1 ms, then one per GROWTH factor."""
    ms = min(ms, MAX_MS)
    return 0 if ms <= 1 else math.ceil(math.log(ms) / math.log(GROWTH))


def bin_top(b: int) -> float:
    """The largest time in bin `b`, in ms."""
    return round(min(GROWTH**b, MAX_MS), 3)


class LatencyWindow:
    """Per key, the response times of the last `window` seconds."""

    def __init__(
        self, window: int = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self.clock = clock
        self._seconds: dict[str, deque[tuple[int, Histogram]]] = {}

    def add(self, key: str, ms: float, count: int = 1) -> None:
        """`count` requests of `key` that took `ms`."""
        now = int(self.clock())
        seconds = self._seconds.setdefault(key, deque())
        if not seconds or seconds[-1][0] != now:
            seconds.append((now, {}))
            self._expire(seconds, now)
        histogram = seconds[-1][1]
        b = bin_of(ms)
        histogram[b] = histogram.get(b, 0) + count

    def percentile(self, keys: Iterable[str], fraction: float = 0.99) -> float | None:
        """Over the given keys together; None when they had no sample in the window."""
        now = int(self.clock())
        merged: Histogram = {}
        for key in keys:
            seconds = self._seconds.get(key)
            if seconds is None:
                continue
            self._expire(seconds, now)
            for _, histogram in seconds:
                for b, n in histogram.items():
                    merged[b] = merged.get(b, 0) + n
        total = sum(merged.values())
        if total == 0:
            return None
        rank = math.ceil(fraction * total)
        seen = 0
        for b in sorted(merged):
            seen += merged[b]
            if seen >= rank:
                return bin_top(b)
        raise AssertionError("unreachable: the rank is within the total")

    def retain(self, keys: Iterable[str]) -> None:
        """Forgets every other key (backends a new configuration no longer has)."""
        keep = set(keys)
        for key in [k for k in self._seconds if k not in keep]:
            del self._seconds[key]

    def _expire(self, seconds: deque[tuple[int, Histogram]], now: int) -> None:
        while seconds and seconds[0][0] <= now - self.window:
            seconds.popleft()


def parse_line(data: bytes) -> tuple[str, float] | None:
    """(backend, ms) from one log line; None for anything else (HAProxy's own
    messages, requests that ended before a time was known)."""
    fields = data.split()
    if len(fields) != 2 or not fields[1].isdigit():
        return None
    return fields[0].decode(errors="replace"), float(fields[1])


def feed(window: LatencyWindow, data: bytes) -> bytes:
    """Adds the complete lines of `data` to `window` and returns what follows
    the last newline (the start of a line still coming)."""
    *lines, rest = data.split(b"\n")
    for line, count in Counter(lines).items():
        entry = parse_line(line)
        if entry is not None:
            window.add(*entry, count)
    return rest if len(rest) <= MAX_LINE else b""


class AccessLog:
    """The pipe HAProxy logs to, feeding `window`. `write_fd` is HAProxy's end: it
    must be passed to HAProxy (pass_fds), which keeps it across reloads."""

    def __init__(self, window: LatencyWindow) -> None:
        self.window = window
        self._read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # above the system's pipe-max-size: the default
            fcntl.fcntl(self.write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        """Waits for lines, takes all that have come, then sleeps READ_EVERY."""
        rest = b""
        while True:
            await self._readable()
            chunks = [rest]
            with contextlib.suppress(BlockingIOError):
                while data := os.read(self._read_fd, READ_CHUNK):
                    chunks.append(data)
            rest = feed(self.window, b"".join(chunks))
            await asyncio.sleep(READ_EVERY)

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(self._read_fd, wake)
        try:
            await ready
        finally:
            loop.remove_reader(self._read_fd)

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        for fd in (self._read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
