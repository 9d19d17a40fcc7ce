"""Node links, hollow agents and the node controllers, in one process: nodes
register and heartbeat, pods run and get IPs, Endpoints follow readiness, a
silent node is tainted and its pods evicted, and drain empties a node."""

from __future__ import annotations

import asyncio
import ipaddress
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.protocol import Params, Peer, Reader, Writer
from console.cli import main as cli
from control.nodes.reconnecting import LinkState
from control.nodes.transport import CommandTransport, InProcessTransport
from control.objects.kinds import ENDPOINTS, EVENT, NODE, POD, REPLICASET, SERVICE
from tests.cluster import DEFAULT_TIMEOUT, HollowCluster, condition, hollow_cluster, make_pod
from tests.polling import eventually

Obj = dict[str, Any]


def _taints(node: Obj) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


async def _events(cluster: HollowCluster, reason: str) -> list[Obj]:
    listed = await cluster.registry.list(EVENT, None)
    return [kv.obj for kv in listed.items if kv.obj.get("reason") == reason]


async def test_hollow_nodes_register_and_become_ready(hollow_cluster: HollowCluster) -> None:
    cidrs = set()
    for i, name in enumerate(["node-1", "node-2", "node-3"], 1):
        node = await hollow_cluster.node(name)
        assert node is not None
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == name
        assert labels["kubernetes.io/os"] == "linux"
        status = node["status"]
        assert status["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
        assert status["allocatable"] == status["capacity"]
        assert {"type": "InternalIP", "address": f"192.0.2.{i}"} in status["addresses"]
        assert status["nodeInfo"]["kubeletVersion"].startswith("pilothouse-agent/")
        ready = condition(node, "Ready")
        assert ready is not None and ready["status"] == "True" and ready["lastHeartbeatTime"]
        cidr = ipaddress.ip_network(node["spec"]["podCIDR"])
        assert cidr.subnet_of(ipaddress.ip_network("10.244.0.0/16")) and cidr.prefixlen == 24
        cidrs.add(cidr)
        assert hollow_cluster.plane.node_links.links[name].state is LinkState.CONNECTED
    assert len(cidrs) == 3  # every node its own block


async def test_configured_pod_cidrs_are_kept_and_skipped_by_others(tmp_path: Path) -> None:
    configured = {"node-1": "10.244.9.0/24", "node-3": "10.244.0.0/24"}
    async with hollow_cluster(tmp_path, nodes=3, pod_cidrs=configured) as cluster:

        async def cidrs() -> dict[str, str] | None:
            found = {}
            for name in ("node-1", "node-2", "node-3"):
                node = await cluster.node(name)
                if node is None or not (node.get("spec") or {}).get("podCIDR"):
                    return None
                found[name] = node["spec"]["podCIDR"]
            return found

        got = await eventually(cidrs, "three registered nodes", within=DEFAULT_TIMEOUT)
    # node-2 takes the lowest block no configured node names.
    assert got == {**configured, "node-2": "10.244.1.0/24"}


async def test_bound_pod_runs_with_an_ip_from_its_node(hollow_cluster: HollowCluster) -> None:
    await hollow_cluster.registry.create(POD, "default", make_pod("web", "node-2"))
    pod = await hollow_cluster.wait_pod_running("web")
    status = pod["status"]
    node = await hollow_cluster.node("node-2")
    assert node is not None
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])
    assert status["hostIP"] == "192.0.2.2"
    for kind in ("Ready", "ContainersReady", "Initialized", "PodScheduled"):
        c = condition(pod, kind)
        assert c is not None and c["status"] == "True", kind
    (cs,) = status["containerStatuses"]
    assert cs["ready"] is True and cs["started"] is True and cs["restartCount"] == 0
    assert "running" in cs["state"] and cs["containerID"].startswith("hollow://")
    assert hollow_cluster.agents["node-2"].running() == ["default/web"]


