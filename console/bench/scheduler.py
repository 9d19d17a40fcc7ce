"""`pilothouse bench scheduler`: the whole control plane placing pods on hollow nodes.

Each scenario starts a fresh `pilothouse serve` child process (API server,
store and scheduler), registers Node objects with allocatable cpu 32, memory
128Gi and 110 pods and a Ready condition (hollow: nothing runs on them), then
creates pods over the unix socket with C requests in flight while a watch
notes when each pod shows `spec.nodeName`.

- bind latency: from sending a pod's create to its watch event with a node.
  Creates go as fast as the API server takes them, so when they outpace
  binding, the latency includes the wait in the scheduling queue;
- pods/s: pods over the time from the first create sent to the last bind seen.

Scenarios: 500 nodes and --nodes nodes, plus a baseline measured in the same
run: the same pod creates with nothing for the scheduler to do (the pods name
another scheduler), timed from create to its watch event. The gap between
the baseline and the scheduled runs is what scheduling costs. With
`--store etcd`, the --nodes scenario runs once more with the objects on a
throwaway etcd.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.bench.load import drive
from console.bench.machine import describe_machine
from console.bench.nodes import ready_node
from console.bench.report import percentile, print_report
from console.bench.serve import spawn_serve, stop
from control.client import Client
from control.localcluster.etcd import throwaway_etcd
from control.objects.kinds import NODE, POD

SMALL_CLUSTER = 500
KUBE_CI_FLOOR = 680  # kube-scheduler's scheduler_perf floor, 5,000 nodes / 10,000 pods
GOAL = 1000
OTHER_SCHEDULER = "bench-no-scheduler"
# The serve child: no node lifecycle surprises while hollow nodes send no heartbeats.
SERVE_CONFIG = """\
[controllers]
node_monitor_grace_period = "1h"
pod_eviction_timeout = "1h"
"""


@dataclass
class Run:
    nodes: int
    pods: int
    seconds: float  # first create sent -> last pod seen (bound, or created for the baseline)
    latencies_ms: list[float]
    create_seconds: float  # first create sent -> last create answered

    @property
    def pods_per_s(self) -> float:
        return self.pods / self.seconds if self.seconds > 0 else 0.0

    @property
    def creates_per_s(self) -> float:
        return self.pods / self.create_seconds if self.create_seconds > 0 else 0.0

    def p(self, q: float) -> float:
        return round(percentile(self.latencies_ms, q), 1)


def _node(i: int) -> dict[str, Any]:
    name = f"hollow-{i:05d}"
    resources = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    return ready_node(
        name, resources, {"kubernetes.io/hostname": name, "pilothouse.dev/hollow": "true"}
    )


def _pod(i: int, scheduler: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "app",
                "image": "pilothouse/busybox:latest",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            }
        ]
    }
    if scheduler:
        spec["schedulerName"] = scheduler
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"bench-{i:06d}", "namespace": "default", "labels": {"app": "bench"}},
        "spec": spec,
    }


def _spawn_serve(data: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return spawn_serve(data, stdout=log, stderr=log)


@contextlib.asynccontextmanager
async def _serve(tmp: Path, label: str, store_table: str = "") -> Any:
    data = tmp / label
    data.mkdir()
    (data / "config.toml").write_text(SERVE_CONFIG + store_table)
    proc = _spawn_serve(data, tmp / f"{label}.log")
    try:
        deadline = time.monotonic() + 30
        sock = data / "api.sock"
        while not sock.exists():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"pilothouse serve exited with {proc.returncode}: "
                    f"{(tmp / f'{label}.log').read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("pilothouse serve did not open its socket within 30 s")
            await asyncio.sleep(0.05)
        async with Client(str(sock)) as client:
            yield client
    finally:
        stop(proc, 30)


async def _scenario(
    tmp: Path,
    label: str,
    nodes: int,
    pods: int,
    concurrency: int,
    baseline: bool,
    store_table: str = "",
) -> Run:
    async with _serve(tmp, label, store_table) as client:
        if nodes:
            print(f"[{label}] register {nodes} hollow nodes ...", file=sys.stderr)
            await drive(nodes, concurrency, lambda i: client.create(NODE, _node(i)))
            registered = len((await client.list(NODE))["items"])
            if registered != nodes:
                raise RuntimeError(f"{registered} nodes registered, expected {nodes}")
        sent: list[float] = [0.0] * pods
        seen: list[float] = [0.0] * pods
        remaining = pods
        all_seen = asyncio.Event()
        rv = (await client.list(POD, "default", limit=1))["metadata"]["resourceVersion"]

        async def watch() -> None:
            nonlocal remaining
            async for _type, obj in client.watch(POD, "default", resource_version=rv):
                if not baseline and not (obj.get("spec") or {}).get("nodeName"):
                    continue
                i = int(obj["metadata"]["name"].rpartition("-")[2])
                if not seen[i]:
                    seen[i] = time.perf_counter()
                    remaining -= 1
                    if remaining == 0:
                        all_seen.set()
                        return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.2)  # the watch is open before the first create
        scheduler = OTHER_SCHEDULER if baseline else None

        async def create(i: int) -> None:
            sent[i] = time.perf_counter()
            await client.create(POD, _pod(i, scheduler))

        what = "pods (no scheduling)" if baseline else "pods"
        print(f"[{label}] create {pods} {what} ...", file=sys.stderr)
        try:
            await drive(pods, concurrency, create)
            created = time.perf_counter()
            timeout = 60 + pods / 50
            try:
                await asyncio.wait_for(all_seen.wait(), timeout)
            except TimeoutError:
                raise RuntimeError(
                    f"[{label}] {remaining} of {pods} pods not seen "
                    f"{'created' if baseline else 'bound'} within {timeout:.0f} s"
                ) from None
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        first = min(sent)
        return Run(
            nodes=nodes,
            pods=pods,
            seconds=max(seen) - first,
            latencies_ms=[(b - a) * 1000 for a, b in zip(sent, seen, strict=True)],
            create_seconds=created - first,
        )


async def run_bench_scheduler(
    nodes: int, pods: int, concurrency: int, as_json: bool, store: str = "sqlite"
) -> int:
    """With `store` "etcd", the --nodes scenario runs again on a throwaway etcd."""
    if nodes < 1 or pods < 1 or concurrency < 1:
        raise ValueError("--nodes, --pods and --concurrency must be positive")
    sizes = [SMALL_CLUSTER, nodes] if nodes != SMALL_CLUSTER else [nodes]
    with tempfile.TemporaryDirectory(prefix="pilothouse-bench-") as tmp_name:
        tmp = Path(tmp_name)
        base = await _scenario(tmp, "baseline", 0, pods, concurrency, baseline=True)
        runs = {
            n: await _scenario(tmp, f"nodes-{n}", n, pods, concurrency, baseline=False)
            for n in sizes
        }
        on_etcd: Run | None = None
        if store == "etcd":
            with throwaway_etcd(tmp / "etcd") as etcd:
                on_etcd = await _scenario(
                    tmp, f"etcd-nodes-{nodes}", nodes, pods, concurrency, False, etcd.store_table()
                )
    main = runs[nodes]
    small = runs[sizes[0]]
    figures = {
        "nodes": nodes,
        "pods": pods,
        "concurrency": concurrency,
        "pods_per_s": round(main.pods_per_s, 1),
        "bind_p50_ms": main.p(50),
        "bind_p99_ms": main.p(99),
        "creates_per_s": round(main.creates_per_s, 1),
        "small_nodes": small.nodes,
        "small_pods_per_s": round(small.pods_per_s, 1),
        "small_bind_p50_ms": small.p(50),
        "small_bind_p99_ms": small.p(99),
        "baseline_creates_per_s": round(base.pods_per_s, 1),
        "baseline_create_p50_ms": base.p(50),
        "baseline_create_p99_ms": base.p(99),
        "kube_ci_floor_pods_per_s": KUBE_CI_FLOOR,
    }
    rows = [
        (
            f"pods scheduled/s, {nodes:,} nodes",
            f"{main.pods_per_s:,.0f}",
            f"kube-scheduler CI floor {KUBE_CI_FLOOR} (5,000 nodes); goal >= {GOAL:,}",
        ),
        (
            "  create -> bind p50 / p99 ms",
            f"{main.p(50)} / {main.p(99)}",
            f"{pods:,} pods, {concurrency} creates in flight; includes the wait in the queue",
        ),
        ("  pods created/s meanwhile", f"{main.creates_per_s:,.0f}", ""),
    ]
    if small is not main:
        rows += [
            (f"pods scheduled/s, {small.nodes:,} nodes", f"{small.pods_per_s:,.0f}", ""),
            ("  create -> bind p50 / p99 ms", f"{small.p(50)} / {small.p(99)}", ""),
        ]
    rows += [
        (
            "baseline: pods created/s, no scheduling",
            f"{base.pods_per_s:,.0f}",
            "same creates; the pods name another scheduler",
        ),
        ("  create -> watch event p50 / p99 ms", f"{base.p(50)} / {base.p(99)}", ""),
    ]
    title = "pilothouse bench scheduler (API server, SQLite store and scheduler; hollow nodes)"
    if on_etcd is not None:
        title = title.replace("scheduler;", "scheduler, then on etcd;")
        figures.update(
            {
                "etcd_pods_per_s": round(on_etcd.pods_per_s, 1),
                "etcd_bind_p50_ms": on_etcd.p(50),
                "etcd_bind_p99_ms": on_etcd.p(99),
                "etcd_creates_per_s": round(on_etcd.creates_per_s, 1),
            }
        )
        rows += [
            (
                f"etcd: pods scheduled/s, {nodes:,} nodes",
                f"{on_etcd.pods_per_s:,.0f}",
                "same pods on a throwaway etcd",
            ),
            ("  create -> bind p50 / p99 ms", f"{on_etcd.p(50)} / {on_etcd.p(99)}", ""),
            ("  pods created/s meanwhile", f"{on_etcd.creates_per_s:,.0f}", ""),
        ]
    print_report(
        title,
        describe_machine(),
        rows,
        figures,
        as_json,
    )
    return 0
