"""`pilothouse bench failover` with short timings and one kill, on a throwaway etcd."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_bench_failover_reports_failover_beside_its_baseline() -> None:
    if shutil.which("etcd") is None:
        pytest.skip("etcd is not installed (scripts/setup.sh installs etcd-server)")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "console",
            "bench",
            "failover",
            "--kills",
            "1",
            "--control-planes",
            "2",
            "--lease-duration",
            "2",
            "--renew-deadline",
            "1.5",
            "--retry-period",
            "0.25",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["kills"] == 1 and len(figures["failover_s"]) == 1
    # Not before the lease expired as the survivor saw it; well before a minute.
    assert 1.0 < figures["failover_median_s"] < 30
    assert figures["failover_median_s"] > figures["baseline_median_s"]
    assert "failover, kill to a pod created" in done.stdout


def test_bench_failover_refuses_timings_serve_would() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "console", "bench", "failover", "--renew-deadline", "20"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 1
    assert "leader_election.renew_deadline: must be less than" in done.stderr
