"""`pilothouse bench pods`: pods started on real nodes, from the API to Running.

By default it brings up a throwaway local cluster (`pilothouse up`, real
sshd, containerd and agents in network namespaces) with a cluster name,
subnets and data dir of its own, and always takes it down again. With
`--use-current` or `--server` it runs against an existing cluster instead,
and creates (then deletes) only a namespace of its own.

One watch on that namespace timestamps every pod event as the client sees
it. Measures:

- single-pod startup: `--samples` pods created one at a time, each timed from
  its create call to the watch event that shows it Running with its Ready
  condition True (the pods have no readiness probe), split into create ->
  scheduled (the event that shows `spec.nodeName`) and scheduled -> Running
  and Ready. Each pod is deleted, and gone, before the next is created;
- scale: a Deployment at 0 replicas is scaled to `--replicas`, timed from the
  scale call to the event that shows the last replica Running and Ready.

Baselines from the same run:
- the API floor: pods that name another scheduler, timed from create to their
  watch event (what a write plus watch delivery costs);
- the CRI floor: RunPodSandbox, then CreateContainer and StartContainer for the
  same image, straight on one node's containerd (`python3 -m agent.crifloor`);
  only when the node's containerd socket is on this machine (a local cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.bench.machine import describe_machine
from console.bench.report import percentile, print_report
from control.client import Client
from control.errors import ApiError
from control.objects.kinds import DEPLOYMENT, NAMESPACE, NODE, POD

IMAGE = "pilothouse/busybox:latest"
# Sleeps, and ends at once on SIGTERM (PID 1 ignores signals it has no handler for).
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
OTHER_SCHEDULER = "bench-no-scheduler"
K8S_SLO_P99_MS = 5000.0  # Kubernetes: pod startup p99 <= 5 s
GOAL_P99_MS = 1000.0
NODES_READY_WITHIN = 120.0
POD_WITHIN = 60.0  # one pod to Running and Ready, or to be gone
CLEANUP_WITHIN = 120.0

Say = Callable[[str], None]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- what the watch saw --------------------------------------------------------


@dataclass
class Seen:
    """When the client saw each state of one pod (perf_counter seconds)."""

    added: float = 0.0
    scheduled: float = 0.0
    running: float = 0.0
    ready: float = 0.0
    deleted: float = 0.0


def _is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


@dataclass
class PodWatch:
    """Timestamps every pod event in one namespace, keyed by pod name."""

    client: Client
    namespace: str
    seen: dict[str, Seen] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    error: BaseException | None = None

    async def start(self) -> None:
        listed = await self.client.list(POD, self.namespace, limit=1)
        rv = listed["metadata"]["resourceVersion"]
        self.task = asyncio.create_task(self._run(rv), name="bench pods watch")

    async def _run(self, rv: str) -> None:
        try:
            async for kind, obj in self.client.watch(POD, self.namespace, resource_version=rv):
                now = time.perf_counter()
                meta = obj.get("metadata") or {}
                s = self.seen.setdefault(str(meta.get("name")), Seen())
                self.labels[str(meta.get("name"))] = dict(meta.get("labels") or {})
                s.added = s.added or now
                if kind == "DELETED":
                    s.deleted = s.deleted or now
                elif (obj.get("spec") or {}).get("nodeName"):
                    s.scheduled = s.scheduled or now
                    if (obj.get("status") or {}).get("phase") == "Running":
                        s.running = s.running or now
                    if _is_ready(obj):
                        s.ready = s.ready or now
                self.changed.set()
        except Exception as e:  # surfaced by wait_for
            self.error = e
            self.changed.set()

    async def wait_for(self, done: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not done():
            if self.error is not None:
                raise RuntimeError(f"the pod watch failed: {self.error}") from self.error
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"timed out after {within:.0f} s waiting for {what}")
            self.changed.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a Ctrl-C.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self.changed.wait()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


# -- objects ---------------------------------------------------------------------


def _pod_spec(scheduler: str | None = None) -> dict[str, Any]:
    # A graceful delete (not grace 0, which the API server does at once) returns
    # only after the agent stopped the pod and removed its sandbox, so that the
    # next sample does not share the node with the last one's teardown.
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 10,
        "containers": [
            {
                "name": "app",
                "image": IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": COMMAND,
                "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}},
            }
        ],
    }
    if scheduler:
        spec["schedulerName"] = scheduler
    return spec


def _pod(name: str, namespace: str, scheduler: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "single"}},
        "spec": _pod_spec(scheduler),
    }


def _deployment(name: str, namespace: str) -> dict[str, Any]:
    labels = {"bench": "scale"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": _pod_spec()},
        },
    }


# -- measurements ----------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _p(samples: list[float], q: float) -> float:
    return round(percentile(samples, q), 1)


async def _delete_and_wait(client: Client, w: PodWatch, name: str) -> None:
    with contextlib.suppress(ApiError):
        await client.delete(POD, name, w.namespace)
    await w.wait_for(
        lambda: w.seen.get(name, Seen()).deleted > 0, POD_WITHIN, f"pod {name} to be deleted"
    )


async def measure_api_floor(client: Client, w: PodWatch, samples: int) -> list[float]:
    """Create -> watch event, in ms, for pods that nothing schedules."""
    out: list[float] = []
    for i in range(samples):
        name = f"api-floor-{i}"
        t0 = time.perf_counter()
        await client.create(POD, _pod(name, w.namespace, OTHER_SCHEDULER))
        # The ignore: mypy cannot type a lambda with a default, which binds the loop's name (B023).
        await w.wait_for(lambda n=name: n in w.seen, POD_WITHIN, f"pod {name} to be seen")  # type: ignore[misc]
        out.append(_ms(w.seen[name].added - t0))
        await _delete_and_wait(client, w, name)
    return out


@dataclass
class Startup:
    total_ms: list[float] = field(default_factory=list)  # create -> Running and Ready
    scheduled_ms: list[float] = field(default_factory=list)  # create -> nodeName seen
    node_ms: list[float] = field(default_factory=list)  # nodeName seen -> Running and Ready
    cri: list[dict[str, float]] = field(default_factory=list)  # the CRI floor, interleaved


async def measure_startup(
    client: Client, w: PodWatch, samples: int, say: Say, floor: CriFloor | None
) -> Startup:
    """Pods one at a time; with a floor, each pod follows one bare CRI pod, so
    that both see the same load on a shared machine."""
    out = Startup()
    for i in range(samples):
        if floor is not None:
            out.cri += (await floor.round(1))[1]
        name = f"startup-{i}"
        t0 = time.perf_counter()
        await client.create(POD, _pod(name, w.namespace))
        await w.wait_for(
            # The ignore: as in measure_api_floor.
            lambda n=name: w.seen.get(n, Seen()).ready > 0,  # type: ignore[misc]
            POD_WITHIN,
            f"pod {name} to be Running and Ready",
        )
        s = w.seen[name]
        out.total_ms.append(_ms(s.ready - t0))
        out.scheduled_ms.append(_ms(s.scheduled - t0))
        out.node_ms.append(_ms(s.ready - s.scheduled))
        say(f"  {name}: {out.total_ms[-1]:.0f} ms (scheduled after {out.scheduled_ms[-1]:.0f})")
        await _delete_and_wait(client, w, name)
    return out


@dataclass
class Scale:
    seconds: float  # scale call -> the last replica seen Running and Ready
    scheduled_seconds: float  # scale call -> the last replica seen scheduled


async def measure_scale(client: Client, w: PodWatch, replicas: int) -> Scale:
    name = "scale"
    await client.create(DEPLOYMENT, _deployment(name, w.namespace))
    # The Deployment controller makes its ReplicaSet (at 0) first; give it a moment
    # so that the scale below times pods, not the ReplicaSet's creation.
    await _settle(client, w.namespace, name)
    t0 = time.perf_counter()
    await client.scale(DEPLOYMENT, name, replicas, w.namespace)

    def scaled() -> list[Seen]:
        return [
            s
            for n, s in w.seen.items()
            if w.labels.get(n, {}).get("bench") == "scale" and s.ready and not s.deleted
        ]

    await w.wait_for(
        lambda: len(scaled()) >= replicas,
        60 + 2 * replicas,
        f"{replicas} replicas to be Running and Ready",
    )
    ready = scaled()
    return Scale(
        seconds=round(max(s.ready for s in ready) - t0, 3),
        scheduled_seconds=round(max(s.scheduled for s in ready) - t0, 3),
    )


async def _settle(client: Client, namespace: str, deployment: str, within: float = 30.0) -> None:
    """Until the Deployment's status shows the controller has seen it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        d = await client.get(DEPLOYMENT, deployment, namespace)
        if (d.get("status") or {}).get("observedGeneration"):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the Deployment controller did not pick up {deployment} in {within:.0f} s")


