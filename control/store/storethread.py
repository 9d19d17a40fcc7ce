"""Calls from the event loop into a store thread, answered back on the loop.

A store thread serves a queue. The loop puts a `Call` on it and awaits the
call's future; the thread runs the function and posts the outcome back with
`call_soon_threadsafe`. `Stop` tells the thread to close its connection and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Call:
    """A function to run in a store thread (in the writer: between transactions)."""

    __slots__ = ("args", "fn", "fut")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], fut: asyncio.Future[Any]
    ) -> None:
        self.fn = fn
        self.args = args
        self.fut = fut


class Stop:
    """Tells a store thread to close its connection and exit."""


async def call_in(q: queue.SimpleQueue[Any], fn: Callable[..., T], *args: Any) -> T:
    """Run `fn` in the thread serving `q`, after what is queued before it."""
    fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    q.put(Call(fn, args, fut))
    return await fut


def post(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """From a store thread: run `fn` on the loop, unless the loop is gone."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


def run_call(loop: asyncio.AbstractEventLoop, call: Call) -> None:
    """In the store thread: run `call` and answer its future on the loop."""
    try:
        result = call.fn(*call.args)
    except Exception as e:
        post(loop, _resolve, call.fut, None, e)
    else:
        post(loop, _resolve, call.fut, result, None)


def noop() -> None:
    """A call that does nothing: awaiting it waits for what was queued before."""


def _resolve(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
