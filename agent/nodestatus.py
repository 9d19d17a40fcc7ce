"""What an agent reports of its node, real or hollow alike: its architecture
as Kubernetes names it, and the conditions of its heartbeat."""

from __future__ import annotations

import platform

from agent.protocol import NodeCondition


def architecture() -> str:
    """GOARCH's name for this machine: amd64, arm64, ..."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def node_conditions(
    ready: NodeCondition, *, memory_pressure: bool = False, disk_pressure: bool = False
) -> list[NodeCondition]:
    """The kubelet's node conditions: the pressures, then `ready`."""
    return [
        {
            "type": "MemoryPressure",
            "status": "True" if memory_pressure else "False",
            "reason": "KubeletHasInsufficientMemory"
            if memory_pressure
            else "KubeletHasSufficientMemory",
        },
        {
            "type": "DiskPressure",
            "status": "True" if disk_pressure else "False",
            "reason": "KubeletHasDiskPressure" if disk_pressure else "KubeletHasNoDiskPressure",
        },
        {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID"},
        ready,
    ]
