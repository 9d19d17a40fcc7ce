"""Node networking the agent owns: the CNI bridge conflist for its pod CIDR, and
routes to the other nodes' pod CIDRs. iproute2 argv calls, never shell strings."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CONFLIST_NAME = "10-pilothouse.conflist"
NETWORK_NAME = "pilothouse"
Runner = Callable[[Sequence[str]], Awaitable[tuple[int, str]]]


async def run_argv(argv: Sequence[str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


def conflist(pod_cidr: str, ipam_dir: Path, bridge: str = "ph0") -> dict[str, Any]:
    net = ipaddress.ip_network(pod_cidr)
    return {
        "cniVersion": "0.4.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(net)}]],
                    "routes": [{"dst": "0.0.0.0/0" if net.version == 4 else "::/0"}],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


def write_conflist(conf_dir: Path, pod_cidr: str, ipam_dir: Path, bridge: str = "ph0") -> bool:
    """Writes the conflist atomically; True if it changed."""
    data = json.dumps(conflist(pod_cidr, ipam_dir, bridge), indent=2) + "\n"
    path = conf_dir / CONFLIST_NAME
    try:
        if path.read_text() == data:
            return False
    except FileNotFoundError:
        pass
    conf_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{CONFLIST_NAME}.tmp")
    tmp.write_text(data)
    os.replace(tmp, path)
    return True


class Routes:
    """Keeps `ip route` entries for other nodes' pod CIDRs equal to the desired set."""

    def __init__(self, runner: Runner = run_argv) -> None:
        self.runner = runner
        self.current: dict[str, str] = {}  # cidr -> via

    async def apply(self, desired: Mapping[str, str]) -> list[str]:
        """Returns error messages (empty when all went well)."""
        errors = []
        for cidr, via in desired.items():
            if self.current.get(cidr) == via:
                continue
            code, out = await self.runner(["ip", "route", "replace", cidr, "via", via])
            if code == 0:
                self.current[cidr] = via
            else:
                errors.append(f"route {cidr} via {via}: {out.strip()}")
        for cidr in [c for c in self.current if c not in desired]:
            code, out = await self.runner(["ip", "route", "del", cidr])
            if code != 0 and "No such process" not in out:
                errors.append(f"route del {cidr}: {out.strip()}")
            self.current.pop(cidr, None)
        for e in errors:
            log.warning("%s", e)
        return errors

    async def repair(self) -> list[str]:
        """Puts back the routes the kernel dropped: a link that goes down, even
        for a moment, takes its routes along, and no new desired set may come
        (the connection can outlive the flap). Returns error messages."""
        if not self.current:
            return []
        code, out = await self.runner(["ip", "-j", "route", "show"])
        try:
            present = {r.get("dst") for r in json.loads(out or "[]")} if code == 0 else None
        except (ValueError, AttributeError):
            present = None
        if present is None:
            return [f"ip route show: {out.strip()}"]
        want = dict(self.current)
        lost = [cidr for cidr in want if cidr not in present]
        for cidr in lost:
            log.info("route %s via %s: gone, putting it back", cidr, want[cidr])
            del self.current[cidr]
        return await self.apply(want) if lost else []
