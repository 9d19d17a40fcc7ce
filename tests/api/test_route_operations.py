"""The route operations: `describe` of Ingresses and HTTPRoutes with their live
backends and traffic, and shifting an HTTPRoute rule's weights by 10 points,
compare-and-swap so that two quick shifts both count."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.protocol import RpcError
from console.cli import main as cli
from control.api.ingressstats import IngressStatsApi
from control.client import Client
from control.controlplane import ControlPlane
from control.objects.kinds import ENDPOINTSLICE, HTTPROUTE, INGRESS, NODE, SERVICE
from control.objects.routes import INGRESS_NODE_LABEL
from control.operations import OperationError
from control.operations.routes import route_details_of, shift_weights, shifted
from tests.interleaving import FirstWriteLate
from tests.manifests import weighted_httproute
from tests.tui.helpers import service_manifest, slice_manifest

Obj = dict[str, Any]


def test_shifted_moves_ten_points_between_first_and_last() -> None:
    assert shifted([90, 10], True) == [80, 20]
    assert shifted([90, 10], False) == [100, 0]
    assert shifted([9, 1], True) == [80, 20]  # weights are read as shares
    assert shifted([5, 95], True) == [0, 100]  # clamped
    assert shifted([0, 100], True) == [0, 100]
    assert shifted([100, 0], False) == [100, 0]
    assert shifted([80, 10, 10], True) == [70, 10, 20]  # the middle keeps its share
    assert shifted([1, 1, 1], False) == [44, 33, 23]
    with pytest.raises(OperationError, match="weight 0"):
        shifted([0, 0], True)


async def _weights(client: Client, name: str) -> list[int]:
    obj = await client.get(HTTPROUTE, name, "default")
    return [r["weight"] for r in obj["spec"]["rules"][0]["backendRefs"]]


async def test_shift_writes_the_weights_and_reports_them(client: Client) -> None:
    await client.create(
        HTTPROUTE, weighted_httproute("shop", [("stable", 80, 90), ("canary", 80, 10)])
    )
    shift = await shift_weights(client, "default", "shop", 0, toward_canary=True)
    assert shift.message() == "httproute/shop rule 0: stable:80 80% / canary:80 20%"
    assert await _weights(client, "shop") == [80, 20]
    await shift_weights(client, "default", "shop", 0, toward_canary=False)
    shift = await shift_weights(client, "default", "shop", 0, toward_canary=False)
    assert await _weights(client, "shop") == [100, 0]
    written = (await client.get(HTTPROUTE, "shop", "default"))["metadata"]["resourceVersion"]
    shift = await shift_weights(client, "default", "shop", 0, toward_canary=False)
    assert shift.message() == "httproute/shop rule 0: stable:80 100% / canary:80 0% (unchanged)"
    after = (await client.get(HTTPROUTE, "shop", "default"))["metadata"]["resourceVersion"]
    assert after == written  # nothing to move: nothing written


async def test_shift_refuses_a_rule_that_is_not_weighted(client: Client) -> None:
    await client.create(HTTPROUTE, weighted_httproute("one", [("web", 80, 1)]))
    with pytest.raises(OperationError, match="has 1 backendRef"):
        await shift_weights(client, "default", "one", 0, toward_canary=True)
    with pytest.raises(OperationError, match="no rule 3"):
        await shift_weights(client, "default", "one", 3, toward_canary=True)


async def test_two_interleaved_shifts_both_count(plane: ControlPlane, client: Client) -> None:
    """Both shifts read 90/10 before either writes: the first write fails on
    the resourceVersion, is read again at 80/20 and makes 70/30."""
    await client.create(
        HTTPROUTE, weighted_httproute("shop", [("stable", 80, 90), ("canary", 80, 10)])
    )
    racing = FirstWriteLate(str(plane.socket_path), Client.path(HTTPROUTE, "default", "shop"))
    async with racing:
        shifts = await asyncio.gather(
            shift_weights(racing, "default", "shop", 0, toward_canary=True),
            shift_weights(racing, "default", "shop", 0, toward_canary=True),
        )
    assert racing.held, "the first write was not held back past the second read"
    assert await _weights(client, "shop") == [70, 30]
    assert sorted(s.percents for s in shifts) == [[70, 30], [80, 20]]


class StatsLink:
    def __init__(self, routes: Obj) -> None:
        self.routes = routes

    async def request(self, method: str, params: Obj, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        if method != "ingress_stats":
            raise RpcError(-32601, "method not found")
        return {"routes": self.routes}


class StatsAgents:
    def __init__(self, links: dict[str, StatsLink]) -> None:
        self.links = links

    def link(self, node: str) -> Any:
        return self.links.get(node)


async def _backends(client: Client) -> None:
    for name in ("stable", "canary"):
        await client.create(SERVICE, service_manifest(name))
    await client.create(
        ENDPOINTSLICE, slice_manifest("stable", {"10.244.1.2": True, "10.244.1.3": True})
    )
    await client.create(
        ENDPOINTSLICE, slice_manifest("canary", {"10.244.2.2": True, "10.244.2.3": False})
    )


async def test_describe_lines_with_endpoints_and_traffic(
    plane: ControlPlane, client: Client
) -> None:
    await _backends(client)
    route = weighted_httproute("shop", [("stable", 80, 90), ("canary", 80, 10)])
    obj = await client.create(HTTPROUTE, route)
    lines = await route_details_of(client, obj)
    assert lines[:7] == [
        "Routes:",
        "  httproute/default/shop/0/0",
        "    Host:      shop.test",
        "    Match:     PathPrefix /",
        "    Backends:",
        "      stable:80 90%  endpoints 2 ready: 10.244.1.2, 10.244.1.3",
        "      canary:80 10%  endpoints 1 ready: 10.244.2.2",
    ]
    assert lines[7].startswith("    Traffic:   <unavailable: ")  # no node links here

    await client.create(
        NODE,
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "edge", "labels": {INGRESS_NODE_LABEL: "true"}}},
    )  # fmt: skip
    routes = {
        "httproute/default/shop/0/0": {
            "requests": 120,
            "requestsPerSecond": 12.5,
            "http5xx": 3,
            "p99Ms": 41.2,
        }
    }
    assert plane.api is not None
    plane.api.ingress_stats = IngressStatsApi(
        plane.registry, StatsAgents({"edge": StatsLink(routes)})
    )
    lines = await route_details_of(client, obj)
    assert lines[7] == "    Traffic:   12.5 req/s, 120 requests, 3 5xx, p99 41 ms"


async def test_cli_describe_ingress_and_httproute(
    plane: ControlPlane, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    await _backends(client)
    await client.create(
        HTTPROUTE, weighted_httproute("shop", [("stable", 80, 90), ("canary", 80, 10)])
    )
    backend = {"service": {"name": "stable", "port": {"number": 80}}}
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "site", "namespace": "default"},
        "spec": {"rules": [{"host": "a.test", "http": {"paths": [{"path": "/api", "pathType": "Exact", "backend": backend}]}}]},
    }  # fmt: skip
    await client.create(INGRESS, ingress)
    for kind, name in (("httproute", "shop"), ("ingress", "site")):
        args = cli.parse_args(["describe", kind, name, "--server", str(plane.socket_path)])
        assert await args.func(args) == 0
    out = capsys.readouterr().out
    assert "      canary:80 10%  endpoints 1 ready: 10.244.2.2\n" in out
    assert "  ing/default/site/0/0\n    Host:      a.test\n    Match:     Exact /api\n" in out
    assert "      stable:80  endpoints 2 ready: 10.244.1.2, 10.244.1.3\n" in out
    assert out.index("Routes:") < out.index("Events:")
