"""The service proxy: keeps the node's nftables rules equal to the service table,
and deletes the UDP flows that its changes leave stale."""

from __future__ import annotations

import asyncio
import logging
import time

from .conntrack import Conntrack, stale_flows
from .nft import CommandRunner, Nft
from .proxyrules import PortPlan, ProxyConfig, plan, render_plans
from .servicetable import ServiceTable

log = logging.getLogger(__name__)


class ServiceProxy:
    """One node's (or one network namespace's) service rules.

    `sync` renders the whole table and loads it in one nft transaction; when nft
    refuses it, NftError carries nft's message and the previous rules stay.
    """

    def __init__(
        self,
        config: ProxyConfig | None = None,
        *,
        netns: str | None = None,
        runner: CommandRunner | None = None,
    ) -> None:
        self.config = config or ProxyConfig()
        self.nft = Nft(netns, runner) if runner is not None else Nft(netns)
        self.conntrack = Conntrack(netns, runner)
        self.applied: list[PortPlan] | None = None  # None: not known (not synced yet)
        self._applied_text: str | None = None
        self.applied_generation = -1
        self._lock = asyncio.Lock()  # one nft transaction at a time, applied state in step

    async def sync(self, table: ServiceTable, *, force: bool = False) -> list[str]:
        """Applies the table unless the same rules are already loaded (force: load
        them anyway, e.g. to repair rules changed behind our back). Returns
        conntrack error messages; raises NftError when nft refuses the rules."""
        async with self._lock:
            return await self._sync(table, force)

    async def _sync(self, table: ServiceTable, force: bool) -> list[str]:
        generation = table.generation
        plans = plan(table.items())
        text = render_plans(plans, self.config)
        if not force and text == self._applied_text:
            self.applied_generation = generation
            return []
        started = time.monotonic()
        await self.nft.apply(text)
        log.info(
            "service rules: %d service ports loaded in %.3fs",
            len(plans),
            time.monotonic() - started,
        )
        previous = self.applied
        self.applied, self._applied_text = plans, text
        self.applied_generation = generation
        return await self.conntrack.flush(stale_flows(previous, plans))

    async def cleanup(self) -> None:
        """Removes our table (the agent is leaving the node)."""
        async with self._lock:
            await self.nft.delete_table()
            self.applied, self._applied_text = None, None
            self.applied_generation = -1
