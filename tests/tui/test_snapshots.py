"""Snapshots of each console view, compared with the SVGs committed beside this file.

The data is fixed: an API-only control plane (no scheduler, controllers or
agents to change anything) holds objects with fixed names and statuses, every
object is created at the same fixed time with a uid from a counter, the
views' clock is fixed, node sampling is off and the terminal is 160x32. So a
snapshot changes only when what the console draws changes (or Textual does).

After an intended change of the console's look, regenerate them with

    pytest tests/tui/test_snapshots.py --snapshot-update

and review the SVGs in tests/tui/__snapshots__/test_snapshots/ before
committing. A failing run writes snapshot_report.html with the expected and
the actual screens side by side.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.screen import Screen

from console.tui import views
from console.tui.app import PilothouseApp
from console.tui.hosted import HostedControlPlane
from console.tui.screens import HelpScreen, TextScreen
from console.tui.table import ResourceTable
from control.api import registry
from control.client import Client
from control.config import load_config
from control.objects import kinds
from tests.manifests import weighted_httproute
from tests.polling import eventually
from tests.tui.conftest import press_for
from tests.tui.helpers import (
    endpoints_manifest,
    event_manifest,
    ingress_manifest,
    make_deployment,
    make_node,
    make_pod,
    rules_annotation,
    service_manifest,
    slice_manifest,
)

SIZE = (160, 32)
CREATED = "2026-01-01T00:00:00Z"
NOW = datetime(2026, 1, 1, 2, 30, tzinfo=UTC)  # every object is 2h old
SERVER = "unix:///var/lib/pilothouse/api.sock"  # shown in the header instead of the tmp path


async def populate(socket: str) -> None:
    async with Client(socket) as client:
        await make_node(client, "node-1")
        await make_node(client, "node-2", ready=False, cpu="8")
        await client.patch(kinds.NODE, "node-2", {"spec": {"unschedulable": True}})
        await make_pod(client, "web-1", node="node-1", labels={"app": "web"})
        await make_pod(client, "web-2", node="node-1", labels={"app": "web"}, restarts=2)
        await make_pod(
            client, "api-1", node="node-1", labels={"app": "api"}, waiting="CrashLoopBackOff", restarts=7
        )  # fmt: skip
        await make_pod(
            client, "api-2", phase="Pending", labels={"app": "api"}, waiting="ContainerCreating"
        )
        for name, replicas, status in [
            ("web", 2, {"replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}),
            ("api", 4, {"replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1}),
            ("idle", 0, {}),
        ]:  # fmt: skip
            await make_deployment(client, name, replicas=replicas)
            await client.patch(kinds.DEPLOYMENT, name, {"status": status}, "default", sub="status")
        for name, ip, port in [("web", "10.96.0.10", 80), ("api", "10.96.0.11", 8080)]:
            await client.create(kinds.SERVICE, service_manifest(name, port=port, ip=ip))
        await client.create(
            kinds.ENDPOINTS, endpoints_manifest("web", ["10.244.1.2", "10.244.1.3"])
        )
        web = {"10.244.1.2": True, "10.244.1.3": True}
        await client.create(kinds.ENDPOINTSLICE, slice_manifest("web", web))
        api = {"10.244.1.4": True, "10.244.0.5": False}
        await client.create(kinds.ENDPOINTSLICE, slice_manifest("api", api))
        await client.patch(kinds.NODE, "node-1", rules_annotation(4, 4))
        await client.patch(kinds.NODE, "node-2", rules_annotation(3, 4))
        rules = {
            "shop.test": [("/", "Prefix", "web", 80), ("/api", "Exact", "api", 8080)],
            "admin.test": [("/", "Prefix", "web", 80)],
        }
        await client.create(kinds.INGRESS, ingress_manifest("site", rules, tls=["shop.test"]))
        for event in [
            event_manifest("e1", "Pod/web-1", "Scheduled", "Successfully assigned default/web-1 to node-1", last="2026-01-01T00:00:01Z"),
            event_manifest("e2", "Pod/api-1", "BackOff", "Back-off restarting failed container", type_="Warning", last="2026-01-01T02:29:15Z", count=7),
            event_manifest("e3", "Deployment/api", "ScalingReplicaSet", "Scaled up replica set api-5d4f to 4", last="2026-01-01T02:18:00Z"),
            event_manifest("e4", "Node/node-2", "NodeNotReady", "Node node-2 status is now: NodeNotReady", type_="Warning", last="2025-12-29T12:00:00Z"),
        ]:  # fmt: skip
            await client.create(kinds.EVENT, event)
        # Last, so that the objects before keep their uids and resourceVersions.
        shop = weighted_httproute("shop", [("web", 80, 90), ("api", 8080, 10)])
        await client.create(kinds.HTTPROUTE, shop)


@pytest.fixture(scope="module")
def socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API-only control plane holding the fixed objects; the views' clock fixed."""
    data_dir = tmp_path_factory.mktemp("snapshots")
    (data_dir / "config.toml").write_text('[api]\nlisten = ""\n')
    switch = sys.getswitchinterval()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "now_rfc3339", lambda: CREATED)
        uids = itertools.count(1)
        mp.setattr(registry, "new_uid", lambda: str(uuid.UUID(int=next(uids))))
        mp.setattr(views, "now", NOW.timestamp)
        mp.setattr(PilothouseApp, "_sample_nodes", lambda self: None)
        hosted = HostedControlPlane(load_config(None, data_dir=data_dir), components=False)
        try:
            path = str(hosted.start())
            asyncio.run(populate(path))
            yield path
        finally:
            hosted.stop()
            sys.setswitchinterval(switch)


