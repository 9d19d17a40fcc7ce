"""`pilothouse bench net` as a user runs it: its own throwaway local cluster,
figures as JSON on the last line. Asserts what the figures mean, never how
fast they are."""

from __future__ import annotations

import json
from pathlib import Path

from console.bench import net
from tests.localcluster.names import NEEDS_LOCAL_CLUSTER, cli
from tests.localcluster.traces import assert_throwaway_cluster_gone, netns_names

pytestmark = [
    *NEEDS_LOCAL_CLUSTER,
]


def test_bench_net_on_its_own_cluster(tmp_path: Path) -> None:
    """As a user runs it: figures that mean what they say, and nothing left."""
    r = cli(tmp_path, "bench", "net", "--json", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    f = json.loads(r.stdout.strip().splitlines()[-1])
    assert f["nodes"] == 3 and f["replicas"] == 3
    assert f["clusterip_backends"] == 3  # the ClusterIP reached every replica
    assert f["clusterip_ratio"] == round(f["clusterip_rps"] / f["direct_rps"], 3) > 0
    assert f["dns_errors"] == 0 and 0 < f["dns_p50_ms"] <= f["dns_p99_ms"] and f["dns_qps"] > 0
    assert f["propagation_samples"] == net.PROPAGATION_SAMPLES
    assert 0 < f["propagation_p50_ms"] <= f["propagation_p99_ms"]
    assert len(f["sync_samples_ms"]) == net.SYNC_SAMPLES
    assert f["sync_1k_services_ms"] == sorted(f["sync_samples_ms"])[1]
    assert f["machine"]["cores"] >= 1
    assert "endpoint change -> all nodes' rules p50 / p99" in r.stdout
    assert_throwaway_cluster_gone(r.stderr)
    assert not any(n.startswith("ph-bench-") for n in netns_names())
