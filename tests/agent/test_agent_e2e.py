"""The real agent against a real containerd (private, in a test netns)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agent.cri import api_pb2 as pb
from agent.cri.client import CRIClient

from .conftest import AgentProc, pod
from .node import Node, in_netns

pytestmark = pytest.mark.e2e

BUSYBOX = "pilothouse/busybox"


def busybox(command: list[str], name: str = "c", **fields: Any) -> dict[str, Any]:
    """A busybox container running `command`."""
    return {"name": name, "image": BUSYBOX, "command": command, **fields}


def cstatus(a: AgentProc, uid: str, i: int = 0) -> dict[str, Any]:
    s = a.status.get(uid)
    if not s or not s["status"].get("containerStatuses"):
        return {}
    return dict(s["status"]["containerStatuses"][i])


def phase(a: AgentProc, uid: str) -> str:
    s = a.status.get(uid)
    return str(s["status"]["phase"]) if s else ""


def http_get(node: Node, ip: str, port: int) -> str:
    def fetch() -> str:
        with socket.create_connection((ip, port), timeout=5) as s:
            s.sendall(f"GET / HTTP/1.0\r\nHost: {ip}\r\n\r\n".encode())
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    return str(in_netns(node, fetch))


async def container_pid(node: Node, container_id: str) -> int:
    cri = CRIClient(str(node.socket))
    try:
        r = await cri.runtime.ContainerStatus(
            pb.ContainerStatusRequest(container_id=container_id, verbose=True), timeout=10
        )
        return int(json.loads(r.info["info"])["pid"])
    finally:
        await cri.close()


def ready(a: AgentProc, uid: str) -> bool:
    s = a.status.get(uid)
    if not s:
        return False
    conds = {c["type"]: c["status"] for c in s["status"]["conditions"]}
    return s["status"]["phase"] == "Running" and conds.get("Ready") == "True"


async def test_httpd_pod_serves_and_restarts_when_killed(node: Node, agent: AgentProc) -> None:
    p = pod(
        "web",
        [
            busybox(
                ["httpd", "-f", "-p", "8080", "-h", "/var/www"],
                name="httpd",
                ports=[{"containerPort": 8080, "name": "http"}],
                readinessProbe={"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 1},
                livenessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 2},
                resources={"limits": {"cpu": "200m", "memory": "64Mi"}},
            )
        ],
    )
    uid = p["metadata"]["uid"]
    t0 = time.monotonic()
    assert await agent.sync(p) == {"pods": 1}
    await agent.wait(lambda: ready(agent, uid), 30, "web Ready")
    ready_s = time.monotonic() - t0
    st = agent.status[uid]["status"]
    ip = st["podIP"]
    assert ip.startswith("10.244.250.")
    assert st["qosClass"] == "Guaranteed"
    assert cstatus(agent, uid)["restartCount"] == 0
    assert "pilothouse busybox" in http_get(node, ip, 8080)
    print(f"pod Ready in {ready_s:.2f}s (readiness probe period 1s)")

    # Kill the container's process from the host: it restarts, restartCount 1.
    cid = cstatus(agent, uid)["containerID"].removeprefix("containerd://")
    os.kill(await container_pid(node, cid), signal.SIGKILL)
    await agent.wait(
        lambda: cstatus(agent, uid).get("restartCount") == 1 and ready(agent, uid),
        30,
        "restart after kill",
    )
    cs = cstatus(agent, uid)
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert cs["containerID"] != f"containerd://{cid}"
    assert "pilothouse busybox" in http_get(node, agent.status[uid]["status"]["podIP"], 8080)


async def test_crashloop_backoff_grows_and_logs_show_output(agent: AgentProc) -> None:
    p = pod(
        "crash",
        [busybox(["sh", "-c", "echo boom; echo oops >&2; exit 1"])],
    )
    uid = p["metadata"]["uid"]
    await agent.sync(p)
    await agent.wait(lambda: (cstatus(agent, uid).get("restartCount") or 0) >= 4, 40, "4 restarts")
    # When each restart was first seen: the gaps grow (base 1 s, doubling).
    seen: dict[int, float] = {}
    reasons = set()
    for t, params in agent.history:
        if params["uid"] != uid:
            continue
        cs = params["status"]["containerStatuses"][0]
        seen.setdefault(cs["restartCount"], t)
        reasons.add(cs["state"].get("waiting", {}).get("reason"))
    gaps = [seen[i + 1] - seen[i] for i in range(1, 4)]
    print("restart gaps:", [f"{g:.2f}" for g in gaps])
    assert "CrashLoopBackOff" in reasons
    assert gaps[2] > gaps[0] + 1.0, gaps
    cs = cstatus(agent, uid)
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert phase(agent, uid) == "Running"
    waiting = [
        params["status"]["containerStatuses"][0]["state"].get("waiting", {})
        for _, params in agent.history
        if params["uid"] == uid
    ]
    assert any("back-off" in w.get("message", "") for w in waiting)

    # The newest attempt may have just started: wait for its output.
    for _ in range(50):
        logs = await agent.request("logs", {"namespace": "default", "name": "crash"})
        if logs["data"].count("\n") == 2:
            break
        await asyncio.sleep(0.1)
    assert logs["data"] in ("boom\noops\n", "oops\nboom\n")
    prev = await agent.request("logs", {"namespace": "default", "name": "crash", "previous": True})
    assert "boom\n" in prev["data"]
    # Only the current and the previous attempt keep their log files.
    logs_dir = next(agent.state_dir.glob(f"pods/default_crash_{uid}")) / "c"
    assert len(list(logs_dir.iterdir())) <= 3  # a restart may be under way
    tail = await agent.request(
        "logs", {"namespace": "default", "name": "crash", "tailLines": 1, "timestamps": True}
    )
    assert tail["data"].count("\n") == 1 and tail["data"][:4].isdigit()


async def test_restart_policy_never_completes(node: Node, agent: AgentProc) -> None:
    ok = pod("done", [busybox(["true"])], restartPolicy="Never")
    bad = pod("failed", [busybox(["false"])], restartPolicy="OnFailure")
    never_bad = pod("never-bad", [busybox(["false"])], restartPolicy="Never")
    await agent.sync(ok, bad, never_bad)
    uid_ok, uid_bad, uid_nb = (x["metadata"]["uid"] for x in (ok, bad, never_bad))
    await agent.wait(lambda: phase(agent, uid_ok) == "Succeeded", 20, "Succeeded")
    await agent.wait(lambda: phase(agent, uid_nb) == "Failed", 20, "Failed")
    await agent.wait(
        lambda: (cstatus(agent, uid_bad).get("restartCount") or 0) >= 1, 20, "OnFailure"
    )
    term = cstatus(agent, uid_ok)["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (0, "Completed")
    # A finished pod gives its sandbox (and IP) back but keeps its logs.
    cri = CRIClient(str(node.socket))
    try:
        for _ in range(30):
            if not await cri.list_pod_sandboxes({"io.kubernetes.pod.uid": uid_ok}, ready_only=True):
                break
            await asyncio.sleep(0.1)
        assert not await cri.list_pod_sandboxes({"io.kubernetes.pod.uid": uid_ok}, ready_only=True)
    finally:
        await cri.close()
    assert agent.status[uid_ok]["status"]["podIP"]
    assert cstatus(agent, uid_nb)["state"]["terminated"]["exitCode"] == 1


async def test_image_pull_failure_reports_errimagepull(agent: AgentProc) -> None:
    p = pod("nopull", [{"name": "c", "image": "127.0.0.1:1/nope/nothing:v1"}])
    uid = p["metadata"]["uid"]
    await agent.sync(p)

    def reasons() -> set[str]:
        return {
            params["status"]["containerStatuses"][0]["state"].get("waiting", {}).get("reason", "")
            for _, params in agent.history
            if params["uid"] == uid
        }

    await agent.wait(lambda: {"ErrImagePull", "ImagePullBackOff"} <= reasons(), 30, "pull errors")
    waiting = cstatus(agent, uid)["state"]["waiting"]
    assert "127.0.0.1:1" in waiting["message"]
    assert phase(agent, uid) == "Pending"


async def test_exec_and_liveness_probe(agent: AgentProc) -> None:
    p = pod(
        "probed",
        [
            busybox(
                ["sh", "-c", "touch /tmp/alive; sleep 3600"],
                env=[{"name": "GREETING", "value": "hi"}],
                livenessProbe={
                    "exec": {"command": ["cat", "/tmp/alive"]},
                    "periodSeconds": 1,
                    "failureThreshold": 2,
                },
            )
        ],
    )
    uid = p["metadata"]["uid"]
    await agent.sync(p)
    await agent.wait(lambda: ready(agent, uid), 30, "Ready")
    r = await agent.request(
        "exec",
        {"namespace": "default", "name": "probed", "command": ["sh", "-c", "echo $GREETING"]},
    )
    assert r == {"exitCode": 0, "stdout": "hi\n", "stderr": ""}
    await agent.request(
        "exec", {"namespace": "default", "name": "probed", "command": ["rm", "/tmp/alive"]}
    )
    await agent.wait(lambda: cstatus(agent, uid).get("restartCount") == 1, 30, "liveness restart")
    stats = await agent.request("stats", {})
    assert any(ps["uid"] == uid for ps in stats["pods"])
    assert agent.node_status and agent.node_status[-1]["capacity"]["cpu"] == str(os.cpu_count())


async def test_restarted_agent_adopts_running_containers(node: Node, agent: AgentProc) -> None:
    probe = {"exec": {"command": ["true"]}, "periodSeconds": 1}
    p = pod(
        "adopt",
        [busybox(["sleep", "3600"], readinessProbe=probe)],
    )
    uid = p["metadata"]["uid"]
    await agent.sync(p)
    await agent.wait(lambda: ready(agent, uid), 30, "Ready")
    # One restart first, so that restartCount is not trivially 0.
    cid = cstatus(agent, uid)["containerID"].removeprefix("containerd://")
    os.kill(await container_pid(node, cid), signal.SIGKILL)
    await agent.wait(lambda: cstatus(agent, uid).get("restartCount") == 1 and ready(agent, uid), 30)
    before = cstatus(agent, uid)

    before_start = agent.status[uid]["status"]["startTime"]
    await agent.kill()
    agent.status.clear()
    t_restart = time.monotonic()
    await agent.start()
    await agent.sync(p)
    await agent.wait(lambda: ready(agent, uid), 30, "Ready after agent restart")
    after = cstatus(agent, uid)
    # No blip: the first status after the restart already says Ready.
    assert ready(agent, uid) and len([h for h in agent.history if h[0] > t_restart]) >= 1
    first = next(params for t, params in agent.history if t > t_restart and params["uid"] == uid)
    assert {c["type"]: c["status"] for c in first["status"]["conditions"]}["Ready"] == "True"
    started = [
        datetime.fromisoformat(x.replace("Z", "+00:00"))
        for x in (first["status"]["startTime"], before_start)
    ]
    assert abs((started[0] - started[1]).total_seconds()) <= 1
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == 1
    assert after["state"]["running"]["startedAt"] == before["state"]["running"]["startedAt"]


async def test_deleted_pod_stops_gracefully(node: Node, agent: AgentProc, tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = pod(
        "graceful",
        [
            busybox(
                [
                    "sh",
                    "-c",
                    "trap 'echo bye; exit 0' TERM; while true; do sleep 0.2; done",
                ],
                volumeMounts=[{"name": "out", "mountPath": "/out"}],
                lifecycle={
                    "postStart": {"exec": {"command": ["sh", "-c", "echo started > /out/post"]}},
                    "preStop": {"exec": {"command": ["sh", "-c", "echo stopping > /out/pre"]}},
                },
            )
        ],
        volumes=[{"name": "out", "hostPath": {"path": str(out), "type": "DirectoryOrCreate"}}],
    )
    uid = p["metadata"]["uid"]
    await agent.sync(p)
    await agent.wait(lambda: ready(agent, uid), 30, "Ready")
    p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    p["metadata"]["deletionGracePeriodSeconds"] = 5
    t0 = time.monotonic()
    await agent.sync(p)
    await agent.wait(lambda: agent.status[uid].get("terminated"), 20, "terminated")
    took = time.monotonic() - t0
    term = cstatus(agent, uid)["state"]["terminated"]
    assert term["exitCode"] == 0, term  # it exited on TERM; SIGKILL would give 137
    assert took < 5, took
    assert (out / "post").read_text() == "started\n"
    assert (out / "pre").read_text() == "stopping\n"
    cri = CRIClient(str(node.socket))
    try:
        assert not await cri.list_pod_sandboxes({"io.kubernetes.pod.uid": uid})
    finally:
        await cri.close()


async def test_logs_follow_streams_until_exit(agent: AgentProc) -> None:
    p = pod(
        "talker",
        [busybox(["sh", "-c", "echo line1; sleep 1; echo line2; sleep 0.5; echo line3"])],
        restartPolicy="Never",
    )
    uid = p["metadata"]["uid"]
    await agent.sync(p)
    await agent.wait(lambda: cstatus(agent, uid).get("state", {}).get("running"), 20, "running")
    r = await agent.request("logs", {"namespace": "default", "name": "talker", "follow": True})
    stream = r["stream"]

    def done() -> bool:
        return any(m.get("eof") for m in agent.streams.get(stream, []))

    await agent.wait(done, 20, "eof on the log stream")
    text = r["data"] + "".join(m["data"] for m in agent.streams[stream])
    assert text == "line1\nline2\nline3\n"
    await agent.wait(lambda: phase(agent, uid) == "Succeeded", 10, "Succeeded")


async def test_memory_limit_oomkilled(agent: AgentProc) -> None:
    p = pod(
        "hog",
        [
            busybox(
                [
                    "sh",
                    "-c",
                    "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived",
                ],
                resources={"limits": {"memory": "16Mi"}},
            )
        ],
        restartPolicy="Never",
    )
    uid = p["metadata"]["uid"]
    await agent.sync(p)
    await agent.wait(lambda: phase(agent, uid) == "Failed", 30, "Failed")
    term = cstatus(agent, uid)["state"]["terminated"]
    assert term["reason"] == "OOMKilled", term
    assert term["exitCode"] == 137


async def test_init_containers_run_first_and_share_an_emptydir(agent: AgentProc) -> None:
    p = pod(
        "inits",
        [
            busybox(
                ["sh", "-c", "cat /work/a /work/b; sleep 3600"],
                name="main",
                volumeMounts=[{"name": "work", "mountPath": "/work"}],
            )
        ],
        initContainers=[
            busybox(
                ["sh", "-c", f"echo {x} > /work/{x}"],
                name=f"init-{x}",
                volumeMounts=[{"name": "work", "mountPath": "/work"}],
            )
            for x in ("a", "b")
        ],
        volumes=[{"name": "work", "emptyDir": {}}],
    )
    uid = p["metadata"]["uid"]
    await agent.sync(p)
    await agent.wait(lambda: ready(agent, uid), 30, "Ready")
    st = agent.status[uid]["status"]
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds["Initialized"] == "True"
    inits = st["initContainerStatuses"]
    assert [i["state"]["terminated"]["reason"] for i in inits] == ["Completed", "Completed"]
    for _ in range(30):
        logs = await agent.request("logs", {"namespace": "default", "name": "inits"})
        if logs["data"]:
            break
        await asyncio.sleep(0.1)
    assert logs["data"] == "a\nb\n"
    seen_pending = [
        params["status"]["phase"] for _, params in agent.history if params["uid"] == uid
    ]
    assert seen_pending[0] == "Pending"


async def test_interactive_exec_session(agent: AgentProc) -> None:
    p = pod("shell", [busybox(["sleep", "3600"])])
    uid = p["metadata"]["uid"]
    await agent.sync(p)
    await agent.wait(lambda: ready(agent, uid), 30, "Ready")
    r = await agent.request(
        "exec",
        {
            "namespace": "default",
            "name": "shell",
            "command": ["sh"],
            "session": "s1",
            "stdin": True,
            "tty": True,
            "cols": 100,
            "rows": 30,
        },
    )
    assert r == {"session": "s1", "stdinClose": False}  # containerd 1.6 speaks v4
    assert agent.peer is not None

    async def send(text: str) -> None:
        assert agent.peer is not None
        data = base64.b64encode(text.encode()).decode()
        await agent.peer.notify("exec_io", {"session": "s1", "data": data})

    def output() -> str:
        return b"".join(
            base64.b64decode(m.get("data", "")) for m in agent.io.get("s1", [])
        ).decode()

    await send("echo hi-$((40+2)); stty size\n")
    await agent.wait(lambda: "hi-42" in output() and "30 100" in output(), 15, "shell output")
    await agent.peer.notify("exec_io", {"session": "s1", "resize": {"cols": 90, "rows": 20}})
    await send("stty size; exit 3\n")
    await agent.wait(lambda: "exit" in agent.io.get("s1", [{}])[-1], 15, "the exit")
    assert "20 90" in output()
    assert agent.io["s1"][-1]["exit"] == {"exitCode": 3}


async def test_host_network_pod_uses_the_node_address(node: Node, agent: AgentProc) -> None:
    await agent.request("network_config", {"podCIDR": "10.244.250.0/24", "nodeIP": "127.0.0.1"})
    p = pod(
        "hostnet",
        [busybox(["httpd", "-f", "-p", "18080", "-h", "/var/www"])],
        hostNetwork=True,
    )
    uid = p["metadata"]["uid"]
    await agent.sync(p)
    await agent.wait(lambda: ready(agent, uid), 30, "Ready")
    st = agent.status[uid]["status"]
    assert st["podIP"] == st["hostIP"] == "127.0.0.1"
    for _ in range(20):  # httpd may need a moment to listen
        try:
            assert "pilothouse busybox" in http_get(node, "127.0.0.1", 18080)
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("httpd on the node network did not answer")
