"""What the API server needs from the node agents, for pod logs, exec, attach,
metrics and ingress traffic; and asking many nodes' agents at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from agent.protocol import (
    AttachParams,
    ExecParams,
    ExecResult,
    LogsParams,
    LogsResult,
    Params,
    RpcError,
    StatsParams,
    StatsResult,
)
from control.api import execws

log = logging.getLogger(__name__)
T = TypeVar("T")


class AgentLink(Protocol):
    """One node link (control.nodes.link.NodeLink)."""

    async def logs(self, params: LogsParams, timeout: float | None = None) -> LogsResult: ...  # noqa: ASYNC109

    def follow_logs(self, params: LogsParams) -> AsyncGenerator[str, None]: ...

    async def exec(self, params: ExecParams, timeout: float | None = None) -> ExecResult: ...  # noqa: ASYNC109

    async def stats(self, params: StatsParams | None = None) -> StatsResult: ...

    async def exec_session(self, params: ExecParams) -> execws.ExecStream: ...

    async def attach_session(self, params: AttachParams) -> execws.ExecStream: ...

    async def request(self, method: str, params: Params, timeout: float | None = None) -> Any: ...  # noqa: ASYNC109


class NodeAgents(Protocol):
    """The node links by node name (control.nodes.manager.NodeLinks)."""

    def link(self, node: str) -> AgentLink | None: ...


async def ask_each(
    nodes: NodeAgents,
    names: Sequence[str],
    ask: Callable[[AgentLink], Awaitable[T]],
    timeout: float,  # noqa: ASYNC109 - each node's own deadline
) -> dict[str, T]:
    """`ask` every named node's agent at once; the answers by node. A node with
    no link, or whose agent fails or takes longer than `timeout`, is left out."""

    async def one(node: str) -> T | None:
        link = nodes.link(node)
        if link is None:
            return None
        try:
            async with asyncio.timeout(timeout):
                return await ask(link)
        except (RpcError, ConnectionError, TimeoutError) as e:
            log.debug("no answer from node %s: %s", node, e)
            return None

    results = await asyncio.gather(*(one(n) for n in names))
    return {n: r for n, r in zip(names, results, strict=True) if r is not None}