async def test_delete_is_graceful_and_the_agent_confirms(hollow_cluster: HollowCluster) -> None:
    registry = hollow_cluster.registry
    await registry.create(POD, "default", make_pod("job", "node-1"))
    await hollow_cluster.wait_pod_running("job")
    start = (await registry.list(POD, "default")).revision
    marked = await registry.delete(POD, "default", "job")
    # The delete only marks the pod: its node agent has to stop it first.
    assert marked.obj["metadata"]["deletionTimestamp"]
    assert marked.obj["metadata"]["deletionGracePeriodSeconds"] == 30
    await hollow_cluster.wait_pod_gone("job")
    seen: list[tuple[str, bool]] = []
    async with asyncio.timeout(5):
        async for ev in registry.watch(POD, "default", start):
            meta = ev.kv.obj["metadata"]
            seen.append((ev.type, bool(meta.get("deletionTimestamp"))))
            if ev.type == "DELETED":
                break
    assert seen[0] == ("MODIFIED", True) and seen[-1][0] == "DELETED"
    assert "default/job" not in hollow_cluster.agents["node-1"].running()
    killing = await eventually(
        lambda: _events(hollow_cluster, "Killing"), "a Killing event", within=DEFAULT_TIMEOUT
    )
    assert killing[0]["message"] == "Stopping container main"


async def test_endpoints_list_ready_pod_ips(hollow_cluster: HollowCluster) -> None:
    registry = hollow_cluster.registry
    ports = [{"name": "http", "containerPort": 8080}]
    for name, node in (("web-1", "node-1"), ("web-2", "node-2")):
        pod = make_pod(name, node, labels={"app": "web"}, ports=ports)
        await registry.create(POD, "default", pod)
    await registry.create(POD, "default", make_pod("other", "node-3", labels={"app": "db"}))
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    await registry.create(SERVICE, "default", service)
    ips = {
        n: (await hollow_cluster.wait_pod_running(n))["status"]["podIP"] for n in ("web-1", "web-2")
    }

    async def endpoints(ready: set[str], not_ready: set[str]) -> Obj | None:
        try:
            ep = (await registry.get(ENDPOINTS, "default", "web")).obj
        except Exception:
            return None
        subsets = ep.get("subsets") or []
        got_ready = {a["ip"] for s in subsets for a in s.get("addresses") or []}
        got_not = {a["ip"] for s in subsets for a in s.get("notReadyAddresses") or []}
        return ep if (got_ready, got_not) == (ready, not_ready) else None

    ep = await eventually(
        lambda: endpoints(set(ips.values()), set()), "two ready endpoints", within=DEFAULT_TIMEOUT
    )
    (subset,) = ep["subsets"]
    assert subset["ports"] == [{"port": 8080, "protocol": "TCP"}]
    by_ip = {a["ip"]: a for a in subset["addresses"]}
    assert by_ip[ips["web-1"]]["nodeName"] == "node-1"
    assert by_ip[ips["web-1"]]["targetRef"]["name"] == "web-1"
    assert by_ip[ips["web-1"]]["targetRef"]["kind"] == "Pod"

    # A failing readiness probe moves the pod to notReadyAddresses.
    await hollow_cluster.agents["node-2"].set_pod_ready("default", "web-2", False)
    await eventually(
        lambda: endpoints({ips["web-1"]}, {ips["web-2"]}), "web-2 not ready", within=DEFAULT_TIMEOUT
    )
    await hollow_cluster.agents["node-2"].set_pod_ready("default", "web-2", True)
    await eventually(
        lambda: endpoints(set(ips.values()), set()), "web-2 ready again", within=DEFAULT_TIMEOUT
    )
    # Deleting the service deletes its endpoints.
    await registry.delete(SERVICE, "default", "web")

    async def no_endpoints() -> bool:
        return not [
            kv
            for kv in (await registry.list(ENDPOINTS, "default")).items
            if kv.obj["metadata"]["name"] == "web"
        ]

    await eventually(no_endpoints, "the endpoints deleted", within=DEFAULT_TIMEOUT)


