"""The local HA control plane end to end: `pilothouse up --control-planes 3
--nodes 2` (three etcd members, three `serve` with leader election, HAProxy in
front), with a short lease so that failover takes seconds.

One cluster serves the module; its tests run in order. They show:
- the API through HAProxy, for the CLI as for the kubeconfig, and `up` again
  changing nothing;
- the leader killed (-9) while a Deployment scales from 0 to 50: a new leader
  within the lease and two retry periods, 50 pods in the end, none bound twice
  or created in excess, no container restarted, and `get pods` through HAProxy
  succeeding on every call throughout;
- one etcd member killed (-9) and started again while creates run through
  HAProxy: every acknowledged create is there afterwards, on every control plane;
- `down` leaving nothing: no etcd, serve or haproxy process, no files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from control.client import Client, ClusterUnreachable
from control.config import ELECTION_JITTER
from control.errors import ApiError
from control.kubeconfig import read_kubeconfig
from control.localcluster.etcd import etcd_binary
from control.localcluster.etcdmembers import start_etcd_member
from control.localcluster.layout import Layout
from control.localcluster.plan import (
    ETCD_PORT_OFFSET,
    ControlPlaneMember,
    HaPlan,
    make_ha_plan,
)
from control.localcluster.proc import cmdline, is_zombie, read_pid
from control.localcluster.state import read_state
from control.objects.coordination import lease_holder
from control.objects.kinds import CONFIGMAP, DEPLOYMENT, LEASE, POD
from control.wire import LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE
from tests.localcluster.clicluster import (
    Cluster,
    cli_cluster,
    down_leaves_nothing,
    ok,
    pilothouse,
    poll,
    running_ready,
)
from tests.localcluster.names import SHARED_CLUSTER_MODULE, unique
from tests.localcluster.traces import children
from tests.manifests import workload

pytestmark = [
    *SHARED_CLUSTER_MODULE,
    pytest.mark.skipif(
        etcd_binary() is None or shutil.which("haproxy", path="/usr/sbin:/usr/bin") is None,
        reason="needs etcd and haproxy (scripts/setup.sh installs them)",
    ),
]

NAMES = unique("ha")
CONTROL_PLANES = 3
LEASE_S, RENEW_S, RETRY_S = 4.0, 3.0, 1.0  # seconds: the cluster's leader election
# A follower sees the lease unchanged for LEASE_S after its last look, and looks
# every RETRY_S (up to ELECTION_JITTER more): a new leader within this of the kill.
FAILOVER_BOUND = LEASE_S + 2 * RETRY_S * (1 + ELECTION_JITTER) + 2.0
REPLICAS = 50
RUNNING_AT_KILL = 3  # pods Running when the leader is killed
WRITES = 90
WRITE_PAUSE = 0.03  # seconds between creates
MEMBER_DOWN = 2.0  # seconds at least that the etcd member stays down

HA_OPTIONS = (
    "--control-planes",
    str(CONTROL_PLANES),
    "--leader-elect-lease-duration",
    f"{LEASE_S:g}",
    "--leader-elect-renew-deadline",
    f"{RENEW_S:g}",
    "--leader-elect-retry-period",
    f"{RETRY_S:g}",
)


def burst() -> dict[str, Any]:
    """The Deployment that scales: pods that sleep, stopped fast."""
    d = workload("Deployment", "burst", 0, "pilothouse/busybox:latest")
    pod = d["spec"]["template"]["spec"]
    pod["terminationGracePeriodSeconds"] = 1
    pod["containers"][0]["command"] = ["sleep", "3600"]
    return d


def free_port_block() -> int:
    """A port P with P .. P + the etcd ports all free on loopback now."""
    span = ETCD_PORT_OFFSET + 2 * CONTROL_PLANES
    for _ in range(50):
        base = 20000 + secrets.randbelow(20000)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + span):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free block of ports")


def ha_plan(cluster: Cluster) -> HaPlan:
    state = read_state(cluster.data_dir)
    assert state is not None
    ha = make_ha_plan(state.cluster, state.control_planes, state.api_listen)
    assert ha is not None
    return ha


def serve_pid(cluster: Cluster, name: str) -> int:
    pid = read_pid(cluster.lay.control_plane(name).serve_pid)
    assert pid is not None
    return pid


def etcd_pid(cluster: Cluster, name: str) -> int:
    pid = read_pid(cluster.lay.etcd_member(name).pid)
    assert pid is not None
    return pid


def socket_client(cluster: Cluster, name: str) -> Client:
    """One control plane's own API, on its unix socket (not through HAProxy)."""
    return Client(str(cluster.lay.control_plane(name).api_socket))


