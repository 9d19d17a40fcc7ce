"""The metrics.k8s.io/v1beta1 API (what `kubectl top` reads), read-only, from
the node agents' `stats`."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from agent.protocol import StatsResult
from agent.protocol.primitives import now_rfc3339
from control import errors
from control.api.agents import NodeAgents, ask_each
from control.api.query import matcher
from control.api.registry import Registry
from control.api.responses import json_response
from control.errors import ApiError
from control.objects.kinds import NODE, POD
from control.store.interface import Matcher

log = logging.getLogger(__name__)

METRICS_PREFIX = "/apis/metrics.k8s.io/v1beta1"
# How long a stats request to one node may take before `top` leaves it out.
STATS_TIMEOUT = 5.0


class MetricsApi:
    def __init__(self, registry: Registry, nodes: NodeAgents | None) -> None:
        self.registry = registry
        self.nodes = nodes

    async def serve(self, rest: str, query: Any = None) -> web.Response:
        """The metrics.k8s.io/v1beta1 API, read-only, from the agents' `stats`:
        nodes, nodes/{name}, pods, namespaces/{ns}/pods, namespaces/{ns}/pods/{name}.
        Lists honour labelSelector and fieldSelector, matched against the
        Nodes and Pods the metrics are of. Nodes whose agent does not answer
        are left out, as metrics-server does."""
        q = query if query is not None else {}
        match = matcher(q.get("labelSelector"), q.get("fieldSelector"))
        parts = rest.split("/") if rest else []
        if parts[:1] == ["nodes"] and len(parts) <= 2:
            names = await self._node_names(match if len(parts) == 1 else None)
            items = [_node_metrics(n, s) for n, s in (await self._stats(names)).items()]
            if len(parts) == 2:
                return json_response(_one(items, "nodes", parts[1]))
            return json_response(_metrics_list("NodeMetricsList", items))
        ns: str | None = None
        if len(parts) >= 3 and parts[0] == "namespaces":
            ns, parts = parts[1], parts[2:]
        if parts[:1] == ["pods"] and len(parts) <= 2:
            selected: set[tuple[str, str]] | None = None
            nodes: list[str] | None = None
            if match is not None and len(parts) == 1:
                pods = [kv.obj for kv in (await self.registry.list(POD, ns, match=match)).items]
                selected = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}
                nodes = sorted({n for p in pods if (n := (p.get("spec") or {}).get("nodeName"))})
            if nodes is None:
                nodes = await self._node_names(None)
            items = [
                _pod_metrics(p)
                for stats in (await self._stats(nodes)).values()
                for p in stats.get("pods", [])
                if (ns is None or p.get("namespace") == ns)
                and (selected is None or (p.get("namespace"), p.get("name")) in selected)
            ]
            items.sort(key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))
            if len(parts) == 2:
                return json_response(_one(items, "pods", parts[1]))
            return json_response(_metrics_list("PodMetricsList", items))
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    async def _node_names(self, match: Matcher | None) -> list[str]:
        if self.nodes is None:
            raise ApiError(503, "ServiceUnavailable", "this API server has no node links")
        listed = await self.registry.list(NODE, None, match=match)
        return sorted(str(kv.obj["metadata"]["name"]) for kv in listed.items)

    async def _stats(self, names: list[str]) -> dict[str, StatsResult]:
        """The `stats` of the nodes named whose agents answer."""
        if self.nodes is None:
            raise ApiError(503, "ServiceUnavailable", "this API server has no node links")
        return await ask_each(self.nodes, names, lambda link: link.stats(), STATS_TIMEOUT)


def _cpu(nano: int) -> str:
    return f"{int(nano)}n"


def _memory(n: int) -> str:
    return f"{int(n) // 1024}Ki"


def _node_metrics(node: str, stats: StatsResult) -> dict[str, Any]:
    usage = stats.get("node") or {}
    return {
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": node},
        "timestamp": now_rfc3339(),
        "window": "10s",
        "usage": {
            "cpu": _cpu(usage.get("cpuNanoCores", 0)),
            "memory": _memory(usage.get("memoryWorkingSetBytes", 0)),
        },
    }


def _pod_metrics(p: Any) -> dict[str, Any]:
    return {
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": p.get("name"), "namespace": p.get("namespace")},
        "timestamp": now_rfc3339(),
        "window": "10s",
        "containers": [
            {
                "name": c.get("name"),
                "usage": {
                    "cpu": _cpu(c.get("cpuNanoCores", 0)),
                    "memory": _memory(c.get("memoryWorkingSetBytes", 0)),
                },
            }
            for c in p.get("containers") or []
        ],
    }


def _metrics_list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}


def _one(items: list[dict[str, Any]], resource: str, name: str) -> dict[str, Any]:
    for item in items:
        if item["metadata"]["name"] == name:
            return item
    raise errors.not_found(resource, name, "metrics.k8s.io")