async def test_silent_node_is_tainted_and_its_pods_evicted(hollow_cluster: HollowCluster) -> None:
    registry = hollow_cluster.registry
    unreachable = "node.kubernetes.io/unreachable"
    await registry.create(POD, "default", make_pod("plain", "node-3"))
    patient = [
        {"key": unreachable, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}
    ]
    await registry.create(POD, "default", make_pod("patient", "node-3", tolerations=patient))
    forever = [{"key": unreachable, "operator": "Exists", "effect": "NoExecute"}]
    await registry.create(POD, "default", make_pod("stays", "node-3", tolerations=forever))
    await registry.create(POD, "default", make_pod("elsewhere", "node-1"))
    for name in ("plain", "patient", "stays", "elsewhere"):
        await hollow_cluster.wait_pod_running(name)

    hollow_cluster.agents["node-3"].heartbeating = False

    async def tainted() -> Obj | None:
        node = await hollow_cluster.node("node-3")
        assert node is not None
        ok = {(unreachable, "NoExecute"), (unreachable, "NoSchedule")} <= _taints(node)
        return node if ok else None

    node = await eventually(tainted, "the unreachable taints", within=DEFAULT_TIMEOUT)
    tainted_at = time.monotonic()
    ready = condition(node, "Ready")
    assert ready is not None and ready["status"] == "Unknown"
    assert ready["reason"] == "NodeStatusUnknown"
    assert ready["message"] == "Kubelet stopped posting node status."
    assert condition(node, "MemoryPressure")["status"] == "Unknown"  # type: ignore[index]
    assert await eventually(
        lambda: _events(hollow_cluster, "NodeNotReady"), "NodeNotReady", within=DEFAULT_TIMEOUT
    )

    await hollow_cluster.wait_pod_gone("plain")  # after the 1 s default toleration
    plain_gone = time.monotonic()
    await hollow_cluster.wait_pod_gone("patient")  # after its own 2 s
    patient_gone = time.monotonic()
    assert plain_gone - tainted_at >= 0.8
    assert patient_gone - tainted_at >= 1.8 and patient_gone > plain_gone
    stays = await hollow_cluster.pod("stays")
    assert stays is not None and not stays["metadata"].get("deletionTimestamp")
    # The controller marked it not ready: nobody vouches for it.
    assert condition(stays, "Ready")["status"] == "False"  # type: ignore[index]
    assert (await hollow_cluster.pod("elsewhere")) is not None
    evictions = await _events(hollow_cluster, "TaintManagerEviction")
    assert {e["involvedObject"]["name"] for e in evictions} == {"plain", "patient"}
    assert {e["message"] for e in evictions} == {
        "Marking for deletion Pod default/plain",
        "Marking for deletion Pod default/patient",
    }

    # Heartbeats come back: Ready again, taints gone, the surviving pod ready again.
    hollow_cluster.agents["node-3"].heartbeating = True

    async def recovered() -> bool:
        node = await hollow_cluster.node("node-3")
        assert node is not None
        c = condition(node, "Ready")
        return c is not None and c["status"] == "True" and not _taints(node)

    await eventually(recovered, "node-3 to recover", within=DEFAULT_TIMEOUT)


async def test_not_ready_node_gets_not_ready_taints(hollow_cluster: HollowCluster) -> None:
    hollow_cluster.agents["node-2"].node_ready = False
    not_ready = "node.kubernetes.io/not-ready"

    async def tainted() -> bool:
        node = await hollow_cluster.node("node-2")
        assert node is not None
        return {(not_ready, "NoSchedule"), (not_ready, "NoExecute")} <= _taints(node)

    await eventually(tainted, "the not-ready taints", within=DEFAULT_TIMEOUT)
    node = await hollow_cluster.node("node-2")
    assert node is not None and condition(node, "Ready")["status"] == "False"  # type: ignore[index]
    hollow_cluster.agents["node-2"].node_ready = True

    async def clean() -> bool:
        node = await hollow_cluster.node("node-2")
        return node is not None and not _taints(node)

    await eventually(clean, "the taints removed", within=DEFAULT_TIMEOUT)


async def test_replicaset_pods_are_replaced_on_other_nodes(hollow_cluster: HollowCluster) -> None:
    """The scheduler and the ReplicaSet controller put evicted pods elsewhere."""
    registry = hollow_cluster.registry
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 6,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": "pilothouse/busybox"}]},
            },
        },
    }
    await registry.create(REPLICASET, "default", rs)

    async def placement() -> dict[str, int] | None:
        running = [
            p
            for p in await hollow_cluster.pods()
            if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        ]
        if len(running) != 6:
            return None
        counts: dict[str, int] = {}
        for p in running:
            counts[p["spec"]["nodeName"]] = counts.get(p["spec"]["nodeName"], 0) + 1
        return counts

    before = await eventually(placement, "6 replicas running", within=DEFAULT_TIMEOUT)
    victim = max(before, key=lambda n: before[n])
    hollow_cluster.agents[victim].heartbeating = False

    async def moved() -> dict[str, int] | None:
        counts = await placement()
        return counts if counts is not None and victim not in counts else None

    after = await eventually(moved, f"the replicas to leave {victim}", within=30)
    assert sum(after.values()) == 6


