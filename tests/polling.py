"""The tests' one way to wait for something: poll a check until it holds, within a bound."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict, TypeVar, Unpack, overload

T = TypeVar("T")


class Polling(TypedDict, total=False):
    """How `eventually` polls (its keyword arguments)."""

    within: float
    every: float
    describe: Callable[[], str] | None
    retry_asserts: bool


@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]], what: str = "", **polling: Unpack[Polling]
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | None], what: str = "", **polling: Unpack[Polling]
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    what: str = "",
    *,
    within: float = 5.0,
    every: float = 0.02,
    describe: Callable[[], str] | None = None,
    retry_asserts: bool = False,
) -> Any:
    """Call `check` (plain or async) every `every` seconds until it returns
    something truthy, and return that; fail the test after `within` seconds,
    naming `what` (else the check), its last result and `describe()`.

    With `retry_asserts`, an AssertionError from `check` means "not yet": a
    probe's own check that has not come true (the last one is reported).
    """
    deadline = time.monotonic() + within
    last: object = None
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
        except AssertionError as e:
            if not retry_asserts:
                raise
            value, last = None, e
        else:
            last = value
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"timed out after {within:g}s waiting for {what or check}; last: {last!r}"
            if describe is not None:
                message += f"\n{describe()}"
            raise AssertionError(message)
        await asyncio.sleep(every)


def eventually_blocking(
    check: Callable[[], T | None], what: str = "", **polling: Unpack[Polling]
) -> T:
    """`eventually` for a test that runs no event loop: the check runs on this thread."""
    return asyncio.run(eventually(check, what, **polling))
