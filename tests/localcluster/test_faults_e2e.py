"""Faults on a real local cluster (`pilothouse up --nodes 3`), and nothing lost
after each: the control plane killed (-9) during a rolling update; an agent
killed in the middle of a pod sync; a node's containerd restarted; a node cut
off the network (its link down inside its namespace) and healed; the store's
disk full.

One cluster serves the whole module (tests.localcluster.clicluster), with a
short node grace period and its store on a small tmpfs of its own (`up
--store-dir`), unmounted at the end even on failure. The tests run in order,
each leaving the cluster healthy for the next; the last takes it down and
looks for what is left behind. Every wait is bounded; none is a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from agent.cri.client import CRIClient
from agent.pods import spec as S
from control.client import ClusterUnreachable
from control.errors import ApiError
from control.localcluster.daemons import containerd_running, start_containerd
from control.localcluster.plan import SSH_PORT
from control.localcluster.proc import read_pid
from control.localcluster.state import read_state
from control.objects.kinds import CONFIGMAP, DEPLOYMENT, NODE, POD, REPLICASET
from tests.localcluster.clicluster import (
    Cluster,
    agent_pids,
    cli_cluster,
    container,
    container_pid,
    down_leaves_nothing,
    keep_logs,
    node_ready,
    ok,
    poll,
    running_ready,
)
from tests.localcluster.names import SHARED_CLUSTER_MODULE, unique

pytestmark = SHARED_CLUSTER_MODULE

NAMES = unique("flt")
GRACE_PERIOD = 6  # seconds: the cluster's node_monitor_grace_period
TOLERATION_SECONDS = 2  # how long the pods stay on a not-ready or unreachable node
UP_OPTIONS = ("--node-grace-period", str(GRACE_PERIOD), "--backoff-base", "2")
STORE_MIB = 160  # the store's tmpfs: room for the database and its WAL (up to 64 MiB)
BUSYBOX = "pilothouse/busybox:latest"
SLEEP = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
HOSTNAME = "kubernetes.io/hostname"
KILLS = 3  # agents killed one after the other in the middle of a pod sync
REVISION = "deployment.kubernetes.io/revision"


def _run(*argv: str) -> str:
    done = subprocess.run(list(argv), check=True, capture_output=True, text=True, timeout=30)
    return done.stdout


def ssh_established(ip: str) -> bool:
    """Whether a TCP connection to the node's sshd is up on the host (the node link's)."""
    return bool(_run("ss", "-Htn", "state", "established", "dst", f"{ip}:{SSH_PORT}").strip())


@contextlib.contextmanager
def tmpfs(at: Path, mib: int) -> Iterator[Path]:
    """A tmpfs of `mib` MiB at `at`, unmounted afterwards even on failure."""
    at.mkdir()
    _run("mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0700", "tmpfs", str(at))
    try:
        yield at
    finally:
        try:
            _run("umount", str(at))
        except subprocess.CalledProcessError:
            _run("umount", "--lazy", str(at))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    base = tmp_path_factory.mktemp("flt")
    with tmpfs(base / "store", STORE_MIB) as store:
        options = (*UP_OPTIONS, "--store-dir", str(store))
        async with cli_cluster(base / "home", NAMES, 3, *options) as c:
            yield c


# -- workloads and their counts --------------------------------------------------


def deployment(name: str, replicas: int, **pod_spec: Any) -> dict[str, Any]:
    """Busybox sleepers that leave a not-ready or unreachable node after
    TOLERATION_SECONDS, and roll one surge pod at a time."""
    tolerations = [
        {
            "key": f"node.kubernetes.io/{taint}",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": TOLERATION_SECONDS,
        }
        for taint in ("unreachable", "not-ready")
    ]
    containers = [{"name": "app", "image": BUSYBOX, "command": SLEEP}]
    spec = {
        "terminationGracePeriodSeconds": 2,
        "tolerations": tolerations,
        "containers": containers,
        **pod_spec,
    }
    deploy = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": deploy,
    }


async def pods_of(cluster: Cluster, app: str) -> list[dict[str, Any]]:
    listed = await cluster.api.list(POD, "default", label_selector=f"app={app}")
    items: list[dict[str, Any]] = listed["items"]
    return items


async def settled(cluster: Cluster, app: str, replicas: int) -> list[dict[str, Any]] | None:
    """The Deployment's pods once its counts are exact: `replicas` pods, all
    Running and Ready from its newest ReplicaSet, none terminating; that
    ReplicaSet at `replicas` in spec and status, every older one at 0; the
    Deployment's status all `replicas`. None (not yet) otherwise."""
    d = await cluster.api.get(DEPLOYMENT, app, "default")
    st = d.get("status") or {}
    if st.get("observedGeneration") != d["metadata"]["generation"]:
        return None
    counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    if [st.get(k) for k in counts] != [replicas] * 4 or st.get("unavailableReplicas"):
        return None
    rss = (await cluster.api.list(REPLICASET, "default", label_selector=f"app={app}"))["items"]
    newest = max(rss, key=lambda rs: int(rs["metadata"]["annotations"][REVISION]))
    for rs in rss:
        want = replicas if rs is newest else 0
        rst = rs.get("status") or {}
        if (rs["spec"]["replicas"], rst.get("replicas", 0), rst.get("readyReplicas", 0)) != (
            want,
            want,
            want,
        ):
            return None
    pods = await pods_of(cluster, app)
    owner = newest["metadata"]["uid"]
    good = [
        p
        for p in pods
        if running_ready(p)
        and not p["metadata"].get("deletionTimestamp")
        and [r["uid"] for r in p["metadata"].get("ownerReferences") or ()] == [owner]
    ]
    return pods if len(good) == len(pods) == replicas else None


