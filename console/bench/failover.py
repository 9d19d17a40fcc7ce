"""`pilothouse bench failover`: how long the cluster goes without a leader
when the leading control plane is killed.

Several `pilothouse serve` processes (with hollow nodes) share one etcd: a
throwaway etcd of its own unless `--etcd` names one. In each round the bench
first measures the baseline: a Deployment scaled up by one through a
follower, until the ReplicaSet's new pod exists (the leader's controllers at
work). Then it kills the leader (SIGKILL, by pid), scales up by one again at
once through a survivor, and measures `failover_s`: from the kill until the
new pod exists, which needs a new leader whose controllers serve the write;
and `new_leader_s`: until the Lease names a survivor. The killed control plane
is started again before the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.bench.machine import describe_machine
from console.bench.report import median, print_report
from console.bench.serve import spawn_serve, stop
from control.client import Client
from control.config import ConfigError, load_config
from control.errors import ApiError
from control.localcluster.etcd import throwaway_etcd
from control.localcluster.proc import LocalClusterError
from control.objects.coordination import lease_holder
from control.objects.kinds import DEPLOYMENT, LEASE, POD
from control.wire import LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE

HOLLOW_NODES = 2
POLL = 0.05
NAMESPACE = "default"
APP = "failover"


# The leader election's lease duration (whole seconds), renew deadline and retry period.
Timing = tuple[int, float, float]


@dataclass
class Plane:
    name: str
    data: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    client: Client | None = None

    @property
    def socket(self) -> Path:
        return self.data / "api.sock"


@dataclass
class Figures:
    failover_s: list[float] = field(default_factory=list)
    new_leader_s: list[float] = field(default_factory=list)
    baseline_s: list[float] = field(default_factory=list)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def run_bench_failover(
    control_planes: int,
    kills: int,
    etcd: str | None,
    timing: Timing,
    as_json: bool,
) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="pilothouse-bench-failover-"))
    try:
        async with _etcd(etcd, tmp) as endpoint:
            figures = await _bench(tmp, endpoint, control_planes, kills, timing)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lease, renew, retry = timing
    result: dict[str, Any] = {
        "control_planes": control_planes,
        "kills": kills,
        "lease_duration_s": lease,
        "renew_deadline_s": renew,
        "retry_period_s": retry,
        "failover_s": [round(s, 3) for s in figures.failover_s],
        "failover_median_s": round(median(figures.failover_s), 3),
        "failover_max_s": round(max(figures.failover_s, default=0.0), 3),
        "new_leader_median_s": round(median(figures.new_leader_s), 3),
        "baseline_median_s": round(median(figures.baseline_s), 3),
    }
    bound = lease + 2 * retry * 2.2
    rows = [
        (
            "failover, kill to a pod created (median)",
            f"{result['failover_median_s']:.2f} s",
            f"baseline without a kill {result['baseline_median_s']:.2f} s",
        ),
        ("failover (max)", f"{result['failover_max_s']:.2f} s", f"goal <= ~{bound:.1f} s"),
        (
            "kill to the Lease held by a survivor (median)",
            f"{result['new_leader_median_s']:.2f} s",
            f"lease duration {lease} s",
        ),
    ]
    print_report(
        f"pilothouse bench failover ({control_planes} control planes on one etcd, {kills} kills)",
        describe_machine(),
        rows,
        result,
        as_json,
    )
    return 0


async def _bench(tmp: Path, endpoint: str, count: int, kills: int, timing: Timing) -> Figures:
    planes = [Plane(f"cp-{i}", tmp / f"cp-{i}", tmp / f"cp-{i}.log") for i in range(1, count + 1)]
    figures = Figures()
    try:
        for plane in planes:
            plane.data.mkdir()
            (plane.data / "config.toml").write_text(_config(tmp, endpoint, plane.name, timing))
            try:
                load_config(None, data_dir=plane.data)  # the timings, checked as serve will
            except ConfigError as e:
                raise RuntimeError(str(e)) from None
            await _start(plane)  # one at a time: the first makes the shared CA and tokens
        first = planes[0].client
        assert first is not None
        await first.create(DEPLOYMENT, _deployment())
        replicas = 1
        await _until(lambda: _pods(first, replicas), "the first pod", 60)
        for kill in range(1, kills + 1):
            leader = await _until(lambda: _leader(planes), "a leader", 60)
            survivor = next(p for p in planes if p is not leader and p.client is not None)
            assert survivor.client is not None
            replicas += 1
            figures.baseline_s.append(await _scale_and_wait(survivor.client, replicas))
            _say(f"kill {kill}/{kills}: {leader.name} (pid {_pid(leader)})")
            assert leader.proc is not None
            os.kill(leader.proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            leader.proc.wait()
            if leader.client is not None:
                await leader.client.close()
                leader.client = None
            replicas += 1
            took, new_leader = await asyncio.gather(
                _scale_and_wait(survivor.client, replicas, since=killed),
                _until(functools.partial(_leader, planes, leader), "a new leader", 120),
            )
            figures.failover_s.append(took)
            figures.new_leader_s.append(new_leader.elected - killed)
            _say(f"  {new_leader.name} leads; a pod created {took:.2f} s after the kill")
            await _start(leader)  # back to full strength for the next round
    finally:
        for plane in planes:
            if plane.client is not None:
                await plane.client.close()
            if plane.proc is not None:
                stop(plane.proc, 15)
    return figures


def _config(tmp: Path, endpoint: str, name: str, timing: Timing) -> str:
    shared = tmp / "shared"
    lease, renew, retry = timing
    return (
        f'[store]\nbackend = "etcd"\netcd_endpoints = ["{endpoint}"]\n'
        'etcd_prefix = "/bench-failover"\n\n'
        f'[api]\npki_dir = "{shared / "pki"}"\ntokens_file = "{shared / "tokens.csv"}"\n\n'
        f"[leader_election]\nenabled = true\nlease_duration = {lease}\n"
        f"renew_deadline = {renew}\nretry_period = {retry}\n"
        f'identity = "{name}"\n'
    )


def _deployment() -> dict[str, Any]:
    labels = {"app": APP}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "pilothouse/busybox"}]},
            },
        },
    }


def _pid(plane: Plane) -> int:
    return plane.proc.pid if plane.proc is not None else -1


async def _start(plane: Plane) -> None:
    plane.socket.unlink(missing_ok=True)
    plane.proc = proc = await asyncio.to_thread(_spawn, plane)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{plane.name} exited with {proc.returncode}; see {plane.log}")
        return plane.socket.exists()

    await _until(_sync(up), f"{plane.name} to serve", 60)
    plane.client = Client(str(plane.socket))


def _spawn(plane: Plane) -> subprocess.Popen[bytes]:
    with open(plane.log, "ab") as log:
        return spawn_serve(
            plane.data,
            "--hollow-nodes",
            str(HOLLOW_NODES),
            listen="127.0.0.1:0",
            stdout=log,
            stderr=log,
        )


@dataclass(frozen=True)
class Elected:
    name: str
    elected: float


async def _leader(planes: list[Plane], killed: Plane | None = None) -> Any:
    """The plane the Lease names (an `Elected` after a kill), or None."""
    for plane in planes:
        if plane.client is None or plane is killed:
            continue
        try:
            lease = await plane.client.get(LEASE, LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE)
        except ApiError:
            return None
        holder = lease_holder(lease)
        if killed is not None:
            return Elected(holder, time.monotonic()) if holder not in ("", killed.name) else None
        return next((p for p in planes if p.name == holder and p.client is not None), None)
    return None


async def _pods(client: Client, count: int) -> bool | None:
    items = (await client.list(POD, NAMESPACE))["items"]
    return True if sum(1 for p in items if p["metadata"]["name"].startswith(APP)) >= count else None


async def _scale_and_wait(client: Client, replicas: int, since: float | None = None) -> float:
    """Scale to `replicas` and wait for the pod the ReplicaSet creates; seconds from `since`
    (default: the write)."""
    start = time.monotonic() if since is None else since
    await client.scale(DEPLOYMENT, APP, replicas, NAMESPACE)
    await _until(lambda: _pods(client, replicas), f"{replicas} pods", 120)
    return time.monotonic() - start


def _sync(check: Callable[[], bool]) -> Callable[[], Awaitable[bool | None]]:
    async def wrapped() -> bool | None:
        return True if check() else None

    return wrapped


async def _until(check: Callable[[], Awaitable[Any]], what: str, within: float) -> Any:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(OSError, ApiError):
            result = await check()
            if result is not None:
                return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(POLL)


@contextlib.asynccontextmanager
async def _etcd(endpoint: str | None, tmp: Path) -> AsyncIterator[str]:
    """`endpoint`, or a throwaway etcd on loopback (stopped after)."""
    if endpoint:
        yield endpoint
        return
    with contextlib.ExitStack() as stack:
        try:
            server = await asyncio.to_thread(stack.enter_context, throwaway_etcd(tmp / "etcd"))
        except LocalClusterError as e:
            raise RuntimeError(f"{e} (or name one with --etcd)") from None
        yield server.endpoint
