"""`pilothouse bench load`: the API server's memory under a repeated, bounded mix.

It starts a throwaway `pilothouse serve` (unix socket, and TLS on a loopback
port) and, for `--duration` seconds, runs at once:
- `--clients` clients (50 by default), each with a connection of its own to
  the unix socket, each repeating create, get, patch, list and delete of a
  ConfigMap of its own, and every few cycles a watch abandoned after its
  first event;
- and rounds of:
  - stalled watchers: watches that read nothing while 1 MB ConfigMaps are
    written and deleted; the server must cut each at its byte bound;
  - idle connections: TCP connections to the TLS port that never handshake,
    and TLS connections that never send a request; the server must close them;
  - every few rounds, a cap probe: one watch more than the per-user cap, over
    TLS; its 429 is counted apart.

The server's RSS is sampled every 5 s. The figures: the clients' `ops_per_s`
and `p99_ms`, `errors` (must be 0), `probe_429s`, and `rss_growth_mb`, the
median RSS of the last minute minus the first's (must be at most 50). The
baseline is the idle server's RSS before the load, in the same run. All
traffic goes to loopback; every loop is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.bench.machine import describe_machine, rss_mb
from console.bench.report import median, percentile, print_report
from console.bench.serve import spawn_serve, stop
from control.client import Client
from control.kubeconfig import client_ssl_context, read_kubeconfig
from control.objects.kinds import CONFIGMAP, NAMESPACE

# The serve under load: default limits, but deadlines short enough that the
# idle connections of one round are closed within it, and a small watch cap
# for cheap probes.
CONFIG = """
[api.limits]
max_watches_per_user = 20
handshake_timeout = "3s"
header_timeout = "3s"
idle_timeout = "10s"
"""
WATCH_CAP = 20
STALL_TIMEOUT = 2.0  # the default watch_stall_timeout
CLOSE_WITHIN = 3.0 + 5.0  # a deadline above, and slack for a busy machine
BIG = "soak-big"  # the namespace the big ConfigMaps are written in
CLIENTS = 50
WATCH_EVERY = 10  # a client's cycles between abandoned watches
MAX_CYCLES = 1_000_000  # per client
OP_LIMIT = 30.0  # seconds one request may take
BASELINE_S = 5.0  # one client alone, before the load
STALLED = 3  # watchers that read nothing per round
BIG_OBJECTS = 12  # 1 MB ConfigMaps per round: 12 MB against an 8 MiB bound
NO_HANDSHAKE = 10  # TCP connections per round that never start TLS
NO_REQUEST = 5  # TLS connections per round that never send a request
PROBE_EVERY = 5  # rounds between cap probes
ROUND_LIMIT = 90.0  # seconds one round may take
MAX_ROUNDS = 10_000
SAMPLE_EVERY = 5.0
MINUTE = 60.0


@dataclass
class Tally:
    """What the load did (counts by name), the clients' request latencies,
    and what went wrong (counted; the first few kept)."""

    counts: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    first_errors: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.counts["errors"] += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(what)


@dataclass(frozen=True)
class Target:
    socket: Path
    host: str
    port: int
    ca_pem: bytes | None
    token: str


def _configmap(name: str, size: int = 200) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"bench": "load"}},
        "data": {"payload": "x" * size},
    }


def _watch_request(namespace: str, token: str = "") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"GET /api/v1/namespaces/{namespace}/configmaps?watch=1 HTTP/1.1\r\n"
        f"Host: localhost\r\n{auth}\r\n"
    ).encode()


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes the connection within `within` seconds
    (what it still sends is read and dropped)."""
    try:
        async with asyncio.timeout(within):
            with contextlib.suppress(ConnectionError, OSError):
                while await reader.read(1 << 20):
                    pass
    except TimeoutError:
        return False
    return True


async def _client(socket: Path, number: int, end: float, tally: Tally) -> None:
    """One client's cycles until `end`: CRUD of a ConfigMap of its own, a list,
    and every WATCH_EVERY cycles a watch abandoned after its first event."""
    name = f"load-{number:03d}"
    patch = {"metadata": {"annotations": {"bench": "load"}}}
    async with Client(str(socket)) as client:
        requests: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("create", lambda: client.create(CONFIGMAP, _configmap(name))),
            ("get", lambda: client.get(CONFIGMAP, name, "default")),
            ("patch", lambda: client.patch(CONFIGMAP, name, patch, "default")),
            ("list", lambda: client.list(CONFIGMAP, "default", limit=100)),
            ("delete", lambda: client.delete(CONFIGMAP, name, "default")),
        ]
        for cycle in range(MAX_CYCLES):
            if time.monotonic() >= end:
                return
            for op, request in requests:
                t0 = time.perf_counter()
                try:
                    async with asyncio.timeout(OP_LIMIT):
                        await request()
                except Exception as e:
                    tally.error(f"{op} {name}: {e!r}")
                    continue
                tally.latencies_ms.append((time.perf_counter() - t0) * 1000)
                tally.counts["requests"] += 1
            if cycle % WATCH_EVERY == number % WATCH_EVERY:
                await _abandoned_watch(client, tally)


