"""What an agent reports of its node, real or hollow alike: its architecture
as Kubernetes names it, the machine's identity, and the conditions of its
heartbeat."""

from __future__ import annotations

import contextlib
import hashlib
import platform
import uuid
from dataclasses import dataclass
from pathlib import Path

from agent.protocol import NodeCondition


def architecture() -> str:
    """GOARCH's name for this machine: amd64, arm64, ..."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


@dataclass(frozen=True)
class MachineIdentity:
    """The ids the kubelet reports in a Node's status.nodeInfo."""

    machine_id: str
    system_uuid: str
    boot_id: str


def _read_id(path: Path) -> str:
    """The first line of `path`, or "" when it cannot be read (product_uuid
    is readable by root only)."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = path.read_text().strip()
        return text.splitlines()[0].strip() if text else ""
    return ""


def machine_identity(root: Path = Path("/")) -> MachineIdentity:
    """This machine's ids, read where the kubelet (cAdvisor) reads them."""
    return MachineIdentity(
        machine_id=_read_id(root / "etc/machine-id"),
        system_uuid=_read_id(root / "sys/class/dmi/id/product_uuid"),
        boot_id=_read_id(root / "proc/sys/kernel/random/boot_id"),
    )


def hollow_identity(name: str) -> MachineIdentity:
    """Stable made-up ids for a hollow node: the same name, the same ids."""

    def digest(what: str) -> bytes:
        return hashlib.sha256(f"pilothouse-hollow/{what}/{name}".encode()).digest()[:16]

    return MachineIdentity(
        machine_id=digest("machine").hex(),
        system_uuid=str(uuid.UUID(bytes=digest("system"), version=4)),
        boot_id=str(uuid.UUID(bytes=digest("boot"), version=4)),
    )


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