async def wait_settled(
    cluster: Cluster, app: str, replicas: int, within: float = 90
) -> list[dict[str, Any]]:
    last: list[str] = []  # what a timeout reports: the pods as last seen

    async def check() -> list[dict[str, Any]] | None:
        got = await settled(cluster, app, replicas)
        if got is None:
            d = await cluster.api.get(DEPLOYMENT, app, "default")
            pods = await pods_of(cluster, app)
            last[:] = [f"deployment status {d.get('status')}", *map(_pod_line, pods)]
        return got

    def describe() -> str:
        log = cluster.lay.serve_log.read_text(errors="replace").splitlines()[-40:]
        return "\n".join([*last, "serve.log, last lines:", *log])

    return await poll(check, f"{app}: exactly {replicas} pods", within=within, describe=describe)


def _pod_line(pod: dict[str, Any]) -> str:
    st = pod.get("status") or {}
    ready = [c["status"] for c in st.get("conditions") or () if c["type"] == "Ready"]
    states = [c.get("state") for c in st.get("containerStatuses") or ()]
    return (
        f"{pod['metadata']['name']} node={pod['spec'].get('nodeName')} phase={st.get('phase')}"
        f" ready={ready} deleting={bool(pod['metadata'].get('deletionTimestamp'))}"
        f" containers={states}"
    )


def node_socket(cluster: Cluster, node: str) -> str:
    return str(cluster.lay.node(node).socket)


async def runtime_view(cluster: Cluster, node: str) -> tuple[list[Any], list[Any]]:
    """The node's pod sandboxes and containers, as containerd holds them (CRI)."""
    async with CRIClient(node_socket(cluster, node)) as cri:
        managed = {S.MANAGED: "true"}
        return await cri.list_pod_sandboxes(managed), await cri.list_containers(managed)


