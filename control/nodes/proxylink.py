"""A service proxy link: the control plane's side of a proxy-only agent
(`python3 -m agent --proxy-only`), one per `[[service_proxies]]` entry.

It says hello, sends the cluster's network (service and cluster CIDRs, cluster
DNS; no pod CIDR, no routes), then keeps the agent's service rules current
(control.nodes.services). A proxy is not a Node: no registration, no pods, no
status; it reconnects as node links do.
"""

from __future__ import annotations

import asyncio

from agent.protocol import Params, Peer, hello
from control.nodes.reconnecting import (
    LinkTiming,
    ReconnectingLink,
    end_session,
    serve_until_one_ends,
)
from control.nodes.services import ServiceRules
from control.nodes.transport import Transport


class ProxyLink(ReconnectingLink):
    def __init__(
        self,
        name: str,
        transport: Transport,
        rules: ServiceRules,
        network: Params,
        *,
        timing: LinkTiming | None = None,
    ) -> None:
        super().__init__(name, "service proxy", timing)
        self.transport = transport
        self.rules = rules
        self.network = network  # the `network_config` params

    async def _session(self) -> None:
        t = self.timing
        async with asyncio.timeout(t.connect_timeout):
            channel = await self.transport.open()
        peer = Peer(
            channel.reader,
            channel.writer,
            name=f"service proxy {self.name}",
            request_timeout=t.request_timeout,
        )
        tasks = [asyncio.create_task(peer.run(), name=f"read proxy {self.name}")]
        try:
            async with asyncio.timeout(t.connect_timeout):
                await hello(peer, self.name)
            await peer.request("network_config", self.network)
            self._up(channel)
            tasks.append(
                asyncio.create_task(
                    self.rules.serve(self.name, peer, node=False), name=f"proxy {self.name}"
                )
            )
            await serve_until_one_ends(tasks)
        finally:
            await end_session(peer, channel, tasks)