class CriFloor:
    """`python3 -m agent.crifloor` on one node's containerd, started once and
    asked for one round at a time: N pods at once, straight on CRI, with the
    same sandbox and container configs the agent makes."""

    def __init__(self, socket: Path, cgroup_parent: str) -> None:
        self.socket = socket
        self.cgroup_parent = cgroup_parent
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "agent.crifloor",
            "--containerd-socket",
            str(self.socket),
            "--image",
            IMAGE,
            "--cgroup-parent",
            self.cgroup_parent,
            "--command-json",
            json.dumps(COMMAND),
        ]
        self.proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def round(self, pods: int) -> tuple[float, list[dict[str, float]]]:
        """(wall ms, per-pod figures) for `pods` pods started at once."""
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"{pods}\n".encode())
        await proc.stdin.drain()
        async with asyncio.timeout(30 + 5 * pods):
            line = await proc.stdout.readline()
        if not line:
            err = await proc.stderr.read() if proc.stderr else b""
            raise RuntimeError(f"agent.crifloor failed: {err.decode(errors='replace').strip()}")
        result = json.loads(line)
        return float(result["wall_ms"]), list(result["samples"])

    async def stop(self) -> None:
        """EOF ends it; it removes what it made first. Killed if it does not end."""
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            async with asyncio.timeout(30):
                await proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise


