"""Live ingress traffic: every ingress node's `ingress_stats`, merged per route.

The server asks the agent of each Node labelled `pilothouse.io/ingress=true`
at once, each with a short timeout; a node whose agent does not answer (down,
slow, or run without `--ingress`) is left out and the others still count. Per
route name, requests, requests per second and 5xx answers are summed over the
nodes, and p99 is the largest of the nodes' (a bound: percentiles do not add).
"""

from __future__ import annotations

import logging
from typing import Any, cast

from agent.protocol.ingress import INGRESS_STATS, IngressStatsResult, RouteStatsWire
from control.api.agents import AgentLink, NodeAgents, ask_each
from control.api.registry import Registry
from control.errors import ApiError
from control.objects.kinds import NODE
from control.objects.routes import is_ingress_node

log = logging.getLogger(__name__)

# How long one node's agent may take to answer before it is left out.
STATS_TIMEOUT = 2.0


def merge_stats(results: list[IngressStatsResult]) -> dict[str, RouteStatsWire]:
    """The nodes' route statistics, merged per route name."""
    merged: dict[str, RouteStatsWire] = {}
    for result in results:
        for name, stats in (result.get("routes") or {}).items():
            into = merged.get(name)
            if into is None:
                merged[name] = {
                    "requests": int(stats.get("requests") or 0),
                    "requestsPerSecond": float(stats.get("requestsPerSecond") or 0.0),
                    "http5xx": int(stats.get("http5xx") or 0),
                    "p99Ms": stats.get("p99Ms"),
                }
                continue
            into["requests"] += int(stats.get("requests") or 0)
            into["requestsPerSecond"] += float(stats.get("requestsPerSecond") or 0.0)
            into["http5xx"] += int(stats.get("http5xx") or 0)
            p99s = [p for p in (into["p99Ms"], stats.get("p99Ms")) if p is not None]
            into["p99Ms"] = max(p99s) if p99s else None
    return merged


async def _ask(link: AgentLink) -> IngressStatsResult | None:
    """One agent's statistics; None when the answer has the wrong shape."""
    answer = await link.request(INGRESS_STATS, {}, timeout=STATS_TIMEOUT)
    if not isinstance(answer, dict) or not isinstance(answer.get("routes"), dict):
        log.debug("ingress stats of the wrong shape: %r", answer)
        return None
    return cast(IngressStatsResult, answer)


class IngressStatsApi:
    def __init__(self, registry: Registry, nodes: NodeAgents | None) -> None:
        self.registry = registry
        self.nodes = nodes

    async def collect(self) -> dict[str, Any]:
        """The answer: the nodes that answered and the merged routes."""
        if self.nodes is None:
            raise ApiError(503, "ServiceUnavailable", "this API server has no node links")
        names = sorted(
            str(kv.obj["metadata"]["name"])
            for kv in (await self.registry.list(NODE, None)).items
            if is_ingress_node(kv.obj)
        )
        answers = await ask_each(self.nodes, names, _ask, STATS_TIMEOUT)
        answered = [(n, r) for n, r in answers.items() if r is not None]
        return {
            "kind": "IngressStats",
            "apiVersion": "pilothouse.io/v1",
            "nodes": [n for n, _ in answered],
            "routes": merge_stats([r for _, r in answered]),
        }
