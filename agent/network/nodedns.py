"""The cluster DNS as an agent serves it: the clusterDNS address on a dummy
interface (`ph-dns`) in the agent's own network namespace, and ClusterDNS
listening there on port 53, UDP and TCP, answering from the service table.

Pods reach the address through their node (their default route), so every
node answers for itself. Setting up is idempotent: an agent that restarts finds
the interface and the address in place. A kernel without dummy interfaces
(some VM kernels) gets an empty bridge of the same name, which serves as well.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from pathlib import Path

from .dns import ClusterDNS, upstreams_from_resolv_conf
from .dnszone import DEFAULT_DOMAIN, DEFAULT_TTL
from .nft import CommandRunner, run_command
from .servicetable import ServiceTable

log = logging.getLogger(__name__)

DNS_INTERFACE = "ph-dns"
DNS_PORT = 53


class NodeDNSError(RuntimeError):
    """The address could not be set up, or the server could not listen."""


class NodeDNS:
    def __init__(
        self,
        table: ServiceTable,
        *,
        runner: CommandRunner = run_command,
        resolv_conf: str | Path = "/etc/resolv.conf",
        port: int = DNS_PORT,
    ) -> None:
        self.table = table
        self.runner = runner
        self.resolv_conf = resolv_conf
        self.port = port
        self.server: ClusterDNS | None = None
        self.serving: tuple[str, str, int] | None = None  # (address, domain, ttl)

    async def configure(
        self, address: str, domain: str = DEFAULT_DOMAIN, ttl: int = DEFAULT_TTL
    ) -> None:
        """Serves the table at address:53 for `domain`; nothing to do when it
        already does. Raises NodeDNSError (or ValueError for a bad address)."""
        try:
            address = str(ipaddress.IPv4Address(address))
        except ValueError:
            raise ValueError(f"clusterDNS: must be an IPv4 address, got {address!r}") from None
        if self.serving == (address, domain, ttl):
            return
        await self.close()
        await self._assign(address)
        # Forwarding to ourselves would loop.
        upstreams = upstreams_from_resolv_conf(self.resolv_conf, exclude=[address])
        server = ClusterDNS(self.table, domain=domain, ttl=ttl, upstreams=upstreams)
        try:
            await server.start(address, self.port)
        except OSError as e:
            raise NodeDNSError(f"cluster DNS on {address}:{self.port}: {e}") from None
        self.server, self.serving = server, (address, domain, ttl)
        log.info(
            "cluster DNS for %s on %s:%d (%d upstreams)",
            domain,
            address,
            self.port,
            len(upstreams),
        )

    async def close(self) -> None:
        """Stops serving; the address stays, for the next agent."""
        if self.server is not None:
            await self.server.close()
        self.server, self.serving = None, None

    async def _assign(self, address: str) -> None:
        """`address`/32 on the dummy interface (made if missing), and no other."""
        code, _, _ = await self.runner(["ip", "link", "show", "dev", DNS_INTERFACE], None)
        if code != 0:
            try:
                await self._ip("link", "add", DNS_INTERFACE, "type", "dummy")
            except NodeDNSError as e:
                if "Unknown device type" not in str(e):
                    raise
                log.info(
                    "this kernel has no dummy interfaces: %s is an empty bridge", DNS_INTERFACE
                )
                await self._ip("link", "add", DNS_INTERFACE, "type", "bridge")
        await self._ip("link", "set", "dev", DNS_INTERFACE, "up")
        await self._ip("addr", "replace", f"{address}/32", "dev", DNS_INTERFACE)
        for old in await self._addresses():
            if old != address:
                await self._ip("addr", "del", f"{old}/32", "dev", DNS_INTERFACE)

    async def _addresses(self) -> list[str]:
        out = await self._ip("-j", "-4", "addr", "show", "dev", DNS_INTERFACE)
        try:
            links = json.loads(out or "[]")
            return [str(a["local"]) for link in links for a in link.get("addr_info", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise NodeDNSError(f"ip -j addr show {DNS_INTERFACE}: unexpected output: {e}") from None

    async def _ip(self, *args: str) -> str:
        argv = ["ip", *args]
        code, out, err = await self.runner(argv, None)
        if code != 0:
            raise NodeDNSError(f"{' '.join(argv)}: {(err or out).strip()}")
        return out