async def _wait_nodes_ready(client: Client, want: int, within: float) -> int:
    deadline = time.monotonic() + within
    while True:
        nodes = (await client.list(NODE))["items"]
        ready = sum(
            1
            for n in nodes
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (n.get("status") or {}).get("conditions") or []
            )
            and not (n.get("spec") or {}).get("unschedulable")
        )
        if ready >= want:
            return ready
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ready} nodes Ready after {within:.0f} s, wanted {want}")
        await asyncio.sleep(0.2)


# -- where it runs -----------------------------------------------------------------


@dataclass
class Target:
    client: Client
    nodes_wanted: int
    data_dir: Path | None  # a local cluster's data dir: its nodes' containerd is here


async def _taken_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    from control.localcluster.proc import run

    nets = []
    for line in (await run(["ip", "-o", "-4", "addr", "show"])).splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.ip_network(parts[parts.index("inet") + 1], strict=False))
    for line in (await run(["ip", "-4", "route", "show"])).splitlines():
        dst = line.split()[0] if line.split() else ""
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.ip_network(dst, strict=False))
    return nets


async def _free_ranges() -> tuple[str, str]:
    """A node subnet and a pod CIDR that nothing on this host uses."""
    taken = await _taken_networks()
    for _ in range(50):
        r = secrets.randbelow(100)
        node_subnet = ipaddress.ip_network(f"172.31.{100 + r}.0/24")
        pod_cidr = ipaddress.ip_network(f"10.{150 + r}.0.0/16")
        if not any(node_subnet.overlaps(t) or pod_cidr.overlaps(t) for t in taken):
            return str(node_subnet), str(pod_cidr)
    raise RuntimeError("no free 172.31.1xx.0/24 and 10.1xx.0.0/16 ranges on this host")


async def _stop_leftovers(marker: str) -> list[int]:
    """Stop processes whose command line names `marker`, this run's own temp dir
    (so they are this run's); returns their pids. A safety net: `down` stops
    what it started, but a daemon that `up` took for gone (it did, under heavy
    load, before start_daemon waited for the exec to finish) would outlive it."""
    from control.localcluster.proc import cmdline, stop_pid

    pids = [
        int(e.name)
        for e in os.scandir("/proc")
        if e.name.isdigit()
        and int(e.name) != os.getpid()
        and any(marker in a for a in cmdline(int(e.name)))
    ]
    return [pid for pid in pids if await stop_pid(pid, marker)]