class PodHistory:
    """Every pod of `app` created or deleted from now on, and every one seen
    not Running and Ready, by watching, across control plane restarts (the
    watch resumes from the last revision seen)."""

    def __init__(self, cluster: Cluster, app: str) -> None:
        self.cluster, self.app = cluster, app
        self.added: dict[str, str] = {}  # pod uid -> its owner's uid
        self.deleted: set[str] = set()
        self.unready: set[str] = set()  # pod names
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.cluster.api.list(POD, "default", label_selector=f"app={self.app}")
        self.task = asyncio.create_task(self._follow(listed["metadata"]["resourceVersion"]))

    async def _follow(self, rv: str) -> None:
        while True:
            try:
                events = self.cluster.api.watch(
                    POD, "default", resource_version=rv, label_selector=f"app={self.app}"
                )
                async for kind, pod in events:
                    meta = pod["metadata"]
                    rv = meta["resourceVersion"]
                    owners = [r["uid"] for r in meta.get("ownerReferences") or ()]
                    if kind == "ADDED":
                        self.added[meta["uid"]] = owners[0] if owners else ""
                    elif kind == "DELETED":
                        self.deleted.add(meta["uid"])
                    if kind == "MODIFIED" and not running_ready(pod):
                        self.unready.add(meta["name"])
            except (ApiError, ClusterUnreachable, OSError, aiohttp.ClientError):
                pass  # the control plane is away: watch again from `rv`
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def __aenter__(self) -> PodHistory:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def node_is(cluster: Cluster, node: str, ready: str) -> bool | None:
    return True if node_ready(await cluster.api.get(NODE, node)) == ready else None


async def all_nodes_ready(cluster: Cluster) -> None:
    async def ready() -> bool | None:
        nodes = (await cluster.api.list(NODE))["items"]
        return True if [node_ready(n) for n in nodes] == ["True"] * 3 else None

    await poll(ready, "3 Ready nodes", within=60)


async def up_again(cluster: Cluster) -> None:
    """`pilothouse up` as its user runs it again: it starts what is not running."""
    await ok(
        cluster.data_dir,
        "up",
        "--nodes",
        "3",
        "--no-console",
        "--data-dir",
        str(cluster.data_dir),
        *NAMES.up_args(),
        *UP_OPTIONS,
        within=180,
    )


async def one_sandbox_per_pod(cluster: Cluster, node: str) -> list[Any]:
    """Wait until what the node's containerd holds is exactly the API's pods
    on it: one sandbox each, and no container outside its pod's sandbox.
    Returns the containers."""
    held: list[Any] = []

    async def exact() -> bool:
        held[:] = await _runtime_against_api(cluster, node)
        return True

    await poll(exact, f"{node}'s containerd to hold exactly its pods", within=30)
    return held


async def _runtime_against_api(cluster: Cluster, node: str) -> list[Any]:
    placed = {
        p["metadata"]["uid"]
        for p in (await cluster.api.list(POD, field_selector=f"spec.nodeName={node}"))["items"]
    }
    sandboxes, containers = await runtime_view(cluster, node)
    per_pod: dict[str, list[str]] = {}
    for s in sandboxes:
        per_pod.setdefault(s.labels.get(S.POD_UID, ""), []).append(s.id)
    assert {u: len(ids) for u, ids in per_pod.items()} == dict.fromkeys(placed, 1), per_pod
    for c in containers:
        uid = c.labels.get(S.POD_UID, "")
        assert [c.pod_sandbox_id] == per_pod.get(uid), (c.id, uid, c.pod_sandbox_id)
    return containers


# -- the tests, in order ---------------------------------------------------------


