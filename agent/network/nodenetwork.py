"""What `network_config` and the `services_*` requests drive on a node (or in a
proxy-only agent's network namespace): routes to the other nodes' pod CIDRs,
the service rules, and the cluster DNS. Pod networking (the CNI conflist) is
the full agent's own."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from agent.pods.network import Routes
from agent.protocol import Handler, InvalidParams, Params, RpcError

from .dnszone import DEFAULT_DOMAIN, DEFAULT_TTL
from .nft import CommandRunner, run_command
from .nodedns import NodeDNS, NodeDNSError
from .proxy import ServiceProxy
from .proxyrules import ProxyConfig
from .servicesync import ServiceSync

log = logging.getLogger(__name__)


class NodeNetwork:
    """`rules` False: the namespace is left alone (no rules, routes or DNS
    address; the table is kept and generations acknowledged). `dns`: serve the
    cluster DNS when network_config names its address. `runner` runs nft and
    ip for the rules and the DNS address (tests pass a fake one)."""

    def __init__(
        self, *, rules: bool = True, dns: bool = True, runner: CommandRunner | None = None
    ) -> None:
        self.rules = rules
        self.services = ServiceSync(ServiceProxy(runner=runner) if rules else None)
        self.dns = (
            NodeDNS(self.services.table, runner=runner or run_command) if rules and dns else None
        )
        self.routes = Routes()

    def handlers(self) -> dict[str, Handler]:
        return self.services.handlers()

    async def configure(self, params: Params) -> list[str]:
        """Applies a network_config's routes, cluster CIDR and cluster DNS;
        returns what failed, as messages."""
        if not self.rules:
            return []
        config = ProxyConfig(cluster_cidr=_cidr(params))
        errors: list[str] = []
        routes = params.get("routes")
        if isinstance(routes, list):
            want = {
                str(r["cidr"]): str(r["via"])
                for r in routes
                if isinstance(r, dict) and r.get("cidr") and r.get("via")
            }
            errors += await self.routes.apply(want)
        try:
            await self.services.set_config(config)
        except RpcError as e:
            errors.append(e.message)
        cluster_dns = params.get("clusterDNS")
        if self.dns is not None and cluster_dns:
            domain = str(params.get("clusterDomain") or DEFAULT_DOMAIN)
            ttl = params.get("clusterDNSTTL", DEFAULT_TTL)
            if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
                raise InvalidParams(f"clusterDNSTTL: must be an integer >= 0, got {ttl!r}")
            try:
                await self.dns.configure(str(cluster_dns), domain, ttl)
            except ValueError as e:
                raise InvalidParams(str(e)) from None
            except NodeDNSError as e:
                log.warning("%s", e)
                errors.append(str(e))
        return errors

    async def repair(self) -> None:
        """Puts back what the kernel dropped since (see Routes.repair)."""
        if self.rules:
            await self.routes.repair()

    async def close(self) -> None:
        """The connection ended: stop serving DNS. Rules and routes stay, for
        the next agent."""
        if self.dns is not None:
            await self.dns.close()


def _cidr(params: Params) -> str | None:
    value: Any = params.get("clusterCIDR")
    if not value:
        return None
    try:
        return str(ipaddress.IPv4Network(value))
    except (ValueError, TypeError):
        raise InvalidParams(f"clusterCIDR: must be an IPv4 CIDR, got {value!r}") from None
