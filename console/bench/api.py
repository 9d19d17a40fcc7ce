"""`pilothouse bench api`: the API server and SQLite store, over the unix socket.
With `--store etcd`, the same again on a throwaway etcd, reported beside SQLite.

It starts a real `pilothouse serve` in a child process with a fresh data dir,
then drives it from this process:
- creates and updates N pods with C requests in flight (throughput, p50/p99);
- lists all N pods (median of 5);
- measures watch delivery: the time from sending an update to seeing its
  event on a watch, at a paced rate.

Baselines, measured in the same run on the same machine: an aiohttp server
that answers every request with a fixed body (the HTTP floor), and raw SQLite
commits in WAL mode (the storage floor).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from console.bench.load import drive
from console.bench.machine import describe_machine
from console.bench.report import median, p50_p99, print_report
from console.bench.serve import spawn_serve, stop
from control.client import Client
from control.localcluster.etcd import throwaway_etcd
from control.objects.kinds import POD

WATCH_SAMPLES = 500
WATCH_RATE = 200.0  # updates per second while measuring watch latency


def _pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"bench-{i:06d}",
            "namespace": "default",
            "labels": {"app": "bench", "shard": str(i % 10)},
        },
        "spec": {
            # No scheduler claims these pods: the figures are the API server's and
            # the store's alone, not the scheduler's reaction to 10,000 pods.
            "schedulerName": "pilothouse-bench",
            "containers": [
                {
                    "name": "web",
                    "image": "pilothouse/busybox:latest",
                    "command": ["httpd", "-f", "-p", "8080"],
                    "ports": [{"containerPort": 8080}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


async def _wait_socket(path: Path, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not open {path} within 30 s")
        await asyncio.sleep(0.05)


def _sqlite_floor(path: Path, n: int) -> float:
    """Commits per second for single-row inserts in WAL mode, synchronous=NORMAL."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
    blob = b"x" * 700
    t0 = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN")
        db.execute("INSERT INTO kv VALUES (?, ?)", (f"k{i}", blob))
        db.execute("COMMIT")
    took = time.perf_counter() - t0
    db.close()
    return n / took


async def _http_floor(tmp: Path, n: int, concurrency: int) -> float:
    sock = tmp / "echo.sock"
    proc = subprocess.Popen([sys.executable, "-m", "console.bench.echo_server", str(sock)])
    try:
        await _wait_socket(sock, proc, "echo server")
        async with Client(str(sock)) as client:
            took, _ = await drive(
                n, concurrency, lambda i: client.request("POST", "/x", body=_pod(i))
            )
        return n / took
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _watch_latency(client: Client, n: int) -> list[float]:
    """Latency from sending an update to receiving its watch event, in ms."""
    sent: dict[str, float] = {}
    got: list[float] = []
    listed = await client.list(POD, "default", limit=1)
    rv = listed["metadata"]["resourceVersion"]
    done = asyncio.Event()

    async def watcher() -> None:
        async for _type, obj in client.watch(POD, "default", resource_version=rv):
            mark = (obj["metadata"].get("annotations") or {}).get("bench/mark")
            if mark in sent:
                got.append((time.perf_counter() - sent.pop(mark)) * 1000)
                if len(got) >= n:
                    done.set()
                    return

    task = asyncio.create_task(watcher())
    await asyncio.sleep(0.2)
    try:
        for i in range(n):
            mark = f"m{i}"
            sent[mark] = time.perf_counter()
            await client.patch(
                POD,
                f"bench-{i:06d}",
                {"metadata": {"annotations": {"bench/mark": mark}}},
                "default",
            )
            await asyncio.sleep(1 / WATCH_RATE)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return got


@dataclass
class _Measured:
    """What one store did under the same load."""

    n: int
    create_s: float
    create_lat: list[float]
    update_s: float
    update_lat: list[float]
    list_ms: list[float]
    decode_ms: list[float]
    watch_lat: list[float]

    @property
    def writes_per_s(self) -> float:
        return 2 * self.n / (self.create_s + self.update_s)

    def figures(self) -> dict[str, Any]:
        n = self.n
        return {
            "writes_per_s": round(self.writes_per_s, 1),
            "creates_per_s": round(n / self.create_s, 1),
            "updates_per_s": round(n / self.update_s, 1),
            **p50_p99("write", self.create_lat + self.update_lat),
            **p50_p99("create", self.create_lat),
            **p50_p99("update", self.update_lat),
            "list_10k_ms": round(median(self.list_ms), 1),
            "list_10k_decode_ms": round(median(self.decode_ms), 1),
            **p50_p99("watch", self.watch_lat),
        }