async def test_a_rolling_update_completes_exactly_after_the_control_plane_is_killed(
    cluster: Cluster,
) -> None:
    replicas = 6
    # Each new pod is Ready a moment after it runs, so the rollout takes a while.
    probe = {"exec": {"command": ["true"]}, "initialDelaySeconds": 2, "periodSeconds": 1}
    app = deployment("roll", replicas)
    app["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = probe
    await cluster.api.create(DEPLOYMENT, app)
    await wait_settled(cluster, "roll", replicas)

    async with PodHistory(cluster, "roll") as history:
        patch = {"spec": {"template": {"metadata": {"annotations": {"rollout": "2"}}}}}
        await cluster.api.patch(DEPLOYMENT, "roll", patch, "default")

        async def midway() -> bool | None:
            rss = (await cluster.api.list(REPLICASET, "default", label_selector="app=roll"))[
                "items"
            ]
            if len(rss) != 2:
                return None
            ready = [(rs.get("status") or {}).get("readyReplicas", 0) for rs in rss]
            return True if all(0 < r < replicas for r in ready) else None

        await poll(midway, "the rollout under way", within=60, every=0.1)
        serve = read_pid(cluster.lay.serve_pid)
        assert serve is not None
        os.kill(serve, signal.SIGKILL)
        cluster.pids.add(serve)
        t0 = time.monotonic()
        await up_again(cluster)
        pods = await wait_settled(cluster, "roll", replicas, within=120)
        print(f"control plane killed mid-rollout -> settled in {time.monotonic() - t0:.1f}s")
        # The watch has seen everything up to the settled state.
        await poll(lambda: history.added.keys() >= {p["metadata"]["uid"] for p in pods}, within=10)
    # Not one pod too many was ever made, nor one of the new ones deleted.
    new_rs = {p["metadata"]["ownerReferences"][0]["uid"] for p in pods}
    assert len(new_rs) == 1
    assert sorted(history.added) == sorted(p["metadata"]["uid"] for p in pods), history.added
    assert history.deleted.isdisjoint(history.added)
    d = await cluster.api.get(DEPLOYMENT, "roll", "default")
    assert d["metadata"]["annotations"][REVISION] == "2"
    assert (
        len((await cluster.api.list(REPLICASET, "default", label_selector="app=roll"))["items"])
        == 2
    )
    assert all(container(p)["restartCount"] == 0 for p in pods), pods
    await all_nodes_ready(cluster)


async def test_an_agent_killed_mid_sync_leaves_one_sandbox_per_pod(cluster: Cluster) -> None:
    node, replicas = "node3", 8
    app = deployment("burst", replicas, nodeSelector={HOSTNAME: node})
    old = await poll(lambda: agent_pids(cluster, node), f"{node}'s agent", within=30)
    cluster.pids.update(old)
    await cluster.api.create(DEPLOYMENT, app)

    async def started_since(seen: int) -> int | None:
        """The pods' sandboxes once there are more than `seen`; -1 once every pod runs."""
        pods = [p for p in await pods_of(cluster, "burst") if p["spec"].get("nodeName")]
        if len(pods) == replicas and all(running_ready(p) for p in pods):
            return -1
        uids = {p["metadata"]["uid"] for p in pods}
        sandboxes, _ = await runtime_view(cluster, node)
        started = len([s for s in sandboxes if s.labels.get(S.POD_UID) in uids])
        return started if started > seen else None

    # The agent is killed as the first sandboxes start, and each successor as
    # soon as it has started one more, KILLS times (or until all pods run).
    seen = kills = 0
    while kills < KILLS:
        seen = await poll(
            lambda seen=seen: started_since(seen), "a new sandbox", within=60, every=0.05
        )
        if seen < 0:
            break
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        kills += 1
        new = await poll(
            lambda old=old: [p for p in agent_pids(cluster, node) if p not in old],
            f"a new agent on {node}",
            within=60,
            every=0.05,
        )
        cluster.pids.update(new)
        old = new
    print(f"{node}: agent killed {kills} times in the middle of a pod sync")
    assert kills > 0
    pods = await wait_settled(cluster, "burst", replicas)

    uids = {p["metadata"]["uid"] for p in pods}
    containers = await one_sandbox_per_pod(cluster, node)
    mine = [c for c in containers if c.labels.get(S.POD_UID) in uids]
    held = [(c.labels[S.POD_UID][:8], c.metadata.attempt, c.state, c.id[:12]) for c in mine]
    assert sorted(c.labels[S.POD_UID] for c in mine) == sorted(uids), sorted(held)
    assert all(container(p)["restartCount"] == 0 for p in pods), pods
    await cluster.api.delete(DEPLOYMENT, "burst", "default")


async def test_a_crashed_and_restarted_containerd_keeps_the_pods_running(cluster: Cluster) -> None:
    node = "node2"
    pods = await wait_settled(cluster, "roll", 6)
    mine = {p["metadata"]["name"]: p for p in pods if p["spec"]["nodeName"] == node}
    assert mine, f"no roll pod on {node}"
    before = {name: container(p) for name, p in mine.items()}
    processes = {name: container_pid(cluster, p) for name, p in mine.items()}
    state = read_state(cluster.data_dir)
    assert state is not None
    async with PodHistory(cluster, "roll") as history:
        nl = cluster.lay.node(node)
        pid = read_pid(nl.containerd_pid)
        assert pid is not None and containerd_running(nl)
        os.kill(pid, signal.SIGKILL)  # a crash: no clean shutdown
        cluster.pids.add(pid)
        await poll(lambda: not containerd_running(nl), f"{node}'s containerd gone", within=10)
        await start_containerd(state.nodes[node], nl)

        # A new pod on the node: the agent talks to the new containerd.
        probe = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "after-restart"},
            "spec": {
                "nodeName": node,
                "terminationGracePeriodSeconds": 2,
                "containers": [{"name": "app", "image": BUSYBOX, "command": SLEEP}],
            },
        }
        await cluster.api.create(POD, probe)

        async def running() -> dict[str, Any] | None:
            got = await cluster.api.get(POD, "after-restart", "default")
            return got if running_ready(got) else None

        await poll(running, "a new pod Running on the restarted containerd", within=60)
        pods = await wait_settled(cluster, "roll", 6)
        for p in pods:
            name = p["metadata"]["name"]
            if name in mine:
                after = container(p)
                assert after["containerID"] == before[name]["containerID"], (before[name], after)
                assert after["restartCount"] == before[name]["restartCount"], after
                assert "running" in after["state"], after
                assert container_pid(cluster, p) == processes[name]
    # Their status never said otherwise meanwhile.
    assert not history.unready & set(mine), history.unready
    await cluster.api.delete(POD, "after-restart", "default")
    await all_nodes_ready(cluster)


