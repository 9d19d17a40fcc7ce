"""`bench pods` figures as rows: with the CRI floor (a local cluster) and without it."""

from __future__ import annotations

from typing import Any

from console.bench.pods import _is_ready, _rows


def _figures(cri: bool) -> dict[str, Any]:
    f: dict[str, Any] = {
        "nodes": 3,
        "replicas": 30,
        "samples": 20,
        "scale30_s": 5.0,
        "scale_scheduled_s": 0.8,
        "startup_p50_ms": 400.0,
        "startup_p99_ms": 800.0,
        "scheduled_p50_ms": 5.0,
        "scheduled_p99_ms": 20.0,
        "node_p50_ms": 395.0,
        "node_p99_ms": 790.0,
        "api_floor_p50_ms": 3.0,
        "api_floor_p99_ms": 9.0,
        "load_before": 1.0,
        "load_after": 2.0,
    }
    keys = [
        "cri_floor_p50_ms",
        "cri_floor_p99_ms",
        "cri_sandbox_p50_ms",
        "cri_container_p50_ms",
        "overhead_p50_ms",
        "overhead_p99_ms",
        "cri_scale_s",
    ]
    f.update({k: (1.0 if cri else None) for k in keys})
    return f


def test_rows_with_and_without_the_cri_floor() -> None:
    with_cri = {name.strip(): value for name, value, _ in _rows(_figures(True))}
    assert with_cri["scale 0 -> 30, all Running and Ready"] == "5.00 s"
    assert with_cri["pod startup p50 / p99"] == "400 / 800 ms"
    assert "baseline: CRI floor p50 / p99" in with_cri
    assert "baseline: the same pods straight on CRI" in with_cri

    without = {name.strip(): value for name, value, _ in _rows(_figures(False))}
    assert without["baseline: CRI floor"] == "n/a"
    assert "baseline: the same pods straight on CRI" not in without


def test_ready_means_running_with_the_ready_condition() -> None:
    running = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    assert _is_ready(running)
    assert not _is_ready({"status": {"phase": "Running", "conditions": []}})
    assert not _is_ready({"status": {"phase": "Pending"}})
