"""Hollow nodes for controller tests, and pod and node shapes for tests that
set states by hand.

`HollowNodes` joins hollow agents (agent/hollow.py: the real agent protocol,
no containers) to an in-process control plane through its node links. The
scheduler binds pods to them and they report them Running and ready, as a
kubelet would. Pods for which `hold(pod)` is true when they start report not
ready until `release()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from agent.hollow import HollowAgent
from agent.protocol.primitives import now_rfc3339
from console.bench.nodes import ready_node
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.nodes.transport import InProcessTransport
from control.objects.kinds import NODE

Obj = dict[str, Any]
Hold = Callable[[Obj], bool]


def _ready(pod: Obj) -> bool | None:
    """The Ready condition as a bool, or None when the pod has none."""
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return None


def running_status(pod: Obj, ready: bool, ip: str, host_ip: str) -> Obj:
    now = now_rfc3339()
    flag = "True" if ready else "False"
    old = pod.get("status") or {}
    conditions = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
        {"type": "Ready", "status": flag, "lastTransitionTime": now},
    ]
    return {
        **old,
        "phase": "Running",
        "conditions": conditions,
        "hostIP": host_ip,
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": old.get("startTime") or now,
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c.get("image"),
                "ready": ready,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
            for c in (pod.get("spec") or {}).get("containers") or ()
        ],
    }


def node_manifest(name: str, index: int = 0) -> Obj:
    """A Ready node with room for plenty of pods."""
    return ready_node(
        name,
        {"cpu": "64", "memory": "256Gi", "pods": "500"},
        {"kubernetes.io/hostname": name},
        spec={"podCIDR": f"10.244.{index}.0/24"},
        addresses=[{"type": "InternalIP", "address": f"192.168.100.{index + 1}"}],
    )


class HollowNodes:
    def __init__(
        self,
        plane: ControlPlane,
        nodes: tuple[str, ...] = ("node-1", "node-2", "node-3"),
        *,
        hold: Hold | None = None,
    ) -> None:
        self.plane = plane
        self.nodes = nodes
        self._hold = hold
        self.agents = {
            name: HollowAgent(name, cpu="64", memory="256Gi", pods=500, heartbeat_interval=1.0)
            for name in nodes
        }
        for agent in self.agents.values():
            agent.start_ready = self._start_ready

    def _start_ready(self, pod: Obj) -> bool:
        return self._hold is None or not self._hold(pod)

    async def __aenter__(self) -> HollowNodes:
        for name, agent in self.agents.items():
            self.plane.node_links.add(name, InProcessTransport(agent.serve, name))
        deadline = asyncio.get_running_loop().time() + 15
        for name in self.nodes:
            while not await self._ready(name):
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"hollow node {name} did not become Ready")
                await asyncio.sleep(0.02)
        return self

    async def _ready(self, name: str) -> bool:
        try:
            node = (await self.plane.registry.get(NODE, None, name)).obj
        except ApiError:
            return False
        return _ready(node) is True

    async def __aexit__(self, *exc: object) -> None:
        for name in self.nodes:
            await self.plane.node_links.remove(name)

    async def release(self) -> None:
        """Stop holding pods back: every held pod becomes ready."""
        self._hold = None
        for agent in self.agents.values():
            for key in agent.running():
                namespace, name = key.split("/", 1)
                await agent.set_pod_ready(namespace, name, True)