async def _measure(data: Path, n: int, concurrency: int) -> _Measured:
    """Creates, updates, lists and watch delivery on a `pilothouse serve` of `data`."""
    proc = spawn_serve(data, stderr=subprocess.DEVNULL)
    try:
        await _wait_socket(data / "api.sock", proc, "pilothouse serve")
        async with Client(str(data / "api.sock")) as client:
            print(f"create {n} pods ...", file=sys.stderr)
            create_s, create_lat = await drive(
                n, concurrency, lambda i: client.create(POD, _pod(i))
            )

            async def update(i: int) -> None:
                await client.patch(
                    POD, f"bench-{i:06d}", {"metadata": {"labels": {"tier": "web"}}}, "default"
                )

            print(f"update {n} pods ...", file=sys.stderr)
            update_s, update_lat = await drive(n, concurrency, update)

            print(f"list {n} pods ...", file=sys.stderr)
            list_ms: list[float] = []
            decode_ms: list[float] = []
            for _ in range(5):
                t0 = time.perf_counter()
                status, raw = await client.request_raw("GET", client.path(POD, "default"))
                t1 = time.perf_counter()
                items = orjson.loads(raw)["items"]
                decode_ms.append((time.perf_counter() - t1) * 1000)
                list_ms.append((t1 - t0) * 1000)
                if status != 200 or len(items) != n:
                    raise RuntimeError(
                        f"list returned {len(items)} pods (HTTP {status}), expected {n}"
                    )

            print(f"watch latency over {WATCH_SAMPLES} paced updates ...", file=sys.stderr)
            watch_lat = await _watch_latency(client, WATCH_SAMPLES)
            if len(watch_lat) < WATCH_SAMPLES:
                raise RuntimeError(f"watch delivered {len(watch_lat)} of {WATCH_SAMPLES} events")
    finally:
        stop(proc, 15)
    return _Measured(n, create_s, create_lat, update_s, update_lat, list_ms, decode_ms, watch_lat)


async def run_bench_api(n: int, concurrency: int, as_json: bool, store: str = "sqlite") -> int:
    """With `store` "etcd", the same load runs again on a throwaway etcd, reported beside SQLite."""
    if n < WATCH_SAMPLES:
        raise ValueError(f"--objects must be at least {WATCH_SAMPLES}")
    with tempfile.TemporaryDirectory(prefix="pilothouse-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print("baseline: raw SQLite commits ...", file=sys.stderr)
        sqlite_floor = _sqlite_floor(tmp / "floor.db", min(n, 5000))
        print("baseline: fixed-answer aiohttp server ...", file=sys.stderr)
        http_floor = await _http_floor(tmp, min(n, 5000), concurrency)

        m = await _measure(tmp / "data", n, concurrency)
        on_etcd: _Measured | None = None
        if store == "etcd":
            with throwaway_etcd(tmp / "etcd") as etcd:
                print(f"the same on etcd ({etcd.endpoint}) ...", file=sys.stderr)
                data = tmp / "data-etcd"
                data.mkdir()
                (data / "config.toml").write_text(etcd.store_table())
                on_etcd = await _measure(data, n, concurrency)

    figures = {
        "objects": n,
        "concurrency": concurrency,
        **m.figures(),
        "baseline_http_floor_rps": round(http_floor, 1),
        "baseline_sqlite_commits_per_s": round(sqlite_floor, 1),
    }
    rows = [
        ("writes/s (create+update)", f"{m.writes_per_s:,.0f}", "goal >= 2,000"),
        (
            "  creates/s",
            f"{figures['creates_per_s']:,.0f}",
            f"HTTP floor {http_floor:,.0f} req/s (fixed-answer aiohttp)",
        ),
        (
            "  updates/s (merge-patch)",
            f"{figures['updates_per_s']:,.0f}",
            f"SQLite floor {sqlite_floor:,.0f} commits/s",
        ),
        (
            "write p50 / p99 ms",
            f"{figures['write_p50_ms']} / {figures['write_p99_ms']}",
            f"{concurrency} in flight",
        ),
        (
            f"list {n} pods ms (median of 5)",
            f"{figures['list_10k_ms']}",
            f"whole response received; the client then decodes it in {figures['list_10k_decode_ms']} ms",
        ),
        (
            "watch delivery p50 / p99 ms",
            f"{figures['watch_p50_ms']} / {figures['watch_p99_ms']}",
            f"goal p99 < 50 ms, {WATCH_SAMPLES} updates at {WATCH_RATE:.0f}/s",
        ),
    ]
    title = "pilothouse bench api (unix socket, SQLite store)"
    if on_etcd is not None:
        title = "pilothouse bench api (unix socket, SQLite store; then etcd)"
        e = on_etcd.figures()
        figures.update({f"etcd_{k}": v for k, v in e.items()})
        rows += [
            ("etcd: writes/s (create+update)", f"{on_etcd.writes_per_s:,.0f}", "same load"),
            ("  creates/s, updates/s", f"{e['creates_per_s']:,.0f}, {e['updates_per_s']:,.0f}", ""),
            ("  write p50 / p99 ms", f"{e['write_p50_ms']} / {e['write_p99_ms']}", ""),
            (f"  list {n} pods ms (median of 5)", f"{e['list_10k_ms']}", "from the read cache"),
            ("  watch delivery p50 / p99 ms", f"{e['watch_p50_ms']} / {e['watch_p99_ms']}", ""),
        ]
    print_report(title, describe_machine(), rows, figures, as_json)
    return 0