async def _cli(
    capsys: pytest.CaptureFixture[str], cluster: HollowCluster, *argv: str
) -> tuple[int, str, str]:
    args = cli.build_parser().parse_args([*argv, "--server", cluster.socket])
    code = await args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


async def test_cordon_and_drain(
    hollow_cluster: HollowCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = hollow_cluster.registry
    for name in ("a", "b", "c"):
        await registry.create(POD, "default", make_pod(name, "node-1"))
    mirror = make_pod("static", "node-1")
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    await registry.create(POD, "default", mirror)
    daemon = make_pod("agent-x", "node-1")
    daemon["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "name": "agent",
            "uid": "d5",
            "controller": True,
        }
    ]
    await registry.create(POD, "default", daemon)
    await registry.create(POD, "default", make_pod("other", "node-2"))
    for name in ("a", "b", "c", "static", "agent-x", "other"):
        await hollow_cluster.wait_pod_running(name)

    code, out, _ = await _cli(capsys, hollow_cluster, "cordon", "node-3")
    assert (code, out) == (0, "node/node-3 cordoned\n")
    node = await hollow_cluster.node("node-3")
    assert node is not None and node["spec"]["unschedulable"] is True
    code, out, _ = await _cli(capsys, hollow_cluster, "uncordon", "node-3")
    assert (code, out) == (0, "node/node-3 uncordoned\n")
    node = await hollow_cluster.node("node-3")
    assert node is not None and not node["spec"].get("unschedulable")

    # DaemonSet pods stop a drain unless told to leave them.
    code, _, err = await _cli(capsys, hollow_cluster, "drain", "node-1", "--timeout", "20s")
    assert code == 1 and "--ignore-daemonsets" in err and "default/agent-x" in err
    code, out, err = await _cli(
        capsys, hollow_cluster, "drain", "node-1", "--ignore-daemonsets", "--timeout", "20s"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "node/node-1 already cordoned"
    assert {ln for ln in lines if ln.startswith("evicting")} == {
        f"evicting pod default/{n}" for n in "abc"
    }
    assert {ln for ln in lines if ln.endswith("evicted")} == {f"pod/{n} evicted" for n in "abc"}
    assert lines[-1] == "node/node-1 drained"
    assert "ignoring DaemonSet-managed Pods: default/agent-x" in err
    remaining = sorted(p["metadata"]["name"] for p in await hollow_cluster.pods())
    assert remaining == ["agent-x", "other", "static"]
    node = await hollow_cluster.node("node-1")
    assert node is not None and node["spec"]["unschedulable"] is True


async def test_drain_times_out_when_pods_do_not_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with hollow_cluster(tmp_path, nodes=1) as cluster:
        await cluster.wait_nodes_ready()
        await cluster.registry.create(POD, "default", make_pod("stuck", "node-1"))
        await cluster.wait_pod_running("stuck")
        cluster.transports["node-1"].refuse = True  # nobody can confirm it stopped
        await cluster.transports["node-1"].cut()
        code, out, err = await _cli(capsys, cluster, "drain", "node-1", "--timeout", "0.5s")
        assert code == 1
        assert "evicting pod default/stuck" in out
        assert "timed out after 0.5s" in err and "default/stuck" in err


async def test_eviction_api(hollow_cluster: HollowCluster) -> None:
    await hollow_cluster.registry.create(POD, "default", make_pod("victim", "node-1"))
    await hollow_cluster.wait_pod_running("victim")
    async with hollow_cluster.client() as client:
        path = client.path(POD, "default", "victim", "eviction")
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "victim"}}
        status = await client.request("POST", path, body=body)
        assert status["status"] == "Success" and status["code"] == 201
    await hollow_cluster.wait_pod_gone("victim")


async def test_link_reconnects_after_a_cut(hollow_cluster: HollowCluster) -> None:
    await hollow_cluster.registry.create(POD, "default", make_pod("survivor", "node-1"))
    first = await hollow_cluster.wait_pod_running("survivor")
    link = hollow_cluster.plane.node_links.links["node-1"]
    transport = hollow_cluster.transports["node-1"]
    transport.refuse = True
    await transport.cut()
    await eventually(
        lambda: link.state is LinkState.BACKOFF and "refused" in link.last_error,
        "the link to back off",
        within=DEFAULT_TIMEOUT,
    )
    sessions = link.sessions
    transport.refuse = False
    await eventually(
        lambda: link.sessions > sessions and link.state is LinkState.CONNECTED,
        "the link to reconnect",
        within=DEFAULT_TIMEOUT,
    )
    # The pod kept running; the new session sent the desired set again.
    await hollow_cluster.registry.create(POD, "default", make_pod("newcomer", "node-1"))
    await hollow_cluster.wait_pod_running("newcomer")
    pod = await hollow_cluster.pod("survivor")
    assert pod is not None and pod["status"]["podIP"] == first["status"]["podIP"]


