"""`pilothouse bench console`: the console at 20,000 pods.

A control plane is hosted in this process on its own thread and loop, as
`pilothouse` hosts it, with N hollow Node objects (long node-lifecycle grace
periods, so nothing is evicted mid-run). Pods are created through the API with
many requests in flight, bound to the nodes by `spec.nodeName`. Then:

- open_20k_s: from starting the app on the Pods view until all pods are rows in
  its table (headless Textual, same code path as the terminal).
- key_p99_ms: `down`/`up` keypresses for a bounded time while another client,
  on the control plane's loop, patches pod status at --rate updates/s; a press
  counts from handing the key to the app's driver (as a terminal would) until
  the table's cursor has moved; the repaint follows on the next frame.
- rss_mb: this process's RSS with the console open (it includes the hosted
  control plane; the RSS before the console opened is printed beside it).
- Attached mode, on the same data: the control plane restarted as a separate
  `pilothouse serve` process and the console opened in a fresh process of its
  own: that console's open time and RSS, and the server's RSS.

Baselines from the same run: listing all pods through the client with no UI
(pages of 5,000; the console lists by 2,000, to hold fewer whole pods at once),
and keypress latency on the same table with no updates arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from textual import events
from textual.pilot import Pilot

from console.bench.load import drive
from console.bench.machine import describe_machine, rss_mb
from console.bench.report import median, percentile, print_report
from console.tui.app import PilothouseApp
from console.tui.hosted import HostedControlPlane, socket_answers
from control.client import Client
from control.config import load_config
from control.objects import kinds

GOAL_OPEN_S = 1.0
GOAL_KEY_MS = 50.0
GOAL_RSS_MB = 300.0


def _say(message: str) -> None:
    print(f"bench console: {message}", file=sys.stderr, flush=True)


def _node(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f"hollow-{i:03d}", "labels": {"node-role.kubernetes.io/worker": ""}},
    }


def _node_status() -> dict[str, Any]:
    return {
        "status": {
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    }


def _pod(i: int, nodes: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"bench-{i:06d}",
            "namespace": f"ns-{i % 20:02d}",
            "labels": {"app": f"app-{i % 100}"},
        },
        "spec": {
            "nodeName": f"hollow-{i % nodes:03d}",
            "containers": [
                {
                    "name": "web",
                    "image": "pilothouse/busybox:latest",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


async def _until(check: Any) -> None:
    while not check():  # noqa: ASYNC110 - polling a UI attribute, there is no event to wait on
        await asyncio.sleep(0.005)


async def _populate(socket: str, pods: int, nodes: int) -> None:
    async with Client(socket) as client:
        for i in range(nodes):
            await client.create(kinds.NODE, _node(i))
            await client.patch(kinds.NODE, f"hollow-{i:03d}", _node_status(), sub="status")
        for ns in range(20):
            await client.create(
                kinds.NAMESPACE,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{ns:02d}"}},
            )
        await drive(pods, 48, lambda i: client.create(kinds.POD, _pod(i, nodes)))


async def _updates(socket: str, pods: int, rate: float, stop: asyncio.Event) -> int:
    """Patch pod status at `rate`/s until `stop`; runs on the control plane's loop."""
    sent = 0
    rng = random.Random(7)
    async with Client(socket) as client:
        t0 = time.perf_counter()
        while not stop.is_set():
            i = rng.randrange(pods)
            status = {
                "status": {
                    "phase": "Running",
                    "podIP": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                    "containerStatuses": [
                        {
                            "name": "web",
                            "ready": True,
                            "restartCount": sent,
                            "state": {"running": {}},
                        }
                    ],
                }
            }
            await client.patch(
                kinds.POD, f"bench-{i:06d}", status, f"ns-{i % 20:02d}", sub="status"
            )
            sent += 1
            delay = t0 + sent / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
    return sent


