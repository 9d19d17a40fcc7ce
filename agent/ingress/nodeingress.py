"""A node's ingress (the agent's --ingress): the ingress proxy, made at the
first `ingress_sync` (after `network_config`, so on the node's IP; 0.0.0.0
before one names it) and moved to a new node IP at the next sync."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from agent.protocol import INTERNAL_ERROR, Handler, Params, RpcError
from agent.protocol.ingress import (
    INGRESS_STATS,
    INGRESS_SYNC,
    IngressStatsResult,
    IngressSyncResult,
)

from .haproxyconfig import SOCKET_NAME
from .ingresssync import IngressSync
from .proxy import MAX_SOCKET_PATH, IngressProxy

log = logging.getLogger(__name__)

ANY_ADDRESS = "0.0.0.0"

ProxyFactory = Callable[[Path, str], IngressProxy]  # (runtime dir, bind address)


def runtime_dir_for(state_dir: Path) -> Path:
    """`state_dir`/ingress, unless its sockets' paths would be too long for
    unix sockets: then a private folder in the temporary directory named after it."""
    wanted = state_dir.absolute() / "ingress"
    if len(str(wanted / SOCKET_NAME)) <= MAX_SOCKET_PATH:
        return wanted
    digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"ph-ingress-{digest}"


class NodeIngress:
    def __init__(self, runtime_dir: Path, *, make_proxy: ProxyFactory | None = None) -> None:
        self.runtime_dir = runtime_dir
        self.make_proxy: ProxyFactory = make_proxy or (
            lambda path, address: IngressProxy(path, bind_address=address)
        )
        self.address = ANY_ADDRESS
        self.ingress: IngressSync | None = None

    def handlers(self) -> dict[str, Handler]:
        return {INGRESS_SYNC: self.sync, INGRESS_STATS: self.stats}

    def set_node_ip(self, ip: str) -> None:
        self.address = ip or ANY_ADDRESS

    async def sync(self, params: Params) -> IngressSyncResult:
        if self.ingress is None:
            try:
                self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                proxy = self.make_proxy(self.runtime_dir, self.address)
            except (OSError, ValueError) as e:
                raise RpcError(INTERNAL_ERROR, f"ingress proxy: {e}") from None
            self.ingress = IngressSync(proxy)
        elif self.ingress.proxy.bind_address != self.address:
            log.info("ingress: binding on %s from now on", self.address)
            self.ingress.proxy.bind_address = self.address
        return await self.ingress.sync(params)

    async def stats(self, params: Params) -> IngressStatsResult:
        if self.ingress is None:
            return IngressStatsResult(routes={})
        return await self.ingress.stats(params)

    async def close(self) -> None:
        """Stops HAProxy."""
        if self.ingress is not None:
            await self.ingress.proxy.close()
