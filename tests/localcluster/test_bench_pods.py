"""`pilothouse bench pods` as a user runs it: its own throwaway local cluster,
small numbers, figures as JSON on the last line. Asserts what the figures
mean, never how fast they are."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.localcluster.names import NEEDS_LOCAL_CLUSTER, cli

pytestmark = [
    *NEEDS_LOCAL_CLUSTER,
]


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=20)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_help(tmp_path: Path) -> None:
    r = cli(tmp_path, "bench", "pods", "--help", timeout=60)
    assert r.returncode == 0, r.stderr
    for flag in ("--replicas", "--samples", "--nodes", "--use-current", "--server", "--json"):
        assert flag in r.stdout


def test_bench_pods_on_its_own_cluster(tmp_path: Path) -> None:
    r = cli(tmp_path, "bench", "pods", "--replicas", "4", "--samples", "3", "--json", timeout=280)
    assert r.returncode == 0, r.stderr[-3000:]
    figures = json.loads(r.stdout.strip().splitlines()[-1])

    assert figures["cluster"] == "throwaway local"
    assert figures["nodes"] == 3
    assert figures["replicas"] == 4
    assert figures["samples"] == 3
    for key in (
        "scale30_s",
        "scale_scheduled_s",
        "startup_p50_ms",
        "startup_p99_ms",
        "scheduled_p50_ms",
        "node_p50_ms",
        "api_floor_p50_ms",
        "api_floor_p99_ms",
        "cri_floor_p50_ms",
        "cri_floor_p99_ms",
        "cri_sandbox_p50_ms",
        "cri_container_p50_ms",
        "cri_scale_s",
    ):
        assert isinstance(figures[key], (int, float)) and figures[key] > 0, key
    assert figures["startup_p50_ms"] <= figures["startup_p99_ms"] <= figures["startup_max_ms"]
    assert figures["cri_floor_p50_ms"] <= figures["cri_floor_p99_ms"]
    assert figures["api_floor_p50_ms"] <= figures["api_floor_p99_ms"]
    # Phases nest: scheduling happens before Running, and the whole includes both.
    assert figures["scheduled_p50_ms"] <= figures["startup_p99_ms"]
    assert figures["node_p50_ms"] <= figures["startup_p99_ms"]
    assert figures["scale_scheduled_s"] <= figures["scale30_s"]
    assert figures["machine"]["cores"] >= 1
    # The table for people comes first, then the JSON.
    assert "pod startup p50 / p99" in r.stdout
    # It took down what it brought up: its namespaces, links and data dir are gone.
    m = re.search(r"local cluster (\w+): .* in (\S+)$", r.stderr, re.MULTILINE)
    assert m, r.stderr[-3000:]
    cluster, data = m.group(1), Path(m.group(2))
    assert not [n for n in _netns() if n.startswith(f"ph-{cluster}-")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=20)
    assert f"ph{cluster}" not in links.stdout and f"phbr-{cluster}" not in links.stdout
    assert not data.parent.exists()
