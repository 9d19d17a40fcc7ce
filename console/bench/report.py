"""Printing benchmark figures: a table for people, one JSON line for machines."""

from __future__ import annotations

import statistics
from typing import Any

import orjson


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank; 0.0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def p50_p99(name: str, samples_ms: list[float]) -> dict[str, float]:
    """The figures `<name>_p50_ms` and `<name>_p99_ms`, to 0.01 ms."""
    return {f"{name}_p{p}_ms": round(percentile(samples_ms, p), 2) for p in (50, 99)}


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else 0.0


def print_report(
    title: str,
    machine: dict[str, Any],
    rows: list[tuple[str, str, str]],
    figures: dict[str, Any],
    as_json: bool,
) -> None:
    """`rows` are (measure, value, baseline-or-goal) triples."""
    print(f"== {title}")
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB, "
        f"Linux {machine['kernel']}, Python {machine['python']} (host {machine['host']})"
    )
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    for name, value, base in rows:
        print(f"  {name.ljust(width)}  {value.rjust(vwidth)}   {base}")
    if as_json:
        print(orjson.dumps({**figures, "machine": machine}).decode())
