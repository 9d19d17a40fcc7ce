"""Live ingress traffic at INGRESS_STATS_PATH: every ingress node's agent is
asked at once (fake agents here), the answers merged per route; a node that
fails, is slow or has no link is left out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.protocol import METHOD_NOT_FOUND, RpcError
from agent.protocol.ingress import INGRESS_STATS
from control.api import ingressstats
from control.api.ingressstats import merge_stats
from control.client import Client
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.objects.kinds import NODE
from control.objects.routes import INGRESS_NODE_LABEL

Obj = dict[str, Any]


class FakeLink:
    def __init__(self, answer: Any = None, *, fail: Exception | None = None, hang: bool = False):
        self.answer, self.fail, self.hang = answer, fail, hang
        self.asked: list[str] = []

    async def request(self, method: str, params: Obj, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        self.asked.append(method)
        if self.hang:
            await asyncio.Event().wait()
        if self.fail is not None:
            raise self.fail
        return self.answer


class FakeAgents:
    def __init__(self, links: dict[str, FakeLink]) -> None:
        self.links = links

    def link(self, node: str) -> Any:
        return self.links.get(node)


def stats(requests: int, rps: float, http5xx: int, p99: float | None) -> Obj:
    return {"requests": requests, "requestsPerSecond": rps, "http5xx": http5xx, "p99Ms": p99}


def test_merge_sums_counts_and_takes_the_largest_p99() -> None:
    merged = merge_stats(
        [
            {"routes": {"a": stats(10, 2.0, 1, 30.0), "b": stats(1, 0.5, 0, None)}},
            {"routes": {"a": stats(5, 1.5, 2, 45.5), "c": stats(3, 0.0, 3, 9.0)}},
            {"routes": {"a": stats(1, 0.0, 0, None), "b": stats(2, 1.0, 1, None)}},
        ]
    )
    assert merged == {
        "a": stats(16, 3.5, 3, 45.5),
        "b": stats(3, 1.5, 1, None),
        "c": stats(3, 0.0, 3, 9.0),
    }


async def _node(client: Client, name: str, ingress: bool) -> None:
    labels = {INGRESS_NODE_LABEL: "true"} if ingress else {}
    await client.create(
        NODE, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}
    )


async def test_stats_over_the_api_from_the_ingress_nodes_that_answer(
    plane: ControlPlane, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingressstats, "STATS_TIMEOUT", 0.2)
    route = "httproute/default/shop/0/0"
    links = {
        "edge-1": FakeLink({"routes": {route: stats(100, 9.5, 2, 12.0)}}),
        "edge-2": FakeLink({"routes": {route: stats(50, 4.5, 1, 80.0), "ing/default/site/0/0": stats(7, 1.0, 0, None)}}),
        "edge-slow": FakeLink(hang=True),
        "edge-old": FakeLink(fail=RpcError(METHOD_NOT_FOUND, "method not found: ingress_stats")),
        "edge-down": FakeLink(fail=ConnectionError("not connected")),
        "edge-odd": FakeLink(["not", "stats"]),
        "worker": FakeLink({"routes": {route: stats(1000, 1000.0, 1000, 1000.0)}}),
    }  # fmt: skip
    for name in links:
        await _node(client, name, ingress=name != "worker")
    await _node(client, "edge-nolink", ingress=True)
    assert plane.api is not None
    plane.api.ingress_stats.nodes = FakeAgents(links)

    started = asyncio.get_running_loop().time()
    answer = await client.ingress_stats()
    assert asyncio.get_running_loop().time() - started < 2.0  # asked at once, not in turn
    assert answer["nodes"] == ["edge-1", "edge-2"]
    assert answer["routes"] == {
        route: stats(150, 14.0, 3, 80.0),
        "ing/default/site/0/0": stats(7, 1.0, 0, None),
    }
    assert links["worker"].asked == []  # not an ingress node
    assert links["edge-1"].asked == [INGRESS_STATS]


async def test_no_node_links_is_503(client: Client) -> None:
    with pytest.raises(ApiError) as e:
        await client.ingress_stats()
    assert e.value.code == 503
