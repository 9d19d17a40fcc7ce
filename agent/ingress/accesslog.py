"""Response times from HAProxy's access log, for the 99th percentile its stats
lack.

HAProxy sends one datagram per request to a unix datagram socket the agent
binds (`log <socket> format raw`, log-format "<backend> <%Ta>": the active time
of the request, from its first byte to the response's last, without keep-alive
idle time). The agent keeps, per HAProxy backend, one histogram per second for
the last WINDOW_SECONDS; bins grow by GROWTH, so a percentile is at most that
much above the true value. Memory is bounded by backends x seconds x bins, and
the socket's buffer bounds a burst: datagrams past it are dropped by the kernel
(HAProxy never waits for the agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)

LOG_FORMAT = "%b %Ta"
WINDOW_SECONDS = 10
GROWTH = 1.05
MAX_MS = 3_600_000.0  # longer times count as an hour
RECEIVE_BUFFER = 1 << 20

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

    def add(self, key: str, ms: float) -> None:
        now = int(self.clock())
        seconds = self._seconds.setdefault(key, deque())
        if not seconds or seconds[-1][0] != now:
            seconds.append((now, {}))
            self._expire(seconds, now)
        histogram = seconds[-1][1]
        b = bin_of(ms)
        histogram[b] = histogram.get(b, 0) + 1

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
    """(backend, ms) from one log datagram; None for anything else (HAProxy's
    own messages, requests that ended before a time was known)."""
    fields = data.decode(errors="replace").split()
    if len(fields) != 2 or not fields[1].isdigit():
        return None
    return fields[0], float(fields[1])


class AccessLog(asyncio.DatagramProtocol):
    """The socket HAProxy logs to, feeding `window`."""

    def __init__(self, path: Path, window: LatencyWindow) -> None:
        self.path = path
        self.window = window
        self._transport: asyncio.DatagramTransport | None = None

    async def open(self) -> None:
        if self._transport is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            self.path.unlink(missing_ok=True)
            sock.bind(str(self.path))
            sock.setblocking(False)
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: self, sock=sock
            )
        except BaseException:
            sock.close()
            raise
        self._transport = transport

    def datagram_received(self, data: bytes, addr: object) -> None:
        entry = parse_line(data)
        if entry is not None:
            self.window.add(*entry)

    def error_received(self, exc: Exception) -> None:
        log.debug("ingress: access log socket: %s", exc)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
