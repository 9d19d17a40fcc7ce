"""Issue 4's end-to-end test: `pilothouse up --nodes 3`, then what an operator
expects of a real cluster, through the CLI and the API that `up` left serving.

One cluster serves the whole module; its tests run in order, each leaving the
cluster healthy for the next, and the last takes it down and checks that
nothing is left. The fixture always runs `pilothouse down`, even when `up` or
a test fails. Every wait has a deadline; no assertion depends on a duration.
The cluster runs with a short node grace period and crash back-off, which
`up` takes as options, so that the module stays within a few minutes.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio

from control.client import Client
from control.localcluster.daemons import start_node_sshd, stop_node_sshd
from control.localcluster.proc import (
    LocalClusterError,
    cmdline,
    is_zombie,
    read_pid,
)
from control.objects.kinds import NODE, POD
from tests.localcluster.clicluster import (
    Cluster,
    agent_pids,
    cli_cluster,
    container,
    container_pid,
    http_get,
    log_tails,
    node_ready,
    ok,
    poll,
    running_ready,
)
from tests.localcluster.names import SHARED_CLUSTER_MODULE, unique
from tests.localcluster.traces import leftovers, running

pytestmark = SHARED_CLUSTER_MODULE

NAMES = unique("e2e")
GRACE_PERIOD = 10  # seconds: node_monitor_grace_period of this cluster
BACKOFF_BASE = 4  # seconds: the first CrashLoopBackOff delay
TOLERATION_SECONDS = 2  # how long web pods stay on an unreachable node
REPLICAS = 6
PAGE = "pilothouse busybox"  # in the image's /var/www/index.html

WEB = f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web}}
spec:
  replicas: {REPLICAS}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      tolerations:
      - key: node.kubernetes.io/unreachable
        operator: Exists
        effect: NoExecute
        tolerationSeconds: {TOLERATION_SECONDS}
      - key: node.kubernetes.io/not-ready
        operator: Exists
        effect: NoExecute
        tolerationSeconds: {TOLERATION_SECONDS}
      containers:
      - name: httpd
        image: pilothouse/busybox:latest
        command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
        ports:
        - containerPort: 80
        readinessProbe:
          httpGet: {{path: /, port: 80}}
          periodSeconds: 2
"""

CRASHER = """
apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  containers:
  - name: main
    image: pilothouse/busybox:latest
    command: ["sh", "-c", "echo crash-output from attempt at $(date +%s); exit 1"]
"""


# -- cluster state through the API ---------------------------------------------


async def web_pods(api: Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await api.list(POD, "default", label_selector="app=web"))[
        "items"
    ]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def all_web_ready(api: Client, avoid: str = "") -> list[dict[str, Any]] | None:
    pods = await web_pods(api)
    good = [p for p in pods if running_ready(p) and p["spec"].get("nodeName") != avoid]
    return good if len(good) == REPLICAS == len(pods) else None


