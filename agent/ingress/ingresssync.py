"""The agent's side of `ingress_sync` (see agent.protocol.ingress): the route
table the control plane sends, served by the node's ingress proxy."""

from __future__ import annotations

import logging

from agent.protocol import INTERNAL_ERROR, Handler, InvalidParams, Params, RpcError
from agent.protocol.ingress import INGRESS_SYNC, IngressSyncResult

from .proxy import IngressError, IngressProxy
from .routetable import RouteTableError, parse_route_table

log = logging.getLogger(__name__)


class IngressSync:
    def __init__(self, proxy: IngressProxy) -> None:
        self.proxy = proxy

    def handlers(self) -> dict[str, Handler]:
        return {INGRESS_SYNC: self.sync}

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