async def _abandoned_watch(client: Client, tally: Tally) -> None:
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                async for _ in client.watch(CONFIGMAP, "default"):
                    break
        tally.counts["abandoned"] += 1
    except Exception as e:
        tally.error(f"abandoned watch: {e!r}")


async def _stalled_watchers(client: Client, target: Target, round_no: int, tally: Tally) -> None:
    conns = [await asyncio.open_unix_connection(str(target.socket)) for _ in range(STALLED)]
    try:
        for reader, writer in conns:
            writer.write(_watch_request(BIG))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLOSE_WITHIN)
            if not head.startswith(b"HTTP/1.1 200"):
                tally.error(f"stalled watcher: {head.splitlines()[0]!r}")
        names = [f"big-{round_no % 2}-{i:02d}" for i in range(BIG_OBJECTS)]
        for name in names:
            await client.create(CONFIGMAP, _configmap(name, 1_000_000), BIG)
        for name in names:
            await client.delete(CONFIGMAP, name, BIG)
        await asyncio.sleep(STALL_TIMEOUT + 0.5)
        for reader, _ in conns:
            if await _closed_by_server(reader, CLOSE_WITHIN):
                tally.counts["stalled_cut"] += 1
            else:
                tally.error("a stalled watcher was not cut")
    except Exception as e:
        tally.error(f"stalled watchers: {e!r}")
    finally:
        for _, writer in conns:
            writer.close()


async def _idle_connections(target: Target, tally: Tally) -> None:
    ssl = client_ssl_context(target.ca_pem)

    async def one(handshake: bool) -> None:
        reader, writer = await asyncio.open_connection(
            target.host,
            target.port,
            ssl=ssl if handshake else None,
            server_hostname=target.host if handshake else None,
        )
        try:
            if await _closed_by_server(reader, CLOSE_WITHIN):
                tally.counts["idle_closed"] += 1
            else:
                tally.error(f"an idle connection (handshake={handshake}) was not closed")
        finally:
            writer.close()

    try:
        await asyncio.gather(
            *(one(False) for _ in range(NO_HANDSHAKE)), *(one(True) for _ in range(NO_REQUEST))
        )
    except Exception as e:
        tally.error(f"idle connections: {e!r}")


async def _cap_probe(target: Target, tally: Tally) -> None:
    """WATCH_CAP watches over TLS with one token, then one more: a 429."""
    ssl = client_ssl_context(target.ca_pem)
    writers: list[asyncio.StreamWriter] = []
    try:
        for i in range(WATCH_CAP + 1):
            reader, writer = await asyncio.open_connection(
                target.host, target.port, ssl=ssl, server_hostname=target.host
            )
            writers.append(writer)
            writer.write(_watch_request("default", target.token))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLOSE_WITHIN)
            code = int(head.split()[1])
            if code == 429 and i == WATCH_CAP:
                tally.counts["probe_429s"] += 1
            elif code != 200 or i == WATCH_CAP:
                tally.error(f"cap probe: watch {i + 1} answered {code}")
    except Exception as e:
        tally.error(f"cap probe: {e!r}")
    finally:
        for writer in writers:
            writer.close()


async def _sample(pid: int, samples: list[tuple[float, float]]) -> None:
    t0 = time.monotonic()
    while True:
        samples.append((time.monotonic() - t0, rss_mb(pid)))
        await asyncio.sleep(SAMPLE_EVERY)


async def _wait_serving(data: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not ((data / "kubeconfig").exists() and (data / "api.sock").exists()):
        if proc.poll() is not None:
            raise RuntimeError(f"pilothouse serve exited early with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError("pilothouse serve did not come up within 60 s")
        await asyncio.sleep(0.1)


async def _rounds(target: Target, end: float, tally: Tally) -> int:
    """Rounds of stalled watchers, idle connections and cap probes until `end`."""
    rounds = 0
    async with Client(str(target.socket)) as client:
        await client.create(
            NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BIG}}
        )
        while time.monotonic() < end and rounds < MAX_ROUNDS:
            parts = [
                _stalled_watchers(client, target, rounds, tally),
                _idle_connections(target, tally),
            ]
            if rounds % PROBE_EVERY == 0:
                parts.append(_cap_probe(target, tally))
            try:
                async with asyncio.timeout(ROUND_LIMIT):
                    await asyncio.gather(*parts)
            except TimeoutError:
                tally.error(f"round {rounds} took over {ROUND_LIMIT:.0f} s")
            rounds += 1
    return rounds