def parse_time(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


# -- the cluster -----------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("e2e") / "home"
    options = ("--node-grace-period", str(GRACE_PERIOD), "--backoff-base", str(BACKOFF_BASE))
    async with cli_cluster(data_dir, NAMES, 3, *options) as c:
        yield c


# -- the tests, in order ---------------------------------------------------------


async def test_a_deployment_spreads_over_nodes_and_every_pod_answers(cluster: Cluster) -> None:
    (cluster.data_dir.parent / "web.yaml").write_text(WEB)
    t0 = time.monotonic()
    await ok(cluster.data_dir, "apply", "-f", str(cluster.data_dir.parent / "web.yaml"))
    pods = await poll(
        lambda: all_web_ready(cluster.api), f"{REPLICAS} web pods Running", within=120
    )
    print(f"apply -> {REPLICAS} pods Running and Ready: {time.monotonic() - t0:.1f}s")
    by_node: dict[str, list[str]] = {}
    for p in pods:
        by_node.setdefault(p["spec"]["nodeName"], []).append(p["status"]["podIP"])
    assert len(by_node) >= 2, by_node
    ips = [ip for node_ips in by_node.values() for ip in node_ips]
    prefixes = {NAMES.pod_prefix(i): f"node{i}" for i in (1, 2, 3)}
    for node, node_ips in by_node.items():
        assert all(prefixes[ip.rsplit(".", 1)[0] + "."] == node for ip in node_ips), by_node

    # From the host, through the node's veth and the pod bridge.
    bodies = await asyncio.gather(*(asyncio.to_thread(http_get, f"http://{ip}/") for ip in ips))
    assert all(PAGE in b for b in bodies), bodies

    # From a pod on another node, with the image's own wget.
    async def from_elsewhere(target: dict[str, Any]) -> str:
        other = next(p for p in pods if p["spec"]["nodeName"] != target["spec"]["nodeName"])
        return await ok(
            cluster.data_dir,
            "exec",
            other["metadata"]["name"],
            "--",
            "wget",
            "-q",
            "-O-",
            f"http://{target['status']['podIP']}/",
        )

    bodies = await asyncio.gather(*(from_elsewhere(p) for p in pods))
    assert all(PAGE in b for b in bodies), bodies

    out = await ok(cluster.data_dir, "get", "pods", "-o", "wide")
    assert out.count("Running") == REPLICAS, out


async def test_a_killed_container_process_restarts(cluster: Cluster) -> None:
    pod = (await poll(lambda: all_web_ready(cluster.api), "web pods", within=60))[0]
    name, before = pod["metadata"]["name"], container(pod)
    pid = container_pid(cluster, pod)
    assert "httpd" in cmdline(pid), cmdline(pid)
    os.kill(pid, signal.SIGKILL)

    async def restarted() -> dict[str, Any] | None:
        c = container(await cluster.api.get(POD, name, "default"))
        if c["restartCount"] > before["restartCount"] and "running" in c["state"]:
            return c
        return None

    after = await poll(restarted, f"{name} to restart", within=60)
    assert after["restartCount"] == before["restartCount"] + 1
    assert after["containerID"] != before["containerID"]
    assert after["lastState"]["terminated"]["exitCode"] == 137, after
    assert after["lastState"]["terminated"]["containerID"] == before["containerID"]
    new = await poll(lambda: all_web_ready(cluster.api), "web pods Ready again", within=60)
    pod = next(p for p in new if p["metadata"]["name"] == name)
    assert container_pid(cluster, pod) != pid
    assert PAGE in await asyncio.to_thread(http_get, f"http://{pod['status']['podIP']}/")


async def test_a_failing_command_ends_in_crashloopbackoff_with_growing_delays(
    cluster: Cluster,
) -> None:
    (cluster.data_dir.parent / "crasher.yaml").write_text(CRASHER)
    await ok(cluster.data_dir, "apply", "-f", str(cluster.data_dir.parent / "crasher.yaml"))
    # Every attempt that ended, by container ID: (startedAt, finishedAt).
    attempts: dict[str, tuple[float, float]] = {}
    reasons: set[str] = set()

    async def five_attempts() -> bool | None:
        c = container(await cluster.api.get(POD, "crasher", "default"))
        reasons.update(s.get("reason", "") for s in c["state"].values())
        done = (c.get("lastState") or {}).get("terminated")
        if done:
            assert done["exitCode"] == 1, done
            attempts[done["containerID"]] = (
                parse_time(done["startedAt"]),
                parse_time(done["finishedAt"]),
            )
        return True if len(attempts) >= 5 else None

    await poll(five_attempts, "crasher's first 5 attempts to end", within=150, every=0.2)
    assert "CrashLoopBackOff" in reasons, reasons
    # The delay before each restart: from one attempt's end to the next one's start.
    runs = sorted(attempts.values())
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(runs)]
    print(f"crash loop: delays before restarts: {gaps}")
    assert all(a < b for a, b in itertools.pairwise(gaps)), gaps

    pod = await cluster.api.get(POD, "crasher", "default")
    assert pod["status"]["containerStatuses"][0]["restartCount"] >= 4


async def test_logs_show_the_crashing_commands_output(cluster: Cluster) -> None:
    out = await ok(cluster.data_dir, "logs", "crasher")
    assert "crash-output from attempt at" in out, out
    previous = await ok(cluster.data_dir, "logs", "crasher", "--previous")
    assert "crash-output from attempt at" in previous, previous
    await ok(cluster.data_dir, "delete", "pod", "crasher")


