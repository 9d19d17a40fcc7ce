"""Driving load in benchmarks: a bounded number of operations, a fixed number in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def drive(
    n: int, concurrency: int, op: Callable[[int], Awaitable[Any]]
) -> tuple[float, list[float]]:
    """Run op(0..n-1) with `concurrency` in flight; returns (seconds, latencies in ms)."""
    latencies: list[float] = []
    next_i = 0

    async def worker() -> None:
        nonlocal next_i
        while next_i < n:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            await op(i)
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, latencies