async def test_a_partitioned_node_loses_its_pods_and_drops_them_when_it_heals(
    cluster: Cluster,
) -> None:
    replicas = 4
    await cluster.api.create(DEPLOYMENT, deployment("part", replicas))
    pods = await wait_settled(cluster, "part", replicas)
    on: dict[str, list[str]] = {}
    for p in pods:
        on.setdefault(p["spec"]["nodeName"], []).append(p["metadata"]["uid"])
    node = max(on, key=lambda n: len(on[n]))
    stale = set(on[node])
    state = read_state(cluster.data_dir)
    assert state is not None
    netns = state.nodes[node].netns
    _run("ip", "-n", netns, "link", "set", "eth0", "down")
    t0 = time.monotonic()
    try:
        await poll(lambda: node_is(cluster, node, "Unknown"), f"{node} NotReady", within=60)
        print(f"{node} cut off -> NotReady in {time.monotonic() - t0:.1f}s")

        async def replaced() -> list[dict[str, Any]] | None:
            got = await settled(cluster, "part", replicas)
            if got is None or any(p["spec"]["nodeName"] == node for p in got):
                return None
            return got

        await poll(replaced, f"part's pods replaced off {node}", within=60)
        print(f"{node} cut off -> pods replaced in {time.monotonic() - t0:.1f}s")
        # The stale pods still run on the node: nothing could tell its agent.
        sandboxes, _ = await runtime_view(cluster, node)
        assert stale <= {s.labels.get(S.POD_UID) for s in sandboxes}
        # Long enough for the control plane to give the SSH connection up, so
        # that the node comes back through a new connection and a new agent.
        await poll(
            lambda: not ssh_established(state.nodes[node].ip),
            f"the control plane to drop its connection to {node}",
            within=90,
            every=1,
        )
        print(f"{node} cut off -> connection dropped in {time.monotonic() - t0:.1f}s")
    finally:
        _run("ip", "-n", netns, "link", "set", "eth0", "up")
    t1 = time.monotonic()
    await poll(lambda: node_is(cluster, node, "True"), f"{node} Ready again", within=90)

    async def stale_gone() -> bool | None:
        sandboxes, containers = await runtime_view(cluster, node)
        left = [s for s in sandboxes if s.labels.get(S.POD_UID) in stale]
        left += [c for c in containers if c.labels.get(S.POD_UID) in stale]
        return True if not left else None

    await poll(stale_gone, f"the stale pods removed from {node}", within=60)
    print(f"{node} healed -> stale pods removed in {time.monotonic() - t1:.1f}s")
    others = {n.pod_cidr for name, n in state.nodes.items() if name != node}
    await poll(lambda: others <= routed(netns), f"{node}'s routes to the other nodes", within=30)
    pods = await wait_settled(cluster, "part", replicas)
    assert stale.isdisjoint(p["metadata"]["uid"] for p in pods)
    await wait_settled(cluster, "roll", 6)
    agents = await poll(lambda: agent_pids(cluster, node), f"{node}'s agent", within=30)
    assert len(agents) == 1, agents
    await one_sandbox_per_pod(cluster, node)


