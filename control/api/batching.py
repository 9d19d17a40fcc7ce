"""Writing a stream of chunks (watch events) in batches: those ready together
go out in one write. The chunks waiting for the client are bounded in bytes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable

from aiohttp import web

log = logging.getLogger(__name__)

# The most one write takes from the queue.
WRITE_BYTES = 1024 * 1024


class _End:
    """The end of a stream of chunks, and the error that ended it, if one did."""

    __slots__ = ("error",)

    def __init__(self, error: Exception | None) -> None:
        self.error = error


class StreamStalled(Exception):
    """The client stopped reading: its stream was cut."""


async def write_batched(
    resp: web.StreamResponse,
    chunks: AsyncGenerator[bytes, None],
    *,
    limit_bytes: int,
    stall_timeout: float,
    cut: Callable[[], None],
) -> None:
    """Write what `chunks` yields. Chunks that are ready together (a group
    commit's events) go out in one write, one system call, not one each.

    At most `limit_bytes` wait (queued, or in the write the socket has not
    taken yet); when the next chunk does not fit, `chunks` waits for room. A
    client that has not taken one write (WRITE_BYTES at most) within
    `stall_timeout` has fallen behind: `cut()`
    drops its connection, as Kubernetes' watch cache closes such a watcher,
    and StreamStalled is raised. The client watches again from the last
    resourceVersion it saw."""
    queue: deque[bytes] = deque()
    waiting = 0  # bytes queued or being written
    ready = asyncio.Event()  # something queued, or the end
    room = asyncio.Event()  # a write finished
    end: _End | None = None

    async def pump() -> None:
        nonlocal waiting, end
        result = _End(None)
        try:
            async for chunk in chunks:
                size = len(chunk)
                while waiting and waiting + size > limit_bytes:
                    room.clear()
                    try:
                        await asyncio.wait_for(room.wait(), stall_timeout)
                    except TimeoutError:
                        log.info("closing a watch: its client left %d bytes unread", waiting)
                        result = _End(StreamStalled())
                        queue.clear()
                        cut()
                        return
                queue.append(chunk)
                waiting += size
                ready.set()
        except Exception as e:
            result = _End(e)
        finally:
            await chunks.aclose()  # the watch stops now, not when collected
            end = result
            ready.set()

    task = asyncio.create_task(pump())
    try:
        while True:
            await ready.wait()
            ready.clear()
            while queue:
                # At most WRITE_BYTES a write, so each one finishing shows the
                # client's progress.
                parts = [queue.popleft()]
                size = len(parts[0])
                while queue and size + len(queue[0]) <= WRITE_BYTES:
                    size += len(queue[0])
                    parts.append(queue.popleft())
                await resp.write(b"".join(parts))
                waiting -= size
                room.set()
            if end is not None and not queue:
                if end.error is not None:
                    raise end.error
                return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