async def test_a_node_whose_sshd_stops_goes_notready_and_its_pods_move(
    cluster: Cluster,
) -> None:
    pods = await poll(lambda: all_web_ready(cluster.api), "web pods", within=60)
    counts: dict[str, int] = {}
    for p in pods:
        counts[p["spec"]["nodeName"]] = counts.get(p["spec"]["nodeName"], 0) + 1
    node = max(counts, key=lambda n: counts[n])
    moved = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == node}
    sshd = read_pid(cluster.lay.node(node).sshd_pid)
    assert sshd is not None
    cluster.pids.add(sshd)
    await stop_node_sshd(cluster.data_dir, node)
    t0 = time.monotonic()
    try:

        async def not_ready() -> str | None:
            status = node_ready(await cluster.api.get(NODE, node))
            return status if status != "True" else None

        status = await poll(not_ready, f"{node} NotReady", within=GRACE_PERIOD + 60)
        print(f"{node}: sshd stopped -> Ready={status} in {time.monotonic() - t0:.1f}s")
        out = await ok(cluster.data_dir, "get", "nodes")
        line = next(line for line in out.splitlines() if line.startswith(node + " "))
        assert "NotReady" in line, out

        pods = await poll(
            lambda: all_web_ready(cluster.api, avoid=node),
            f"{REPLICAS} web pods Running off {node}",
            within=120,
        )
        print(
            f"{node}: sshd stopped -> {REPLICAS} pods Ready elsewhere in {time.monotonic() - t0:.1f}s"
        )
        assert moved.isdisjoint(p["metadata"]["name"] for p in pods)
        for p in pods:
            assert PAGE in await asyncio.to_thread(http_get, f"http://{p['status']['podIP']}/")
    finally:
        try:
            await start_node_sshd(cluster.data_dir, node)
        except LocalClusterError as e:
            raise AssertionError(f"{e}\n{log_tails(cluster.lay.node(node).dir)}") from e

    async def ready_again() -> bool | None:
        return True if node_ready(await cluster.api.get(NODE, node)) == "True" else None

    await poll(ready_again, f"{node} Ready again", within=90)


async def test_a_killed_agent_is_replaced_and_adopts_its_running_containers(
    cluster: Cluster,
) -> None:
    pods = await poll(lambda: all_web_ready(cluster.api), "web pods", within=60)
    node = pods[0]["spec"]["nodeName"]
    mine = {p["metadata"]["name"]: p for p in pods if p["spec"]["nodeName"] == node}
    before = {name: container(p) for name, p in mine.items()}
    processes = {name: container_pid(cluster, p) for name, p in mine.items()}
    agents = await poll(lambda: agent_pids(cluster, node), f"{node}'s agent", within=30)
    assert len(agents) == 1, agents
    cluster.pids.update(agents)
    os.kill(agents[0], signal.SIGKILL)

    # The containers do not depend on the agent.
    assert all(not is_zombie(pid) for pid in processes.values())

    # The control plane reconnects; a new agent starts and takes over.
    new = await poll(
        lambda: [p for p in agent_pids(cluster, node) if p not in agents],
        f"a new agent on {node}",
        within=60,
    )
    cluster.pids.update(new)

    # The new agent serves these pods: their logs and exec go through it.
    for name in mine:
        out = await ok(cluster.data_dir, "exec", name, "--", "cat", "/var/www/index.html")
        assert PAGE in out

    async def reported_by_new_agent() -> list[dict[str, Any]] | None:
        fresh = [await cluster.api.get(POD, name, "default") for name in mine]
        return fresh if all(running_ready(p) for p in fresh) else None

    fresh = await poll(reported_by_new_agent, "the pods reported Ready", within=60)
    for p in fresh:
        name = p["metadata"]["name"]
        after = container(p)
        assert after["restartCount"] == before[name]["restartCount"], (before[name], after)
        assert after["containerID"] == before[name]["containerID"]
        assert container_pid(cluster, p) == processes[name]
    assert len(await web_pods(cluster.api)) == REPLICAS


async def test_down_leaves_nothing_behind(cluster: Cluster) -> None:
    """Runs last: takes the cluster down with the CLI and looks for any trace."""
    pids, pod_netns = await running(cluster.data_dir)
    pids |= cluster.pids
    assert len(pod_netns) >= REPLICAS

    out = await ok(cluster.data_dir, "down", "--data-dir", str(cluster.data_dir), within=180)
    assert f"local cluster in {cluster.data_dir} removed" in out
    left = leftovers(NAMES, cluster.data_dir, cluster.before, pids=pids, pod_netns=pod_netns)
    assert left == {}
    again = await ok(cluster.data_dir, "down", "--data-dir", str(cluster.data_dir))
    assert "no local cluster" in again
