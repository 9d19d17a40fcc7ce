"""`pilothouse bench ingress` as a user runs it, with small counts: its own
throwaway local cluster, figures as JSON on the last line. Asserts what the
figures mean, never how fast they are."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.localcluster.names import NEEDS_LOCAL_CLUSTER, cli
from tests.localcluster.traces import assert_throwaway_cluster_gone

pytestmark = NEEDS_LOCAL_CLUSTER


def test_bench_ingress_on_its_own_cluster(tmp_path: Path) -> None:
    small = ["--requests", "300", "--tls-requests", "50", "--concurrency", "4"]
    r = cli(tmp_path, "bench", "ingress", *small, "--json", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    f = json.loads(r.stdout.strip().splitlines()[-1])
    assert f["ingress_ratio"] == round(f["ingress_rps"] / f["hand_rps"], 3) > 0
    assert f["ingress_backends"] == f["replicas"] == 3  # the Ingress reached every replica
    assert 0 < f["ingress_p99_ms"] and 0 < f["hand_p99_ms"]
    assert f["tls_handshakes_per_s"] > 0 and f["hand_tls_handshakes_per_s"] > 0
    assert f["rollout_failed_requests"] == 0 and f["rollout_requests"] > 0, f["rollout_errors"]
    assert f["machine"]["cores"] >= 1
    assert "failed requests through a rolling update" in r.stdout
    assert_throwaway_cluster_gone(r.stderr)
    pids = re.findall(r"hand-configured HAProxy: pid (\d+) stopped", r.stderr)
    assert pids and not any(Path(f"/proc/{pid}").exists() for pid in pids)
