"""The agent's side of `services_sync` and `services_update` (see
agent.protocol.services): the service table the control plane sends, the
generation it is at, and the rules loaded from it.

Each request changes the table at once, in the order the requests arrive, and
is answered when rules at least as new are loaded. One nft transaction runs at
a time; requests that arrive meanwhile wait for it to end and are then loaded
together, in one more transaction. When nft refuses a ruleset, every request
that waited for it gets nft's message (the old rules stay) and the next request
tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from agent.protocol import (
    INTERNAL_ERROR,
    Handler,
    InvalidParams,
    Params,
    RpcError,
    ServicesOutOfSync,
)
from agent.protocol.services import SERVICES_SYNC, SERVICES_UPDATE, ServicesResult

from .nft import NftError
from .proxy import ServiceProxy
from .proxyrules import ProxyConfig
from .servicetable import ServiceTable, ServiceTableError

log = logging.getLogger(__name__)


class ServiceSync:
    """`proxy` None: no rules are loaded (hollow agents, --netns-free), and
    requests are answered as soon as the table has changed."""

    def __init__(
        self, proxy: ServiceProxy | None = None, table: ServiceTable | None = None
    ) -> None:
        self.table = table if table is not None else ServiceTable()
        self.proxy = proxy
        # The control plane's generation of the table; None until the first sync.
        self.generation: int | None = None
        self._lock = asyncio.Lock()  # one transaction at a time; the others wait here
        self._loaded = -1  # the table's own generation whose rules are in place
        self._failed: tuple[int, str] | None = None  # (table generation, nft's message)
        self._force = False  # load even unchanged rules: a full sync repairs them

    def handlers(self) -> dict[str, Handler]:
        return {SERVICES_SYNC: self.sync, SERVICES_UPDATE: self.update}

    async def sync(self, params: Params) -> ServicesResult:
        generation = _generation(params, "generation")
        table = params.get("table")
        if not isinstance(table, Mapping):
            raise InvalidParams("table: must be an object")
        try:
            self.table.replace_from_wire(table)
        except ServiceTableError as e:
            raise InvalidParams(f"table: {e}") from None
        self.generation = generation
        self._force = True
        log.debug("services: generation %d, %d services (full sync)", generation, len(self.table))
        return await self._answer(generation)

    async def update(self, params: Params) -> ServicesResult:
        generation = _generation(params, "generation")
        base = _generation(params, "base")
        if generation <= base:
            raise InvalidParams(f"generation: must be greater than base ({base}), got {generation}")
        if base != self.generation:
            at = "no generation yet" if self.generation is None else f"generation {self.generation}"
            raise ServicesOutOfSync(
                f"services_update on generation {base}, but this agent has {at}: send services_sync"
            )
        try:
            self.table.apply_changes_wire(params.get("changes"))
        except ServiceTableError as e:
            raise InvalidParams(str(e)) from None
        self.generation = generation
        log.debug("services: generation %d, %d services", generation, len(self.table))
        return await self._answer(generation)

    async def set_config(self, config: ProxyConfig) -> None:
        """New proxy settings (from network_config): the rules are loaded again
        when a table has been sent. Raises RpcError when nft refuses them."""
        if self.proxy is None or config == self.proxy.config:
            return
        self.proxy.config = config
        if self.generation is not None:
            self._force = True
            await self._load(self.table.generation)

    async def _answer(self, generation: int) -> ServicesResult:
        await self._load(self.table.generation)
        return ServicesResult(generation=generation)

    async def _load(self, wanted: int) -> None:
        """Returns once the rules of the table's generation `wanted`, or a later
        one, are in place."""
        if self.proxy is None:
            return
        async with self._lock:
            if not self._force:
                if self._loaded >= wanted:
                    return
                if self._failed is not None and self._failed[0] >= wanted:
                    raise RpcError(INTERNAL_ERROR, self._failed[1])
            target, force = self.table.generation, self._force
            self._force = False
            try:
                errors = await self.proxy.sync(self.table, force=force)
            except NftError as e:
                self._failed = (target, str(e))
                log.warning("service rules: %s", e)
                raise RpcError(INTERNAL_ERROR, str(e)) from None
            self._loaded, self._failed = target, None
            for error in errors:
                log.warning("service rules: %s", error)


def _generation(params: Params, field: str) -> int:
    value: Any = params.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidParams(f"{field}: must be a non-negative integer, got {value!r}")
    return value
