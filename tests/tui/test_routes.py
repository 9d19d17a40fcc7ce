"""The Ingress routes view: one row per route of the Ingresses and HTTPRoutes,
keyed by the route table's name, with live endpoints and traffic; `+` and `-`
shift a weighted HTTPRoute rule's traffic by 10 points."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from textual.pilot import Pilot

from console.tui.app import PilothouseApp
from console.tui.screens import TextScreen
from control.client import Client
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.objects import kinds
from tests.manifests import weighted_httproute
from tests.polling import eventually
from tests.tui.conftest import SIZE, noted, press_for
from tests.tui.helpers import ingress_manifest, service_manifest, slice_manifest

Obj = dict[str, Any]
SHOP = "httproute/default/shop/0/0"


class ScriptedStats(Client):
    """A client whose `ingress_stats` answers from a script, one answer per
    poll (the last one repeated); an ApiError in the script is raised."""

    def __init__(self, server: str, script: list[Obj | ApiError]) -> None:
        super().__init__(server)
        self.script = script
        self.polls = 0

    async def ingress_stats(self) -> dict[str, Any]:
        answer = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        if isinstance(answer, ApiError):
            raise answer
        return {"nodes": ["edge"], "routes": answer}


@asynccontextmanager
async def routes_console(
    plane: ControlPlane, script: list[Obj | ApiError], rows: int
) -> AsyncIterator[tuple[PilothouseApp, Pilot[None]]]:
    def factory() -> Client:
        return ScriptedStats(str(plane.socket_path), script)

    app = PilothouseApp(factory, initial_view="ing")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: len(app.table.shown) == rows)
        yield app, pilot


async def _cluster(client: Client) -> None:
    for name in ("web", "stable", "canary"):
        await client.create(kinds.SERVICE, service_manifest(name, selector=False))
    await client.create(kinds.ENDPOINTSLICE, slice_manifest("web", {"10.244.1.2": True}))
    stable = {"10.244.2.2": True, "10.244.2.3": True, "10.244.2.4": False}
    await client.create(kinds.ENDPOINTSLICE, slice_manifest("stable", stable))
    rules = {"a.test": [("/", "Prefix", "web", 80), ("/api", "Exact", "api", 8080)]}
    await client.create(kinds.INGRESS, ingress_manifest("site", rules))
    shop = weighted_httproute("shop", [("stable", 80, 90), ("canary", 80, 10)])
    await client.create(kinds.HTTPROUTE, shop)


async def _weights(client: Client) -> list[int]:
    obj = await client.get(kinds.HTTPROUTE, "shop", "default")
    return [r["weight"] for r in obj["spec"]["rules"][0]["backendRefs"]]


def _stats(requests: int, rps: float, http5xx: int, p99: float | None) -> Obj:
    return {"requests": requests, "requestsPerSecond": rps, "http5xx": http5xx, "p99Ms": p99}


async def test_a_row_per_route_with_endpoints_and_live_traffic(
    plane: ControlPlane, client: Client
) -> None:
    await _cluster(client)
    script: list[Obj | ApiError] = [
        {SHOP: _stats(100, 2.0, 0, 12.0)},
        {SHOP: _stats(200, 8.0, 10, 48.6), "ing/default/site/0/0": _stats(5, 0.0, 0, None)},
    ]
    async with routes_console(plane, script, rows=3) as (app, _pilot):
        assert app.table.spec.headers == [
            "NAMESPACE", "HOST", "PATH", "ROUTE", "BACKENDS", "ENDPOINTS", "REQ/S", "5XX", "P99", "TRAFFIC",
        ]  # fmt: skip
        await eventually(lambda: app.table.visible_rows()[0][6] == "8.0", within=10)
        assert app.table.row_keys() == [SHOP, "ing/default/site/0/0", "ing/default/site/0/1"]
        shop, root, api = app.table.visible_rows()
        assert shop[:9] == [
            "default", "shop.test", "/ (PathPrefix)", "httproute/shop",
            "stable:80 90%, canary:80 10%", "2 10.244.2.2,10.244.2.3", "8.0", "10.0%", "49ms",
        ]  # fmt: skip
        assert shop[9][0] == "▃" and set(shop[9][1:]) == {"█"}  # 2.0, then 8.0 req/s
        assert root == [
            "default", "a.test", "/ (Prefix)", "ingress/site", "web:80", "1 10.244.1.2",
            "0.0", "0.0%", "-", root[9],
        ]  # fmt: skip
        assert set(root[9]) == {"▁"}
        assert api[4:] == ["api:8080", "0", "-", "-", "-", ""]  # no Service, no traffic seen


async def test_the_view_follows_endpoints_and_says_when_traffic_is_unavailable(
    plane: ControlPlane, client: Client
) -> None:
    await _cluster(client)
    script: list[Obj | ApiError] = [ApiError(503, "ServiceUnavailable", "no node links")]
    async with routes_console(plane, script, rows=3) as (app, _pilot):
        await eventually(lambda: "(no live traffic)" in str(app.main.query_one("#title").render()))
        await client.create(kinds.ENDPOINTSLICE, slice_manifest("canary", {"10.244.3.9": True}))
        await eventually(
            lambda: app.table.visible_rows()[0][5] == "3 10.244.2.2,10.244.2.3,10.244.3.9"
        )


async def test_plus_and_minus_shift_the_weights_of_a_weighted_row(
    plane: ControlPlane, client: Client
) -> None:
    await _cluster(client)
    async with routes_console(plane, [{}], rows=3) as (app, pilot):
        await pilot.press("home")
        assert app.table.selected_row() == SHOP  # the first row
        await pilot.press("plus")
        await eventually(noted(app, "httproute/shop rule 0: stable:80 80% / canary:80 20%"))
        assert await _weights(client) == [80, 20]
        await eventually(lambda: app.table.visible_rows()[0][4] == "stable:80 80%, canary:80 20%")
        await pilot.press("minus", "minus")
        await eventually(lambda: _weights_are(client, [100, 0]), within=10)
        assert app.table.selected_row() == SHOP


async def _weights_are(client: Client, weights: list[int]) -> bool:
    return await _weights(client) == weights


async def test_plus_on_a_row_that_is_not_weighted_says_so(
    plane: ControlPlane, client: Client
) -> None:
    await _cluster(client)
    async with routes_console(plane, [{}], rows=3) as (app, pilot):
        await pilot.press("home", "down", "plus")
        await eventually(noted(app, "ing/default/site/0/0 is not weighted", "warning"))
        assert app.main.check_action("weight_up", ())
        assert not app.main.check_action("scale_up", ())
        assert await _weights(client) == [90, 10]


async def test_d_describes_the_route_of_the_row(plane: ControlPlane, client: Client) -> None:
    await _cluster(client)
    async with routes_console(plane, [{SHOP: _stats(7, 1.5, 0, 3.0)}], rows=3) as (app, pilot):
        await pilot.press("home")
        await press_for(pilot, "d", TextScreen)
        screen = app.screen
        assert isinstance(screen, TextScreen)
        text = screen.text
        assert "Kind:         HTTPRoute" in text
        assert "      stable:80 90%  endpoints 2 ready: 10.244.2.2, 10.244.2.3" in text