async def test_version_mismatch_is_reported(tmp_path: Path) -> None:
    async def old_agent(reader: Reader, writer: Writer) -> None:
        peer = Peer(reader, writer, name="old agent")

        async def hello(params: Params) -> Obj:
            return {"hostname": "old", "protocolVersion": 0, "agentVersion": "0.0.1"}

        peer.on("hello", hello)
        await peer.run()

    async with hollow_cluster(tmp_path, nodes=0) as cluster:
        link = cluster.plane.node_links.add("old", InProcessTransport(old_agent, "old"))
        await eventually(
            lambda: "protocol version mismatch" in link.last_error,
            "the mismatch",
            within=DEFAULT_TIMEOUT,
        )
        assert "0.0.1" in link.last_error
        assert await cluster.node("old") is None  # never registered


async def test_standalone_hollow_agent_over_stdio(tmp_path: Path) -> None:
    """`python3 -m agent.hollow` speaks the protocol on stdin/stdout, as over SSH."""
    argv = [
        sys.executable,
        "-m",
        "agent.hollow",
        "--name",
        "stdio",
        "--heartbeat-interval",
        "0.1",
        "--pods",
        "7",
    ]
    async with hollow_cluster(tmp_path, nodes=0) as cluster:
        cluster.plane.node_links.add("stdio", CommandTransport(argv, name="stdio"))
        node = await cluster.wait_node_ready("stdio", within=20)
        assert node["status"]["capacity"]["pods"] == "7"
        await cluster.registry.create(POD, "default", make_pod("p", "stdio"))
        pod = await cluster.wait_pod_running("p")
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(
            node["spec"]["podCIDR"]
        )
        await cluster.registry.delete(POD, "default", "p")
        await cluster.wait_pod_gone("p")


async def test_nodes_list_via_api(hollow_cluster: HollowCluster) -> None:
    listed = await hollow_cluster.registry.list(NODE, None)
    assert sorted(kv.obj["metadata"]["name"] for kv in listed.items) == [
        "node-1",
        "node-2",
        "node-3",
    ]


async def test_pods_nobody_can_stop_are_collected(hollow_cluster: HollowCluster) -> None:
    """A terminating pod on an unreachable node goes once its grace has passed;
    a pod bound to a node that does not exist goes after the grace period."""
    registry = hollow_cluster.registry
    forever = [{"operator": "Exists", "effect": "NoExecute"}]
    pod = make_pod("stopping", "node-3", tolerations=forever, terminationGracePeriodSeconds=1)
    await registry.create(POD, "default", pod)
    await hollow_cluster.wait_pod_running("stopping")
    await registry.create(POD, "default", make_pod("orphan", "ghost"))
    hollow_cluster.agents["node-3"].heartbeating = False
    hollow_cluster.transports["node-3"].refuse = True
    await hollow_cluster.transports["node-3"].cut()  # the agent can no longer confirm anything
    await registry.delete(POD, "default", "stopping")
    marked = await hollow_cluster.pod("stopping")
    assert marked is not None and marked["metadata"]["deletionTimestamp"]
    await hollow_cluster.wait_pod_gone("stopping")
    await hollow_cluster.wait_pod_gone("orphan")
    reasons = {
        e["involvedObject"]["name"]: e["reason"]
        for e in await _events(hollow_cluster, "NodeUnreachable")
        + await _events(hollow_cluster, "NodeDeleted")
    }
    assert reasons == {"stopping": "NodeUnreachable", "orphan": "NodeDeleted"}


async def test_deleted_node_registers_again(hollow_cluster: HollowCluster) -> None:
    before = await hollow_cluster.node("node-2")
    assert before is not None
    await hollow_cluster.registry.delete(NODE, None, "node-2")
    after = await hollow_cluster.wait_node_ready("node-2")
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"]["podCIDR"] == before["spec"]["podCIDR"]  # the agent keeps its CIDR
