"""The pod status the kubelet would report, from what the runtime holds
(agent/pods/status.py). No containerd needed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from agent.cri import api_pb2 as pb
from agent.pods import status as status_module
from agent.pods.status import Observed, PodStatusBuilder, gone_status, wants_restart

Obj = dict[str, Any]
SECOND = 10**9
T0 = 1_700_000_000 * SECOND  # 2023-11-14T22:13:20Z


@dataclass
class Probe:
    ready: bool = True
    started: bool = True


def _pod(restart: str = "Always", **spec: Any) -> Obj:
    return {
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {
            "restartPolicy": restart,
            "containers": [{"name": "main", "image": "busybox"}],
            **spec,
        },
    }


def _obs(*runs: tuple[str, pb.ContainerState, int], sandbox: bool = True) -> Observed:
    """Runs of container "main", newest first: (id, state, exit code)."""
    sb = pb.PodSandbox(id="sb", state=pb.SANDBOX_READY) if sandbox else None
    obs = Observed(sandbox=sb, pod_ip="10.244.0.5" if sandbox else "")
    for i, (cid, state, code) in enumerate(runs):
        attempt = len(runs) - 1 - i
        c = pb.Container(
            id=cid, state=state, metadata=pb.ContainerMetadata(name="main", attempt=attempt)
        )
        obs.containers.setdefault("main", []).append(c)
        done = state == pb.CONTAINER_EXITED
        obs.statuses[cid] = pb.ContainerStatus(
            id=cid,
            state=state,
            started_at=T0 + attempt * SECOND,
            finished_at=T0 + attempt * SECOND + SECOND // 2 if done else 0,
            exit_code=code,
        )
    return obs


def _conditions(status: Obj) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_a_running_ready_container() -> None:
    b = PodStatusBuilder(start_time="2023-11-14T22:13:20Z")
    obs = _obs(("c1", pb.CONTAINER_RUNNING, 0))
    status = b.build(_pod(), obs, node_ip="192.0.2.1", probes={"c1": Probe()})
    assert status["phase"] == "Running"
    assert _conditions(status) == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    (cs,) = status["containerStatuses"]
    assert cs["containerID"] == "containerd://c1"
    assert cs["imageID"] == "docker.io/library/busybox:latest"
    assert cs["state"] == {"running": {"startedAt": "2023-11-14T22:13:20Z"}}
    assert (cs["ready"], cs["started"], cs["restartCount"]) == (True, True, 0)
    assert status["podIP"] == "10.244.0.5" and status["hostIPs"] == [{"ip": "192.0.2.1"}]
    assert status["qosClass"] == "BestEffort"


def test_a_failing_readiness_probe() -> None:
    b = PodStatusBuilder(start_time="", runtime="hollow")
    obs = _obs(("u1/main", pb.CONTAINER_RUNNING, 0))
    status = b.build(_pod(), obs, node_ip="", probes={"u1/main": Probe(ready=False)})
    assert status["phase"] == "Running"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [main]"
    assert status["containerStatuses"][0]["containerID"] == "hollow://u1/main"
    assert "hostIPs" not in status


def test_crash_loop_back_off() -> None:
    b = PodStatusBuilder(start_time="")
    obs = _obs(("c2", pb.CONTAINER_EXITED, 1), ("c1", pb.CONTAINER_EXITED, 1))
    status = b.build(
        _pod(), obs, node_ip="", in_backoff={"main": 9.0}, backoff_delay=lambda name: 20.0
    )
    (cs,) = status["containerStatuses"]
    assert cs["state"]["waiting"] == {
        "reason": "CrashLoopBackOff",
        "message": "back-off 20s restarting failed container=main pod=web_default(u1)",
    }
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["restartCount"] == 1
    assert status["phase"] == "Running"


@pytest.mark.parametrize(("code", "phase"), [(0, "Succeeded"), (3, "Failed")])
def test_a_finished_pod_keeps_its_ip(code: int, phase: str) -> None:
    b = PodStatusBuilder(start_time="")
    b.build(_pod("Never"), _obs(("c1", pb.CONTAINER_RUNNING, 0)), node_ip="")
    status = b.build(
        _pod("Never"), _obs(("c1", pb.CONTAINER_EXITED, code), sandbox=False), node_ip=""
    )
    assert status["phase"] == phase
    assert status["podIP"] == "10.244.0.5"  # from the last pass with a sandbox
    term = status["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == code
    assert term["reason"] == ("Completed" if code == 0 else "Error")
    assert term["finishedAt"] == "2023-11-14T22:13:20Z"


def test_waiting_for_a_sandbox() -> None:
    b = PodStatusBuilder(start_time="")
    status = b.build(
        _pod(), Observed(), node_ip="", waiting={"main": ("ErrImagePull", "no such image")}
    )
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "ErrImagePull", "message": "no such image"}
    }
    assert "podIP" not in status


def test_init_containers_hold_the_others() -> None:
    pod = _pod(initContainers=[{"name": "setup", "image": "busybox"}])
    b = PodStatusBuilder(start_time="")
    status = b.build(pod, Observed(), node_ip="", init_plan="start")
    assert status["phase"] == "Pending"
    assert _conditions(status)["Initialized"] == "False"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert status["initContainerStatuses"][0]["name"] == "setup"


def test_transition_times_move_only_on_a_change(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ["2023-11-14T22:13:20Z"]
    monkeypatch.setattr(status_module, "now_rfc3339", lambda: clock[0])
    b = PodStatusBuilder(start_time="")
    obs = _obs(("c1", pb.CONTAINER_RUNNING, 0))
    probe = Probe()

    def times() -> dict[str, str]:
        status = b.build(_pod(), obs, node_ip="", probes={"c1": probe})
        return {c["type"]: c["lastTransitionTime"] for c in status["conditions"]}

    first = times()
    clock[0] = "2023-11-14T22:14:00Z"
    assert times() == first
    probe.ready = False
    after = times()
    assert after["Ready"] == after["ContainersReady"] == "2023-11-14T22:14:00Z"
    assert after["PodScheduled"] == first["PodScheduled"]


def test_restart_policies() -> None:
    ok, failed = pb.ContainerStatus(exit_code=0), pb.ContainerStatus(exit_code=1)
    assert wants_restart(_pod("Always"), ok) and wants_restart(_pod("Always"), failed)
    assert not wants_restart(_pod("OnFailure"), ok) and wants_restart(_pod("OnFailure"), failed)
    assert not wants_restart(_pod("Never"), failed)
    assert not wants_restart(_pod("Always"), ok, init=True)
    assert wants_restart(_pod("Always"), failed, init=True)
    assert not wants_restart(_pod("Never"), failed, init=True)


def test_gone_status_confirms_termination() -> None:
    params = gone_status(_pod(), "192.0.2.1")
    assert params["terminated"] is True
    assert (params["namespace"], params["name"], params["uid"]) == ("default", "web", "u1")
    status = params["status"]
    assert status["phase"] == "Succeeded" and status["hostIP"] == "192.0.2.1"
    assert _conditions(status)["Ready"] == "False"
    assert status["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
