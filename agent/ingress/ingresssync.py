"""The agent's side of `ingress_sync` and `ingress_stats` (see
agent.protocol.ingress): the route table the control plane sends, served by the
node's ingress proxy, and that proxy's per-route figures."""

from __future__ import annotations

import logging

from agent.protocol import INTERNAL_ERROR, Handler, InvalidParams, Params, RpcError
from agent.protocol.ingress import (
    INGRESS_STATS,
    INGRESS_SYNC,
    IngressStatsResult,
    IngressSyncResult,
    RouteStatsWire,
)

from .proxy import IngressError, IngressProxy
from .routetable import RouteTableError, parse_route_table
from .runtime import HAProxyRuntimeError

log = logging.getLogger(__name__)


class IngressSync:
    def __init__(self, proxy: IngressProxy) -> None:
        self.proxy = proxy

    def handlers(self) -> dict[str, Handler]:
        return {INGRESS_SYNC: self.sync, INGRESS_STATS: self.stats}

    async def sync(self, params: Params) -> IngressSyncResult:
        """Answers once HAProxy serves the table; an error with HAProxy's
        message when it refuses it (the previous table keeps serving)."""
        try:
            table = parse_route_table(params.get("table"))
        except RouteTableError as e:
            raise InvalidParams(str(e)) from None
        try:
            await self.proxy.sync(table)
        except IngressError as e:
            log.warning("ingress: generation %d refused: %s", table.generation, e)
            raise RpcError(INTERNAL_ERROR, str(e)) from None
        return IngressSyncResult(generation=table.generation)

    async def stats(self, params: Params) -> IngressStatsResult:
        """No routes before HAProxy serves a table; an error when it does not answer."""
        if self.proxy.generation is None:
            return IngressStatsResult(routes={})
        try:
            stats = await self.proxy.stats()
        except HAProxyRuntimeError as e:
            raise RpcError(INTERNAL_ERROR, f"ingress stats: {e}") from None
        return IngressStatsResult(
            routes={
                name: RouteStatsWire(
                    requests=s.requests,
                    requestsPerSecond=float(s.requests_per_second),
                    http5xx=s.http_5xx,
                    p99Ms=s.p99_ms,
                )
                for name, s in stats.items()
            }
        )
