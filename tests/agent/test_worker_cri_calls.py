"""What the pod worker asks containerd, on a real containerd: a running
container's status is read once, not on every pass, and read again when the
container changes state. And `python3 -m agent.crifloor` leaves nothing behind."""

from __future__ import annotations

import asyncio
import collections
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.cri.client import CRIClient
from agent.pods import spec as S
from agent.pods.worker import PodWorker
from tests.polling import eventually

from .node import Node

pytestmark = pytest.mark.e2e

BUSYBOX = "pilothouse/busybox"


class CountingCRI(CRIClient):
    def __init__(self, socket: str) -> None:
        super().__init__(socket)
        self.calls: collections.Counter[str] = collections.Counter()

    async def _call(
        self, method: str, stub_method: object, req: object, deadline: float | None = None
    ) -> object:
        self.calls[method] += 1
        return await super()._call(method, stub_method, req, deadline)


async def test_running_container_status_is_read_once(node: Node, tmp_path: Path) -> None:
    uid = f"calls-{secrets.token_hex(4)}"
    pod: dict[str, Any] = {
        "metadata": {"name": "calls", "namespace": "default", "uid": uid},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": BUSYBOX, "command": ["sleep", "3600"]}],
        },
    }
    reports: list[dict[str, Any]] = []

    async def notify(params: dict[str, Any], terminated: bool) -> None:
        reports.append(params["status"])

    cfg = S.NodeConfig(name="calls", state_dir=tmp_path, cgroup_parent=node.cgroup_parent)
    cri = CountingCRI(str(node.socket))
    w = PodWorker(cri, cfg, pod, notify, sync_interval=0.05)
    w.start()
    try:
        await eventually(
            lambda: bool(reports) and reports[-1]["phase"] == "Running", "Running", within=30.0
        )
        lists = cri.calls["ListContainers"]
        reads = cri.calls["ContainerStatus"]
        await eventually(
            lambda: cri.calls["ListContainers"] >= lists + 5, "five more passes", within=30.0
        )
        assert cri.calls["ContainerStatus"] == reads

        # The container exits: the next pass sees the new state and reads its status.
        cid = reports[-1]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
        await cri.stop_container(cid, 0)
        await eventually(
            lambda: (
                reports[-1]["containerStatuses"][0]["restartCount"] >= 1
                or "terminated" in reports[-1]["containerStatuses"][0]["lastState"]
            ),
            "the exit to be reported",
            within=30.0,
        )
        assert cri.calls["ContainerStatus"] > reads
    finally:
        w.terminate()
        await asyncio.wait_for(w.done.wait(), 30)
        await cri.close()
        await node.remove_all_sandboxes()


def test_crifloor_rounds_leave_nothing_behind(node: Node) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.crifloor",
            "--containerd-socket",
            str(node.socket),
            "--cgroup-parent",
            node.cgroup_parent,
            "--pods",
            "1",
            "--pods",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    rounds = [json.loads(line) for line in r.stdout.splitlines()]
    assert [len(x["samples"]) for x in rounds] == [1, 2]
    for x in rounds:
        assert x["wall_ms"] > 0
        for s in x["samples"]:
            assert 0 < s["sandbox_ms"] <= s["total_ms"]
            assert s["create_ms"] > 0 and s["start_ms"] > 0

    async def leftovers() -> int:
        async with CRIClient(str(node.socket)) as cri:
            return len(await cri.list_pod_sandboxes()) + len(await cri.list_containers())

    assert asyncio.run(leftovers()) == 0
