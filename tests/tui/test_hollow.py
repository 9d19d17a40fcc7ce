"""The console against a control plane with hollow nodes: scheduler, controllers, agents."""

from __future__ import annotations

from pathlib import Path

from console.tui.screens import ConfirmScreen, ProgressScreen
from control.client import Client
from control.objects import kinds
from tests.cluster import hollow_cluster
from tests.tui.conftest import console, noted
from tests.tui.helpers import make_deployment, until


def pods_by_status(rows: list[list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row[3], []).append(row[1])
    return out


async def test_plus_adds_a_running_pod_shown_live(tmp_path: Path) -> None:
    async with hollow_cluster(tmp_path, nodes=2) as cluster:
        await cluster.wait_nodes_ready()
        async with cluster.client() as client:
            await make_deployment(client, "web", replicas=1)
        async with console(cluster.plane, view="deploy") as (app, pilot):
            await until(
                lambda: app.table.visible_rows()[:1] and app.table.visible_rows()[0][2] == "1/1",
                within=15,
            )
            await pilot.press("plus")
            await until(lambda: app.table.visible_rows()[0][2] == "2/2", within=15)
            await pilot.press("colon", *"po", "enter")
            pods = app.tables["pods"]
            await until(
                lambda: len(pods_by_status(pods.visible_rows()).get("Running", [])) == 2, within=15
            )
            assert {row[5] for row in pods.visible_rows()} <= {"node-1", "node-2"}
            await pilot.press("colon", *"no", "enter")
            nodes = app.tables["nodes"]
            await until(lambda: sum(int(r[5].split("/")[0]) for r in nodes.visible_rows()) == 2)


async def test_cordon_shows_in_nodes_view_and_not_ready_is_shown(tmp_path: Path) -> None:
    async with hollow_cluster(tmp_path, nodes=2, grace_period=0.5) as cluster:
        await cluster.wait_nodes_ready()
        async with console(cluster.plane, view="no") as (app, pilot):
            table = app.table
            await until(lambda: [r[1] for r in table.visible_rows()] == ["Ready", "Ready"])
            await pilot.press("c")
            await until(lambda: table.visible_rows()[0][1] == "Ready,SchedulingDisabled")
            assert table.visible_rows()[0][6] == "cordoned"
            cluster.agents["node-2"].heartbeating = False
            await until(lambda: table.visible_rows()[1][1] in ("NotReady", "Unknown"), within=10)
            health = app.main.query_one("#health")
            await until(lambda: "nodes 1/2 ready" in str(health.render()), within=10)


async def test_drain_evicts_with_progress_and_pods_move(tmp_path: Path) -> None:
    async with hollow_cluster(tmp_path, nodes=2) as cluster:
        await cluster.wait_nodes_ready()
        async with cluster.client() as client:
            await make_deployment(client, "web", replicas=4)

            async def placed() -> dict[str, str]:
                items = (await client.list(kinds.POD))["items"]
                return {
                    p["metadata"]["name"]: p["spec"].get("nodeName", "")
                    for p in items
                    if (p.get("status") or {}).get("phase") == "Running"
                    and not p["metadata"].get("deletionTimestamp")
                }

            await _eventually(lambda: _count(placed(), 4))
            async with console(cluster.plane, view="no") as (app, pilot):
                await until(lambda: len(app.table.shown) == 2)
                await pilot.press("r")  # drain, on the nodes view
                await until(lambda: isinstance(app.screen, ConfirmScreen))
                await pilot.press("y")
                await until(lambda: isinstance(app.screen, ProgressScreen))
                await until(noted(app, "node/node-1 drained"), within=20)
                assert (await client.get(kinds.NODE, "node-1"))["spec"]["unschedulable"]
                await _eventually(lambda: _all_on(placed(), "node-2", 4))


async def _count(coro, n):  # type: ignore[no-untyped-def]
    return len(await coro) == n


async def _all_on(coro, node, n):  # type: ignore[no-untyped-def]
    placed = await coro
    return len(placed) == n and set(placed.values()) == {node}


async def _eventually(check, within: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import time

    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


_ = Client
