"""`pilothouse bench load`, briefly: its clients' mix and the hostile rounds run
against a throwaway serve, and the JSON line holds what the issue names."""

from __future__ import annotations

import json
import sys

from console.bench.soak import NO_HANDSHAKE, NO_REQUEST, PROBE_EVERY, STALLED
from control.localcluster.proc import capture


async def _bench_load(*args: str) -> tuple[int, str, str]:
    return await capture([sys.executable, "-m", "console", "bench", "load", *args], within=120)


async def test_a_short_load_has_no_errors_and_reports_its_figures() -> None:
    code, out, err = await _bench_load("--duration", "3", "--clients", "4", "--json")
    figures = json.loads(out.splitlines()[-1])
    # 3 s is all warm-up, so the memory goal may fail; the exit code says so.
    assert code == (0 if figures["rss_growth_mb"] <= 50 else 1), err
    assert figures["passed"] is (code == 0)
    assert figures["errors"] == 0 and figures["first_errors"] == []
    assert figures["clients"] == 4
    assert figures["requests"] > 0 and figures["ops_per_s"] > 0
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert figures["baseline_one_client_ops_per_s"] > 0
    assert figures["watches_abandoned"] > 0
    rounds = figures["rounds"]
    assert rounds >= 1
    # Every stalled watcher was cut and every idle connection closed by the server.
    assert figures["stalled_watchers_cut"] == STALLED * rounds
    assert figures["idle_connections_closed"] == (NO_HANDSHAKE + NO_REQUEST) * rounds
    assert figures["probe_429s"] == (rounds + PROBE_EVERY - 1) // PROBE_EVERY
    assert figures["machine"]["cores"] >= 1


async def test_bad_counts_are_refused_in_one_line() -> None:
    code, out, err = await _bench_load("--clients", "0")
    assert code != 0 and out == ""
    assert err.strip().endswith("--clients must be between 1 and 500")
    assert len(err.strip().splitlines()) == 1