async def holder(api: Client) -> str:
    return lease_holder(await api.get(LEASE, LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("ha") / "home"
    options = ("--listen", f"127.0.0.1:{free_port_block()}", *HA_OPTIONS)
    async with cli_cluster(data_dir, NAMES, 2, *options) as c:
        yield c


# -- the tests, in order ---------------------------------------------------------


async def test_the_api_is_behind_haproxy_and_up_again_changes_nothing(cluster: Cluster) -> None:
    ha = ha_plan(cluster)
    lay = cluster.lay
    assert read_kubeconfig(lay.kubeconfig).server == ha.api_url == cluster.api.server
    assert not lay.api_socket.exists()  # the CLI finds the kubeconfig, hence HAProxy
    out = await ok(cluster.data_dir, "get", "nodes")
    assert out.count("Ready") == 2, out
    # Node metrics come from the leader's node links: a follower passes them on.
    top = await poll(lambda: _top_nodes(cluster), "top nodes through haproxy", within=30)
    assert "node1" in top and "node2" in top, top
    leader = await poll(lambda: holder(cluster.api), "a leader", within=30)
    assert leader in {m.name for m in ha.members}

    def pids() -> dict[Path, int | None]:
        files = [lay.haproxy_pid]
        for m in ha.members:
            files += [lay.control_plane(m.name).serve_pid, lay.etcd_member(m.name).pid]
        return {f: read_pid(f) for f in files}

    before = pids()
    assert all(before.values()), before
    # The same options, but the API address: the data dir keeps it.
    again = await pilothouse(
        cluster.data_dir,
        "up",
        "--nodes",
        "2",
        "--no-console",
        "--data-dir",
        str(lay.data_dir),
        "--name",
        NAMES.cluster,
        *HA_OPTIONS,
    )
    assert again.code == 0, again.err
    assert f"API: {ha.api_url} (haproxy, in front of 3 control planes)" in again.out
    for m in ha.members:
        assert f"control plane {m.name}: serving on {m.https_url}" in again.err
    assert "etcd: 3 members" in again.err and f"haproxy: the API at {ha.api_url}" in again.err
    assert pids() == before  # nothing restarted
    assert await holder(cluster.api) == leader


async def _top_nodes(cluster: Cluster) -> str | None:
    r = await pilothouse(cluster.data_dir, "top", "nodes")
    return r.out if r.code == 0 else None


async def _watch_pods(api: Client, rv: str, events: list[tuple[str, dict[str, Any]]]) -> None:
    """Every event of the burst pods after `rv`, until cancelled."""
    while True:  # a watch the server ends is resumed where it stopped
        async for kind, obj in api.watch(
            POD, "default", resource_version=rv, label_selector="app=burst"
        ):
            events.append((kind, obj))
            rv = obj["metadata"]["resourceVersion"]


async def _cli_loop(cluster: Cluster, until: asyncio.Event, results: list[tuple[int, str]]) -> None:
    """`pilothouse get pods` through HAProxy, one call after another, until `until`."""
    while not until.is_set():
        r = await pilothouse(cluster.data_dir, "get", "pods", within=30)
        results.append((r.code, r.err))


async def burst_pods(api: Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await api.list(POD, "default", label_selector="app=burst"))[
        "items"
    ]
    return items


async def test_killing_the_leader_during_a_scale_up(cluster: Cluster) -> None:
    ha = ha_plan(cluster)
    api = cluster.api
    leader = await holder(api)
    follower = next(m.name for m in ha.members if m.name != leader)
    watcher = socket_client(cluster, follower)  # stays up across the kill
    events: list[tuple[str, dict[str, Any]]] = []
    cli_results: list[tuple[int, str]] = []
    failover_done = asyncio.Event()
    listed = await watcher.list(POD, "default", label_selector="app=burst")
    assert listed["items"] == []
    watch = asyncio.create_task(_watch_pods(watcher, listed["metadata"]["resourceVersion"], events))
    cli = asyncio.create_task(_cli_loop(cluster, failover_done, cli_results))
    killed_children: list[int] = []
    try:
        await api.create(DEPLOYMENT, burst(), "default")
        # Right after the create, maybe through another control plane: reads
        # are consistent across them, so no retry.
        await api.scale(DEPLOYMENT, "burst", REPLICAS, "default")

        async def some_running() -> list[dict[str, Any]] | None:
            running = [p for p in await burst_pods(api) if running_ready(p)]
            return running if len(running) >= RUNNING_AT_KILL else None

        running_before = await poll(some_running, f"{RUNNING_AT_KILL} pods Running", within=90)
        at_kill = await burst_pods(api)
        bound_at_kill = sum(1 for p in at_kill if p["spec"].get("nodeName"))
        ids_before = {
            p["metadata"]["uid"]: p["status"]["containerStatuses"][0]["containerID"]
            for p in running_before
        }
        killed = serve_pid(cluster, leader)
        assert str(cluster.lay.control_plane(leader).data_dir) in " ".join(cmdline(killed))
        killed_children = children(killed)  # the host's service proxy
        os.kill(killed, signal.SIGKILL)
        killed_at = time.monotonic()

        async def new_leader() -> str | None:
            current = await holder(watcher)
            return current if current and current != leader else None

        second = await poll(new_leader, "a new leader", within=30)
        took = time.monotonic() - killed_at
        print(
            f"failover: {leader} killed with {len(at_kill)} pods made, {bound_at_kill} bound, "
            f"{len(running_before)} Running; {second} leads after {took:.1f}s"
        )
        assert took <= FAILOVER_BOUND, (took, FAILOVER_BOUND)
        await asyncio.sleep(2 * RETRY_S)  # the CLI goes on past the new leader's first moments
        failover_done.set()
        await cli

        async def all_running() -> list[dict[str, Any]] | None:
            pods = await burst_pods(api)
            good = [p for p in pods if running_ready(p)]
            return pods if len(good) == REPLICAS == len(pods) else None

        final = await poll(all_running, f"{REPLICAS} pods Running", within=120)
    finally:
        failover_done.set()
        for task in (watch, cli):
            task.cancel()
        await asyncio.gather(watch, cli, return_exceptions=True)
        await watcher.close()

    # What the killed leader ran (the host's service proxy) exits with it.
    await poll(
        lambda: all(is_zombie(p) for p in killed_children) or None,
        "the killed leader's children to exit",
        within=15,
    )

    # The CLI through HAProxy: every call succeeded, with no retry of ours or its own.
    print(f"`get pods` through haproxy during the failover: {len(cli_results)} calls")
    assert len(cli_results) >= 3, cli_results
    assert [code for code, _ in cli_results] == [0] * len(cli_results), cli_results

    # Exactly the pods the ReplicaSet asked for: none created again, none deleted.
    final_uids = {p["metadata"]["uid"] for p in final}
    assert len(final_uids) == REPLICAS
    seen = {obj["metadata"]["uid"] for _, obj in events}
    assert seen == final_uids, (len(seen), len(final_uids))
    assert [kind for kind, _ in events if kind == "DELETED"] == []
    # Bound once: a pod's node never changes once set.
    nodes: dict[str, set[str]] = {}
    for _, obj in events:
        if obj["spec"].get("nodeName"):
            nodes.setdefault(obj["metadata"]["uid"], set()).add(obj["spec"]["nodeName"])
    assert {uid: n for uid, n in nodes.items() if len(n) > 1} == {}
    # No container restarted; those running before the kill are the same containers.
    for p in final:
        statuses = p["status"]["containerStatuses"]
        assert [s["restartCount"] for s in statuses] == [0], p["metadata"]["name"]
        uid = p["metadata"]["uid"]
        if uid in ids_before:
            assert statuses[0]["containerID"] == ids_before[uid], p["metadata"]["name"]


async def _create(api: Client, i: int) -> bool:
    """Create ConfigMap w-i; True when acknowledged. A failed attempt is tried
    again, as a client would; AlreadyExists then says an earlier attempt took."""
    body = {"metadata": {"name": f"w-{i}"}, "data": {"i": str(i)}}
    for attempt in range(4):
        try:
            await asyncio.wait_for(api.create(CONFIGMAP, body, "default"), 10)
            return True
        except ApiError as e:
            if e.code == 409 and attempt:
                return True
            if e.code < 500:
                raise
        except (ClusterUnreachable, TimeoutError):
            pass
        await asyncio.sleep(0.5)
    return False


def etcd_revision(member: ControlPlaneMember) -> int:
    """The revision of the member's own copy of the data (etcd's JSON gateway)."""
    request = urllib.request.Request(
        f"{member.etcd_client_url}/v3/maintenance/status", data=b"{}", method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return int(json.loads(resp.read())["header"]["revision"])


async def test_an_etcd_member_restarts_under_writes(cluster: Cluster) -> None:
    ha = ha_plan(cluster)
    member = ha.members[0]  # every control plane's first etcd endpoint
    api = cluster.api
    acked: list[int] = []
    failed: list[int] = []
    reached = {WRITES // 4: asyncio.Event(), WRITES // 2: asyncio.Event()}

    async def writes() -> None:
        for i in range(WRITES):
            (acked if await _create(api, i) else failed).append(i)
            if i in reached:
                reached[i].set()
            await asyncio.sleep(WRITE_PAUSE)

    task = asyncio.create_task(writes())
    try:
        await asyncio.wait_for(reached[WRITES // 4].wait(), 60)
        old = etcd_pid(cluster, member.name)
        os.kill(old, signal.SIGKILL)
        killed_during = len(acked) + len(failed)
        await asyncio.sleep(MEMBER_DOWN)
        await asyncio.wait_for(reached[WRITES // 2].wait(), 60)
        new = await start_etcd_member(cluster.data_dir, member.name)
        restarted_during = len(acked) + len(failed)
        assert new != old
        await asyncio.wait_for(task, 120)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    print(
        f"etcd member {member.name} killed after {killed_during} writes, started again after "
        f"{restarted_during}; {len(acked)} of {WRITES} acknowledged"
    )
    assert killed_during < restarted_during < WRITES  # writes ran while it was down and after
    assert failed == []  # every create went through, at most after a client's retries
    names = {f"w-{i}" for i in acked}

    async def present(client: Client) -> bool | None:
        items = (await client.list(CONFIGMAP, "default"))["items"]
        return names <= {c["metadata"]["name"] for c in items} or None

    # Through HAProxy, and on each live control plane's own cache.
    await poll(lambda: present(api), "every acknowledged write", within=20)
    for m in ha.members:
        if not is_zombie(serve_pid(cluster, m.name)):
            client = socket_client(cluster, m.name)
            try:
                await poll(lambda c=client: present(c), f"the writes on {m.name}", within=20)
            finally:
                await client.close()
    # The restarted member caught up: its copy is at the others' revision.
    await poll(
        lambda: len({etcd_revision(m) for m in ha.members}) == 1 or None,
        "the members at one revision",
        within=20,
    )


async def test_down_leaves_nothing(cluster: Cluster) -> None:
    ha = ha_plan(cluster)
    lay = cluster.lay
    daemons = {read_pid(lay.haproxy_pid)}
    for m in ha.members:
        daemons |= {
            read_pid(lay.etcd_member(m.name).pid),
            read_pid(lay.control_plane(m.name).serve_pid),
        }
    await down_leaves_nothing(cluster, NAMES)
    assert all(pid is not None and is_zombie(pid) for pid in daemons), daemons
    assert not any(lay.data_dir.iterdir())
    assert not Layout(lay.data_dir).root.exists()