def make_app(socket: str, view: str) -> PilothouseApp:
    def factory() -> Client:
        client = Client(socket)
        client.server = SERVER
        return client

    return PilothouseApp(factory, initial_view=view)


def columns_fit(table: ResourceTable) -> bool:
    """The columns have grown to their cells."""
    widths = [max(map(len, cells), default=0) for cells in zip(*table.visible_rows(), strict=True)]
    return all(have >= w for have, w in zip(table.widths, widths, strict=True))


async def settled(app: PilothouseApp, rows: int) -> None:
    """Every row listed and drawn, the header filled in."""
    await eventually(lambda: app.server_version and len(app.table.shown) == rows, within=15)
    await eventually(lambda: columns_fit(app.table))
    await eventually(lambda: all(c.synced.is_set() for c in app.caches.values()), within=15)
    if app.view.name == "ingress":  # the traffic asked for once (unavailable: no nodes here)
        await eventually(lambda: app.ctx.traffic.error)
    app.update_health()
    await eventually(lambda: "(loading" not in str(app.main.query_one("#title").render()))


Snap = Callable[..., bool]


ROWS = {"pods": 4, "deployments": 3, "services": 2, "ingress": 4, "nodes": 2, "events": 4}


@pytest.mark.parametrize("view", list(ROWS))
def test_view(snap_compare: Snap, socket: str, view: str) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        assert isinstance(pilot.app, PilothouseApp)
        await settled(pilot.app, ROWS[view])

    assert snap_compare(make_app(socket, view), terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize(
    ("view", "key", "screen"),
    [
        pytest.param("deployments", "question_mark", HelpScreen, id="help"),
        pytest.param("deployments", "y", TextScreen, id="yaml"),  # on api, the first row
        pytest.param("pods", "d", TextScreen, id="describe"),  # on api-1, the first row
    ],
)
def test_screen(
    snap_compare: Snap, socket: str, view: str, key: str, screen: type[Screen[Any]]
) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, PilothouseApp)
        await settled(app, ROWS[view])
        await press_for(pilot, key, screen)

    assert snap_compare(make_app(socket, view), terminal_size=SIZE, run_before=run_before)