async def _press_for(app: PilothouseApp, seconds: float) -> list[float]:
    """Deliver down/up keys as the terminal driver does; time each until the cursor moved."""
    table = app.tables["pods"]
    driver = app._driver
    assert driver is not None
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        key = "down" if (n // 50) % 2 == 0 else "up"
        before = table.cursor_row
        event = events.Key(key, None)
        event.set_sender(app)
        t0 = time.perf_counter()
        driver.send_message(event)
        while table.cursor_row == before and time.perf_counter() - t0 < 5:  # noqa: ASYNC110
            await asyncio.sleep(0)
        latencies.append((time.perf_counter() - t0) * 1000)
        n += 1
        await asyncio.sleep(0.02)  # a fast typist, not a flood
    return latencies


@contextlib.asynccontextmanager
async def _opened(
    socket: str, pods: int
) -> AsyncIterator[tuple[PilothouseApp, Pilot[None], float]]:
    """The console open on the Pods view, and the seconds until every pod was a row."""
    app = PilothouseApp(lambda: Client(socket), initial_view="pods")
    t0 = time.perf_counter()
    async with app.run_test(size=(200, 50)) as pilot:
        table = app.tables["pods"]
        await _until(lambda: table.row_count >= pods)
        await pilot.pause()
        yield app, pilot, time.perf_counter() - t0


async def _open_alone(socket: str, pods: int) -> dict[str, float]:
    async with _opened(socket, pods) as (_app, _pilot, open_s):
        return {"open_s": open_s, "rss_mb": rss_mb()}


def attached_main(socket: str, pods: int) -> None:
    """The attached console, in a process of its own: prints its figures as JSON."""
    print(json.dumps(asyncio.run(_open_alone(socket, pods))), flush=True)


async def _attached(data: Path, pods: int) -> tuple[float, float, float]:
    """(open s, console RSS MB, serve RSS MB) with the control plane in `serve`."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "console", "serve", "--data-dir", str(data),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        socket = data / "api.sock"
        deadline = time.perf_counter() + 60
        while not await asyncio.to_thread(socket_answers, socket):
            if serve.returncode is not None or time.perf_counter() > deadline:
                raise RuntimeError("pilothouse serve did not start")
            await asyncio.sleep(0.1)
        code = "import sys; from console.bench.console import attached_main; attached_main(sys.argv[1], int(sys.argv[2]))"
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, str(socket), str(pods),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        out, _ = await child.communicate()
        figures = json.loads(out.decode().strip().splitlines()[-1])
        return figures["open_s"], figures["rss_mb"], rss_mb(serve.pid)
    finally:
        serve.send_signal(signal.SIGTERM)
        await serve.wait()


async def run_bench_console(
    pods: int, nodes: int, seconds: float, rate: float, as_json: bool
) -> int:
    machine = describe_machine()
    with tempfile.TemporaryDirectory(prefix="pilothouse-bench-console-") as tmp:
        data = Path(tmp)
        (data / "config.toml").write_text(
            '[api]\nlisten = ""\n\n[controllers]\n'
            "node_monitor_grace_period = 3600\npod_eviction_timeout = 3600\n"
        )
        hosted = HostedControlPlane(load_config(None, data_dir=data))
        socket = str(await asyncio.to_thread(hosted.start))
        try:
            _say(f"creating {nodes} hollow nodes and {pods} pods through the API")
            t0 = time.perf_counter()
            await _populate(socket, pods, nodes)
            create_s = time.perf_counter() - t0

            list_runs = []
            async with Client(socket) as client:
                for _ in range(3):
                    t0 = time.perf_counter()
                    got = 0
                    token = None
                    while True:
                        page = await client.list(kinds.POD, limit=5000, continue_token=token)
                        got += len(page["items"])
                        token = page["metadata"].get("continue")
                        if not token:
                            break
                    list_runs.append(time.perf_counter() - t0)
            assert got == pods, f"listed {got} pods, expected {pods}"
            _say("opening the console on the Pods view")
            rss_before = rss_mb()

            async with _opened(socket, pods) as (app, pilot, open_s):
                table = app.tables["pods"]
                rss_open = rss_mb()
                _say(f"open in {open_s:.2f} s; pressing keys, idle then under {rate:.0f} updates/s")
                idle = await _press_for(app, min(3.0, seconds))
                stop = asyncio.Event()
                updater = hosted.run_coroutine(_updates(socket, pods, rate, stop))
                busy = await _press_for(app, seconds)
                assert hosted.loop is not None
                hosted.loop.call_soon_threadsafe(stop.set)
                sent = await asyncio.wrap_future(updater)
                await pilot.pause(0.3)
                rss_end = rss_mb()
                flushes = table.flushes
        finally:
            await asyncio.to_thread(hosted.stop)
        _say("attached mode: the console in its own process, the control plane in `serve`")
        att_open, att_rss, serve_rss = await _attached(data, pods)

    list_s = median(list_runs)
    key_p99 = percentile(busy, 99)
    rss = max(rss_open, rss_end)
    rows = [
        ("pods", f"{pods}", f"on {nodes} hollow nodes, created in {create_s:.1f} s ({pods / create_s:.0f}/s)"),
        ("open Pods view, all rows in", f"{open_s:.2f} s", f"baseline: client list of all pods {list_s:.2f} s; goal < {GOAL_OPEN_S:.0f} s"),
        (f"key p99 at {rate:.0f} updates/s", f"{key_p99:.1f} ms", f"baseline: idle p99 {percentile(idle, 99):.1f} ms; goal < {GOAL_KEY_MS:.0f} ms"),
        ("key p50 / max", f"{percentile(busy, 50):.1f} ms", f"max {max(busy, default=0):.1f} ms over {len(busy)} presses in {seconds:.0f} s"),
        ("updates applied", f"{sent}", f"{sent / seconds:.0f}/s, in {flushes} table flushes"),
        ("RSS, console open", f"{rss:.0f} MB", f"baseline: {rss_before:.0f} MB before the console opened (hosted control plane in this process); goal < {GOAL_RSS_MB:.0f} MB"),
        ("attached: open Pods view", f"{att_open:.2f} s", "console in its own process, control plane in `pilothouse serve`"),
        ("attached: RSS, console alone", f"{att_rss:.0f} MB", f"the serve process beside it: {serve_rss:.0f} MB"),
    ]  # fmt: skip
    figures = {
        "pods": pods,
        "open_20k_s": round(open_s, 3),
        "list_baseline_s": round(list_s, 3),
        "key_p99_ms": round(key_p99, 2),
        "key_p50_ms": round(percentile(busy, 50), 2),
        "key_idle_p99_ms": round(percentile(idle, 99), 2),
        "updates_per_s": round(sent / seconds, 1),
        "rss_mb": round(rss, 1),
        "rss_before_console_mb": round(rss_before, 1),
        "attached_open_s": round(att_open, 3),
        "attached_console_rss_mb": round(att_rss, 1),
        "attached_serve_rss_mb": round(serve_rss, 1),
    }
    print_report("bench console", machine, rows, figures, as_json)
    return 0
