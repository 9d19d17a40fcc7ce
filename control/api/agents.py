"""What the API server needs from the node agents, for pod logs, exec and metrics."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

from agent.protocol import (
    ExecParams,
    ExecResult,
    LogsParams,
    LogsResult,
    Params,
    StatsParams,
    StatsResult,
)
from control.api import execws


class AgentLink(Protocol):
    """One node link (control.nodes.link.NodeLink)."""

    async def logs(self, params: LogsParams, timeout: float | None = None) -> LogsResult: ...  # noqa: ASYNC109

    def follow_logs(self, params: LogsParams) -> AsyncGenerator[str, None]: ...

    async def exec(self, params: ExecParams, timeout: float | None = None) -> ExecResult: ...  # noqa: ASYNC109

    async def stats(self, params: StatsParams | None = None) -> StatsResult: ...

    async def exec_session(self, params: ExecParams) -> execws.ExecStream: ...
    async def request(self, method: str, params: Params, timeout: float | None = None) -> Any: ...  # noqa: ASYNC109


class NodeAgents(Protocol):
    """The node links by node name (control.nodes.manager.NodeLinks)."""

    def link(self, node: str) -> AgentLink | None: ...