async def _load(target: Target, clients: int, duration: float, tally: Tally) -> int:
    end = time.monotonic() + duration
    rounds, _ = await asyncio.gather(
        _rounds(target, end, tally),
        asyncio.gather(*(_client(target.socket, c, end, tally) for c in range(clients))),
    )
    return rounds


async def run_bench_load(duration: float, as_json: bool, clients: int = CLIENTS) -> int:
    tally = Tally()
    alone = Tally()
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="pilothouse-bench-") as tmp_name:
        data = Path(tmp_name) / "data"
        data.mkdir()
        (data / "config.toml").write_text(CONFIG)
        proc = spawn_serve(data, stderr=subprocess.DEVNULL, listen="127.0.0.1:0")
        try:
            await _wait_serving(data, proc)
            kubeconfig = read_kubeconfig(data / "kubeconfig")
            host, _, port = kubeconfig.server.removeprefix("https://").rpartition(":")
            target = Target(
                data / "api.sock", host, int(port), kubeconfig.ca_pem, kubeconfig.token or ""
            )
            await asyncio.sleep(2)
            rss_idle = rss_mb(proc.pid)
            print(
                f"baseline: one client alone for {min(BASELINE_S, duration):.0f} s ...",
                file=sys.stderr,
            )
            t0 = time.monotonic()
            await _client(target.socket, clients, t0 + min(BASELINE_S, duration), alone)
            alone_s = time.monotonic() - t0
            print(f"load: {clients} clients for {duration:.0f} s ...", file=sys.stderr)
            sampler = asyncio.create_task(_sample(proc.pid, samples))
            t0 = time.monotonic()
            try:
                rounds = await _load(target, clients, duration, tally)
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            took = time.monotonic() - t0
            samples.append((took, rss_mb(proc.pid)))
        finally:
            stop(proc, 15)

    window = min(MINUTE, took / 3)
    first = median([rss for t, rss in samples if t <= window])
    last = median([rss for t, rss in samples if t >= took - window])
    growth = last - first
    errors = tally.counts["errors"] + alone.counts["errors"]
    passed = not errors and growth <= 50
    ops_per_s = tally.counts["requests"] / took
    alone_ops_per_s = alone.counts["requests"] / alone_s
    p99 = percentile(tally.latencies_ms, 99)
    alone_p99 = percentile(alone.latencies_ms, 99)
    figures = {
        "duration_s": round(took, 1),
        "clients": clients,
        "ops_per_s": round(ops_per_s, 1),
        "p50_ms": round(percentile(tally.latencies_ms, 50), 2),
        "p99_ms": round(p99, 2),
        "baseline_one_client_ops_per_s": round(alone_ops_per_s, 1),
        "baseline_one_client_p99_ms": round(alone_p99, 2),
        "rounds": rounds,
        "requests": tally.counts["requests"],
        "watches_abandoned": tally.counts["abandoned"],
        "stalled_watchers_cut": tally.counts["stalled_cut"],
        "idle_connections_closed": tally.counts["idle_closed"],
        "probe_429s": tally.counts["probe_429s"],
        "errors": errors,
        "first_errors": (alone.first_errors + tally.first_errors)[:5],
        "rss_first_minute_mb": round(first, 1),
        "rss_last_minute_mb": round(last, 1),
        "rss_max_mb": round(max(rss for _, rss in samples), 1),
        "rss_growth_mb": round(growth, 1),
        "baseline_rss_idle_mb": round(rss_idle, 1),
        "passed": passed,
    }
    rows = [
        (
            "requests/s",
            f"{ops_per_s:,.0f} ({clients} clients)",
            f"one client alone {alone_ops_per_s:,.0f}",
        ),
        ("request p99 ms", f"{p99:.1f}", f"one client alone {alone_p99:.1f}"),
        ("requests (duration)", f"{tally.counts['requests']:,} ({took:.0f} s)", ""),
        ("watches abandoned", str(tally.counts["abandoned"]), f"one per {WATCH_EVERY} cycles"),
        ("rounds", str(rounds), "of stalled watchers and idle connections"),
        ("stalled watchers cut", str(tally.counts["stalled_cut"]), f"{STALLED} per round"),
        (
            "idle connections closed",
            str(tally.counts["idle_closed"]),
            f"{NO_HANDSHAKE + NO_REQUEST} per round",
        ),
        (
            "cap probes' 429s",
            str(tally.counts["probe_429s"]),
            f"one per probe, every {PROBE_EVERY} rounds",
        ),
        ("errors", str(errors), "goal 0"),
        (
            "RSS first / last minute MB",
            f"{first:.1f} / {last:.1f}",
            f"idle server before the load {rss_idle:.1f} MB",
        ),
        ("RSS growth MB", f"{growth:+.1f}", "goal <= 50"),
    ]
    print_report(
        "pilothouse bench load (API server memory under a repeated mix)",
        describe_machine(),
        rows,
        figures,
        as_json,
    )
    return 0 if passed else 1