@contextlib.asynccontextmanager
async def throwaway_cluster(nodes: int, say: Say) -> AsyncIterator[Target]:
    """A local cluster of its own; always taken down, also on errors and Ctrl-C."""
    from control.localcluster.cluster import down, up

    tmp = Path(tempfile.mkdtemp(prefix="pilothouse-bench-pods-"))
    data = tmp / "home"
    cluster = "bp" + secrets.token_hex(3)
    removed = False
    try:
        node_subnet, pod_cidr = await _free_ranges()
        say(f"local cluster {cluster}: {nodes} nodes, {node_subnet}, pods {pod_cidr}, in {data}")
        t0 = time.perf_counter()
        await up(
            nodes,
            data,
            cluster=cluster,
            node_subnet=node_subnet,
            pod_cidr=pod_cidr,
            api_listen="",
            serve_command=(sys.executable, "-m", "console", "serve", "--data-dir", str(data)),
            progress=say,
        )
        say(f"local cluster {cluster}: up in {time.perf_counter() - t0:.1f} s")
        async with Client(str(data / "api.sock")) as client:
            yield Target(client, nodes, data)
    finally:
        try:
            await down(data, progress=say)
            removed = True
        finally:
            for pid in await _stop_leftovers(str(tmp)):
                say(f"warning: stopped pid {pid}, left running in {tmp} after `down`")
            if removed:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                say(f"cluster {cluster} not fully removed: pilothouse down --data-dir {data}")


@contextlib.asynccontextmanager
async def current_cluster(server: str | None, kubeconfig: str | None) -> AsyncIterator[Target]:
    from console.cli.target import make_client
    from control.config import default_data_dir
    from control.localcluster.cluster import read_state

    data: Path | None = None
    if not server and not kubeconfig:
        d = default_data_dir()
        data = d if read_state(d) is not None else None
    async with make_client(server, kubeconfig) as client:
        yield Target(client, 1, data)


def _cri_targets(data_dir: Path) -> list[tuple[Path, str]]:
    """(containerd socket, cgroup parent) of each node of the local cluster in data_dir."""
    from control.localcluster.cluster import Layout, read_state

    state = read_state(data_dir)
    if state is None:
        return []
    lay = Layout(data_dir)
    found = [(lay.node(n.name).socket, n.cgroup_parent) for _, n in sorted(state.nodes.items())]
    return [(sock, cg) for sock, cg in found if sock.is_socket()]


# -- the run -----------------------------------------------------------------------


