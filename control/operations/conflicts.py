"""Writes made conditional on the resourceVersion they read, and retried when
another writer got in between (409 Conflict): read, change, write again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from control.errors import ApiError

T = TypeVar("T")

# A write that keeps losing the race to other writers gives up after this many tries.
ATTEMPTS = 5


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]], attempts: int = ATTEMPTS) -> T:
    """`attempt()` (a read, then a write carrying the read's resourceVersion),
    again on each 409, at most `attempts` times; the last 409 raises."""
    for n in range(attempts):
        try:
            return await attempt()
        except ApiError as e:
            if e.code != 409 or n == attempts - 1:
                raise
    raise AssertionError("unreachable")