def routed(netns: str) -> set[str]:
    """The destinations a node's namespace routes."""
    return {r.get("dst", "") for r in json.loads(_run("ip", "-n", netns, "-j", "route", "show"))}


async def test_a_link_down_for_a_moment_gets_its_routes_back(cluster: Cluster) -> None:
    """A flap too short for any connection to drop: the kernel drops the
    routes through the link, and the node gets them back."""
    state = read_state(cluster.data_dir)
    assert state is not None
    node = state.nodes["node1"]
    others = {n.pod_cidr for n in state.nodes.values() if n is not node}
    assert others <= routed(node.netns)
    _run("ip", "-n", node.netns, "link", "set", "eth0", "down")
    try:
        assert not others & routed(node.netns)
    finally:
        _run("ip", "-n", node.netns, "link", "set", "eth0", "up")
    await poll(
        lambda: others <= routed(node.netns), "the routes to the other nodes' pods", within=30
    )
    await all_nodes_ready(cluster)


def fill(path: Path) -> None:
    """Write `path` until its filesystem is full."""
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        while chunk:
            try:
                f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                chunk = chunk[: len(chunk) // 2]


def config_map(name: str, size: int) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    return {**body, "data": {"blob": (name * (size // len(name) + 1))[:size]}}


async def test_a_full_store_disk_refuses_writes_keeps_reads_and_loses_nothing(
    cluster: Cluster,
) -> None:
    state = read_state(cluster.data_dir)
    assert state is not None and state.store_dir
    store = Path(state.store_dir)
    db = store / "state.db"
    filler = store / "filler"
    written: dict[str, dict[str, Any]] = {}
    for i in range(3):
        made = await cluster.api.create(CONFIGMAP, config_map(f"before-{i}", 1000))
        written[made["metadata"]["name"]] = made["data"]
    try:
        await asyncio.to_thread(fill, filler)
        # The store's WAL may still have room: write until the disk refuses.
        refused: ApiError | None = None
        for i in range(400):
            body = config_map(f"full-{i}", 256 * 1024)
            try:
                made = await cluster.api.create(CONFIGMAP, body)
            except ApiError as e:
                refused = e
                break
            written[made["metadata"]["name"]] = made["data"]
        assert refused is not None, "the full disk took every write"
        assert (refused.code, refused.reason) == (507, "InternalError"), refused
        assert "disk is full" in refused.message, refused.message
        with pytest.raises(ApiError) as update:
            await cluster.api.patch(CONFIGMAP, "before-0", {"data": {"blob": "changed"}}, "default")
        assert update.value.code == 507, update.value
        # Reads keep working.
        for name, data in written.items():
            assert (await cluster.api.get(CONFIGMAP, name, "default"))["data"] == data
        assert len(await pods_of(cluster, "roll")) == 6
    finally:
        filler.unlink(missing_ok=True)

    async def writes() -> dict[str, Any] | None:
        try:
            return await cluster.api.create(CONFIGMAP, config_map("after-full", 1000))
        except ApiError as e:
            assert e.code == 507, e
            return None

    await poll(writes, "writes to resume", within=30)
    for name, data in written.items():
        assert (await cluster.api.get(CONFIGMAP, name, "default"))["data"] == data
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    await all_nodes_ready(cluster)
    await wait_settled(cluster, "roll", 6)
    await wait_settled(cluster, "part", 4)


async def test_down_leaves_nothing_behind(cluster: Cluster) -> None:
    """Runs last: `down`, then nothing of the cluster is left (the store's files too)."""
    state = read_state(cluster.data_dir)
    assert state is not None
    keep_logs(cluster.lay.root, cluster.data_dir.parent / "logs")
    await down_leaves_nothing(cluster, NAMES)
    assert os.listdir(state.store_dir) == []
