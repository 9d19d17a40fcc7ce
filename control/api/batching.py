"""Writing a stream of chunks (watch events) in batches: those ready together
go out in one write."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from aiohttp import web

# Chunks waiting to be written; ready ones are written together.
WATCH_BATCH = 256


class _End:
    """The end of a stream of chunks, and the error that ended it, if one did."""

    __slots__ = ("error",)

    def __init__(self, error: Exception | None) -> None:
        self.error = error


async def write_batched(resp: web.StreamResponse, chunks: AsyncGenerator[bytes, None]) -> None:
    """Write what `chunks` yields. Chunks that are ready together (a group
    commit's events) go out in one write, one system call, not one each. At
    most WATCH_BATCH chunks wait, so a slow reader slows `chunks` down."""
    ready: asyncio.Queue[bytes | _End] = asyncio.Queue(WATCH_BATCH)

    async def pump() -> None:
        end = _End(None)
        try:
            async for chunk in chunks:
                await ready.put(chunk)
        except Exception as e:
            end = _End(e)
        finally:
            await chunks.aclose()  # the watch stops now, not when collected
        await ready.put(end)

    task = asyncio.create_task(pump())
    try:
        while True:
            batch: list[bytes] = []
            item = await ready.get()
            while isinstance(item, bytes):
                batch.append(item)
                if ready.empty():
                    break
                item = ready.get_nowait()
            if batch:
                await resp.write(b"".join(batch))
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
