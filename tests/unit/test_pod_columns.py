"""The pod STATUS and RESTARTS columns, as kubectl's printer makes them."""

from __future__ import annotations

from typing import Any

import pytest

from control.objects.columns import pod_status, rows


def _pod(init: list[dict[str, Any]], main: list[dict[str, Any]], **status: Any) -> dict[str, Any]:
    initialized = all("terminated" in s and s["terminated"].get("exitCode") == 0 for s in init)
    return {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "initContainers": [{"name": f"i{i}"} for i in range(len(init))],
            "containers": [{"name": f"c{i}"} for i in range(len(main))],
        },
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "Initialized", "status": "True" if initialized else "False"}],
            "initContainerStatuses": [
                {"name": f"i{i}", "state": s, "restartCount": s.get("restarts", 0)}
                for i, s in enumerate(init)
            ],
            "containerStatuses": [
                {"name": f"c{i}", "state": s, "ready": "running" in s} for i, s in enumerate(main)
            ],
            **status,
        },
    }


OK = {"terminated": {"exitCode": 0, "reason": "Completed"}}
RUNNING = {"running": {}}
INITIALIZING = {"waiting": {"reason": "PodInitializing"}}


@pytest.mark.parametrize(
    ("init", "main", "want"),
    [
        ([INITIALIZING, INITIALIZING], [INITIALIZING], "Init:0/2"),
        ([OK, RUNNING], [INITIALIZING], "Init:1/2"),
        (
            [OK, {"waiting": {"reason": "CrashLoopBackOff"}, "restarts": 3}],
            [INITIALIZING],
            "Init:CrashLoopBackOff",
        ),
        ([{"terminated": {"exitCode": 1, "reason": "Error"}}], [INITIALIZING], "Init:Error"),
        ([{"terminated": {"exitCode": 2}}], [INITIALIZING], "Init:ExitCode:2"),
        (
            [{"waiting": {"reason": "CreateContainerConfigError"}}],
            [INITIALIZING],
            "Init:CreateContainerConfigError",
        ),
        (
            [OK, OK],
            [{"waiting": {"reason": "CreateContainerConfigError"}}],
            "CreateContainerConfigError",
        ),
        ([OK], [RUNNING], "Pending"),
        ([], [{"terminated": {"exitCode": 137, "reason": "OOMKilled"}}], "OOMKilled"),
        ([], [OK, RUNNING], "NotReady"),  # no Ready condition
    ],
)
def test_pod_status_column(init: list[Any], main: list[Any], want: str) -> None:
    assert pod_status(_pod(init, main)) == want


def test_a_completed_container_beside_a_running_one_is_running_when_ready() -> None:
    pod = _pod([], [OK, RUNNING], phase="Running")
    pod["status"]["conditions"].append({"type": "Ready", "status": "True"})
    assert pod_status(pod) == "Running"


def test_terminating_only_while_not_finished() -> None:
    pod = _pod([], [RUNNING], phase="Running")
    pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert pod_status(pod) == "Terminating"
    pod["status"]["phase"] = "Succeeded"
    pod["status"]["containerStatuses"] = [{"name": "c0", "state": OK}]
    assert pod_status(pod) == "Completed"


def test_restarts_count_init_containers_while_initializing() -> None:
    pod = _pod([OK, {"waiting": {"reason": "CrashLoopBackOff"}, "restarts": 3}], [INITIALIZING])
    pod["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    headers, [row] = rows("Pod", [pod])
    assert row[headers.index("STATUS")] == "Init:CrashLoopBackOff"
    assert row[headers.index("RESTARTS")] == "3"
