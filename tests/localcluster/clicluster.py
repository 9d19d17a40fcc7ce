"""A local cluster brought up and operated through the real CLI, for the
end-to-end test modules: `pilothouse up --nodes N` in a data dir of the
module's own, the API that `up` left serving, and `pilothouse down` always
afterwards (even when `up` or a test fails). Every wait has a deadline."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shutil
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control.client import Client
from control.kubeconfig import read_kubeconfig
from control.localcluster.layout import Layout
from control.localcluster.proc import capture, cmdline, is_zombie, netns_inode, pids_in_netns
from control.localcluster.runcstate import runc_state
from control.localcluster.state import read_state
from control.objects.kinds import NODE
from tests.localcluster.names import ClusterNames
from tests.localcluster.traces import Snapshot, leftovers, running
from tests.polling import eventually


@dataclass
class Cluster:
    data_dir: Path
    api: Client
    before: Snapshot
    # Pids of processes the cluster ran that have since been stopped by a test
    # (an sshd, an agent): down's check must not find them running either.
    pids: set[int] = field(default_factory=set)

    @property
    def lay(self) -> Layout:
        return Layout(self.data_dir)


@dataclass
class Run:
    code: int
    out: str
    err: str


async def pilothouse(data_dir: Path, *args: str, within: float = 120.0) -> Run:
    """The real CLI in a child process, finding the cluster through PILOTHOUSE_HOME."""
    env = {**os.environ, "PILOTHOUSE_HOME": str(data_dir)}
    env.pop("KUBECONFIG", None)
    return Run(*await capture([sys.executable, "-m", "console", *args], within=within, env=env))


async def ok(data_dir: Path, *args: str, within: float = 120.0) -> str:
    r = await pilothouse(data_dir, *args, within=within)
    assert r.code == 0, f"pilothouse {' '.join(args)}: exit {r.code}: {r.err or r.out}"
    return r.out


# The daemons answer slowly: poll them every 0.3 s; an assertion in a probe means "not yet".
poll = functools.partial(eventually, every=0.3, retry_asserts=True)


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: bytes = resp.read()
        return body.decode()


def node_ready(node: dict[str, Any]) -> str:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c["type"] == "Ready":
            return str(c["status"])
    return "Unknown"


def running_ready(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    conds = {c["type"]: c["status"] for c in st.get("conditions") or []}
    return st.get("phase") == "Running" and conds.get("Ready") == "True" and bool(st.get("podIP"))


def container(pod: dict[str, Any]) -> dict[str, Any]:
    statuses: list[dict[str, Any]] = (pod.get("status") or {}).get("containerStatuses") or []
    assert statuses, f"{pod['metadata']['name']}: no container status yet"
    return statuses[0]


def container_pid(cluster: Cluster, pod: dict[str, Any]) -> int:
    state = runc_state(cluster.lay, pod["spec"]["nodeName"], container(pod)["containerID"])
    assert state["status"] == "running", state
    pid = state["pid"]
    assert isinstance(pid, int) and pid > 0
    return pid


def agent_pids(cluster: Cluster, node: str) -> list[int]:
    """The agent processes of `node`: in its network namespace, started by its
    sshd (`python3 -m agent --node-name NODE ...`)."""
    state = read_state(cluster.data_dir)
    assert state is not None
    inode = netns_inode(state.nodes[node].netns)
    assert inode is not None
    found = []
    for pid in pids_in_netns(inode):
        argv = cmdline(pid)
        named = ("--node-name", node) in itertools.pairwise(argv)
        if argv[1:3] == ["-m", "agent"] and named:
            found.append(pid)
    return [p for p in found if not is_zombie(p)]


def daemon_logs(root: Path, depth: int = 3) -> list[Path]:
    """The daemons' `*.log` files under `root`: no deeper than `depth` levels,
    since below that lie the containers' root filesystems, which vanish while
    they are walked (a directory gone mid-walk is skipped, not an error)."""
    found = []
    for top, dirs, files in os.walk(root):
        if len(Path(top).relative_to(root).parts) >= depth:
            dirs.clear()
        found += [Path(top) / f for f in files if f.endswith(".log")]
    return sorted(found)


def log_tails(root: Path, lines: int = 15) -> str:
    """The last lines of each daemon log under `root`."""
    out = []
    for log in daemon_logs(root):
        with contextlib.suppress(OSError):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log}\n" + "\n".join(tail))
    return "\n".join(out)


def keep_logs(root: Path, to: Path) -> None:
    """Copy the daemons' logs out of the data dir, which `down` empties (pytest
    keeps its last few temporary dirs: look there after a failure)."""
    for log in daemon_logs(root):
        dst = to / log.relative_to(root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            shutil.copyfile(log, dst)


@contextlib.asynccontextmanager
async def cli_cluster(
    data_dir: Path, names: ClusterNames, nodes: int, *up_options: str
) -> AsyncIterator[Cluster]:
    """`pilothouse up --nodes N` with the names' ranges and `up_options`, until
    all N nodes are Ready; always `pilothouse down` afterwards."""
    before = Snapshot.take()
    api: Client | None = None
    try:
        up = await pilothouse(
            data_dir,
            "up",
            "--nodes",
            str(nodes),
            "--no-console",
            "--data-dir",
            str(data_dir),
            *names.up_args(),
            *up_options,
            within=300,
        )
        # The daemons' logs go with `down`: show them now.
        assert up.code == 0, f"up failed: {up.err}\n{log_tails(data_dir / 'cluster')}"
        api = cluster_client(data_dir)
        served = api

        async def all_ready() -> bool | None:
            listed = (await served.list(NODE))["items"]
            return True if [node_ready(n) for n in listed] == ["True"] * nodes else None

        await poll(all_ready, f"{nodes} Ready nodes", within=90)
        yield Cluster(data_dir, api, before)
    finally:
        try:
            if api is not None:
                await api.close()
            keep_logs(data_dir / "cluster", data_dir.parent / "logs")
        finally:
            r = await pilothouse(data_dir, "down", "--data-dir", str(data_dir), within=180)
            assert r.code == 0, r.err


def cluster_client(data_dir: Path) -> Client:
    """The API that `up` left: the data dir's socket, or with several control
    planes, HAProxy as the data dir's kubeconfig names it."""
    state = read_state(data_dir)
    if state is None or state.control_planes == 1:
        return Client(str(data_dir / "api.sock"))
    target = read_kubeconfig(Layout(data_dir).kubeconfig)
    return Client(target.server, ca_pem=target.ca_pem, token=target.token)


async def down_leaves_nothing(cluster: Cluster, names: ClusterNames) -> None:
    """`down`, then nothing of the cluster is left (tests.localcluster.traces), and
    a second `down` finds no cluster."""
    pids, pod_netns = await running(cluster.data_dir)
    out = await ok(cluster.data_dir, "down", "--data-dir", str(cluster.data_dir), within=180)
    assert f"local cluster in {cluster.data_dir} removed" in out
    left = leftovers(names, cluster.data_dir, cluster.before, pids=pids, pod_netns=pod_netns)
    assert left == {}
    again = await pilothouse(cluster.data_dir, "down", "--data-dir", str(cluster.data_dir))
    assert "no local cluster" in again.out
