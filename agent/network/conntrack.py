"""Stale UDP conntrack flows. A UDP "connection" lives on in conntrack as long as
packets keep coming, still DNATed to the endpoint it first went to. When an
endpoint goes away its flows must be deleted, or clients keep sending into the
void; and when a UDP Service port gets its first endpoint, flows that were made
while it had none (not DNATed) must go too. Needs Debian's `conntrack` tool."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .nft import CommandRunner, in_netns, run_command
from .proxyrules import PortPlan

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Flush:
    """UDP flows to delete: sent to dst_ip (any address when None) and dst_port,
    and, when endpoint is given, DNATed to that endpoint."""

    dst_ip: str | None
    dst_port: int
    endpoint: str | None = None

    def argv(self) -> list[str]:
        argv = ["conntrack", "-D", "-p", "udp"]
        if self.dst_ip is not None:
            argv += ["--orig-dst", self.dst_ip]
        argv += ["--orig-port-dst", str(self.dst_port)]
        if self.endpoint is not None:
            argv += ["--dst-nat", self.endpoint]
        return argv


def stale_flows(old: Sequence[PortPlan] | None, new: Sequence[PortPlan]) -> list[Flush]:
    """The flushes that going from the `old` rules to the `new` ones calls for.
    old None: nothing is known of what was there (the agent just started)."""
    before = {(p.cluster_ip, p.port, p.protocol): p for p in old or ()}
    flushes: list[Flush] = []
    for p in new:
        if p.protocol != "udp" or not p.targets:
            continue
        prev = before.get((p.cluster_ip, p.port, p.protocol))
        if prev is None or not prev.targets:
            flushes.append(Flush(p.cluster_ip, p.port))
            if p.node_port is not None:
                flushes.append(Flush(None, p.node_port))
    now = {(p.cluster_ip, p.port, p.protocol): p for p in new}
    for key, prev in before.items():
        if prev.protocol != "udp":
            continue
        cur = now.get(key)
        current_ips = {ip for ip, _ in cur.targets} if cur else set()
        for ip in sorted({ip for ip, _ in prev.targets} - current_ips):
            flushes.append(Flush(prev.cluster_ip, prev.port, ip))
            if prev.node_port is not None:
                flushes.append(Flush(None, prev.node_port, ip))
    return flushes


class Conntrack:
    def __init__(self, netns: str | None = None, runner: CommandRunner | None = None) -> None:
        self.netns = netns
        self.runner = runner or run_command
        # With the real runner, look for the tool first, and say once that it is missing.
        self.missing = runner is None and shutil.which("conntrack") is None
        self._warned = False

    async def flush(self, flushes: Iterable[Flush]) -> list[str]:
        """Deletes the flows; returns error messages (empty when all went well)."""
        todo = list(flushes)
        if not todo:
            return []
        if self.missing:
            msg = (
                "conntrack is not installed (Debian package conntrack): "
                f"{len(todo)} stale UDP flow flush(es) skipped"
            )
            if not self._warned:
                log.warning("%s", msg)
                self._warned = True
            return [msg]
        errors = []
        for f in todo:
            code, out, err = await self.runner(in_netns(self.netns, f.argv()), None)
            # Exit 1 with "0 flow entries" just means there was nothing to delete.
            if code != 0 and ": 0 flow entries" not in err:
                errors.append(f"{' '.join(f.argv())}: {(err or out).strip()}")
        for e in errors:
            log.warning("%s", e)
        return errors