async def _bench(target: Target, replicas: int, samples: int, say: Say) -> dict[str, Any]:
    client = target.client
    ready_nodes = await _wait_nodes_ready(client, target.nodes_wanted, NODES_READY_WITHIN)
    say(f"{ready_nodes} nodes Ready")
    where = _cri_targets(target.data_dir) if target.data_dir else []
    floors = [CriFloor(sock, cg) for sock, cg in where]
    cri_scale_ms: float | None = None
    ns = f"bench-pods-{secrets.token_hex(3)}"
    await client.create(
        NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    w = PodWatch(client, ns)
    try:
        for f in floors:
            await f.start()
        await w.start()
        say(f"API floor: {samples} pods that nothing schedules ...")
        api = await measure_api_floor(client, w, samples)
        also = f", each after one straight on {where[0][0]}" if floors else ""
        say(f"startup: {samples} pods, one at a time{also} ...")
        startup = await measure_startup(client, w, samples, say, floors[0] if floors else None)
        if floors:
            per_node = -(-replicas // len(floors))
            say(f"CRI floor: {per_node} pods at once on each of {len(floors)} nodes ...")
            rounds = await asyncio.gather(*(f.round(per_node) for f in floors))
            cri_scale_ms = max(wall for wall, _ in rounds)
        say(f"scale: a Deployment from 0 to {replicas} ...")
        scale = await measure_scale(client, w, replicas)
    finally:
        await w.stop()
        for f in floors:
            with contextlib.suppress(Exception):
                await f.stop()
        with contextlib.suppress(Exception):
            await client.delete(NAMESPACE, ns)
    cri = startup.cri
    # What the cluster adds to the bare CRI calls, pod by pod (each pair ran back to back).
    overhead = [n - c["total_ms"] for n, c in zip(startup.node_ms, cri, strict=False)]
    figures: dict[str, Any] = {
        "nodes": ready_nodes,
        "replicas": replicas,
        "samples": samples,
        "scale30_s": scale.seconds,
        "scale_scheduled_s": scale.scheduled_seconds,
        "startup_p50_ms": _p(startup.total_ms, 50),
        "startup_p99_ms": _p(startup.total_ms, 99),
        "startup_max_ms": max(startup.total_ms),
        "scheduled_p50_ms": _p(startup.scheduled_ms, 50),
        "scheduled_p99_ms": _p(startup.scheduled_ms, 99),
        "node_p50_ms": _p(startup.node_ms, 50),
        "node_p99_ms": _p(startup.node_ms, 99),
        "api_floor_p50_ms": _p(api, 50),
        "api_floor_p99_ms": _p(api, 99),
        "cri_floor_p50_ms": _p([s["total_ms"] for s in cri], 50) if cri else None,
        "cri_floor_p99_ms": _p([s["total_ms"] for s in cri], 99) if cri else None,
        "cri_sandbox_p50_ms": _p([s["sandbox_ms"] for s in cri], 50) if cri else None,
        "cri_container_p50_ms": (
            _p([s["create_ms"] + s["start_ms"] for s in cri], 50) if cri else None
        ),
        "overhead_p50_ms": _p(overhead, 50) if cri else None,
        "overhead_p99_ms": _p(overhead, 99) if cri else None,
        "cri_scale_s": round(cri_scale_ms / 1000, 3) if cri_scale_ms is not None else None,
        "slo_p99_ms": K8S_SLO_P99_MS,
        "goal_p99_ms": GOAL_P99_MS,
    }
    return figures


def _rows(f: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = [
        (
            f"scale 0 -> {f['replicas']}, all Running and Ready",
            f"{f['scale30_s']:.2f} s",
            f"{f['nodes']} nodes; all scheduled after {f['scale_scheduled_s']:.2f} s",
        ),
    ]
    if f["cri_scale_s"] is not None:
        rows.append(
            (
                "  baseline: the same pods straight on CRI",
                f"{f['cri_scale_s']:.2f} s",
                "each node's share started at once on its containerd, all nodes together",
            )
        )
    rows += [
        (
            "pod startup p50 / p99",
            f"{f['startup_p50_ms']:.0f} / {f['startup_p99_ms']:.0f} ms",
            f"Kubernetes SLO p99 <= {K8S_SLO_P99_MS / 1000:.0f} s; goal p99 <= "
            f"{GOAL_P99_MS / 1000:.0f} s ({f['samples']} pods, create -> watch shows Running+Ready)",
        ),
        (
            "  create -> scheduled p50 / p99",
            f"{f['scheduled_p50_ms']:.0f} / {f['scheduled_p99_ms']:.0f} ms",
            "API write, scheduler, bind, watch",
        ),
        (
            "  scheduled -> Running+Ready p50 / p99",
            f"{f['node_p50_ms']:.0f} / {f['node_p99_ms']:.0f} ms",
            "node link, agent, CRI, status write, watch",
        ),
        (
            "baseline: API create -> watch p50 / p99",
            f"{f['api_floor_p50_ms']:.0f} / {f['api_floor_p99_ms']:.0f} ms",
            "same pods, named for another scheduler",
        ),
    ]
    if f["cri_floor_p50_ms"] is not None:
        rows.append(
            (
                "baseline: CRI floor p50 / p99",
                f"{f['cri_floor_p50_ms']:.0f} / {f['cri_floor_p99_ms']:.0f} ms",
                f"RunPodSandbox {f['cri_sandbox_p50_ms']:.0f} ms + Create/StartContainer "
                f"{f['cri_container_p50_ms']:.0f} ms (p50), one node's containerd",
            )
        )
        rows.append(
            (
                "  scheduled -> Running+Ready minus CRI floor",
                f"{f['overhead_p50_ms']:.0f} / {f['overhead_p99_ms']:.0f} ms",
                "p50 / p99 of each pod minus the bare CRI pod just before it: "
                "node link, agent, status write, watch",
            )
        )
    else:
        rows.append(("baseline: CRI floor", "n/a", "the nodes' containerd is not on this machine"))
    rows.append(
        ("load average (1 min) before / after", f"{f['load_before']} / {f['load_after']}", "")
    )
    return rows


async def run_bench_pods(
    *,
    nodes: int,
    replicas: int,
    samples: int,
    use_current: bool,
    server: str | None,
    kubeconfig: str | None,
    as_json: bool,
    say: Say = _say,
) -> int:
    if nodes < 1 or replicas < 1 or samples < 1:
        raise ValueError("--nodes, --replicas and --samples must be positive")
    load_before = round(os.getloadavg()[0], 2)
    existing = use_current or server or kubeconfig
    target_cm = current_cluster(server, kubeconfig) if existing else throwaway_cluster(nodes, say)
    async with target_cm as target:
        figures = await _bench(target, replicas, samples, say)
    figures["load_before"] = load_before
    figures["load_after"] = round(os.getloadavg()[0], 2)
    figures["cluster"] = "current" if existing else "throwaway local"
    print_report(
        f"pilothouse bench pods ({figures['cluster']} cluster: real agents on containerd)",
        describe_machine(),
        _rows(figures),
        figures,
        as_json,
    )
    return 0
