"""Each view's rows, as the DataTable holds them, and how they follow the watch."""

from __future__ import annotations

from console.tui.table import ResourceTable
from control.client import Client
from control.controlplane import ControlPlane
from control.objects import kinds
from tests.polling import eventually
from tests.tui.conftest import console
from tests.tui.helpers import (
    event_manifest,
    ingress_manifest,
    make_deployment,
    make_node,
    make_pod,
    rules_annotation,
    service_manifest,
    slice_manifest,
)


def rows_without_age(table: ResourceTable) -> list[list[str]]:
    age = table.spec.headers.index("AGE") if "AGE" in table.spec.headers else None
    return [[c for i, c in enumerate(r) if i != age] for r in table.visible_rows()]


async def test_pods_view_rows(plane: ControlPlane, client: Client) -> None:
    await make_node(client, "node-1")
    await make_pod(client, "web-1", node="node-1")
    await make_pod(client, "crash-1", node="node-1", waiting="CrashLoopBackOff", restarts=4)
    await make_pod(client, "pull-1", node="node-1", phase="Pending", waiting="ErrImagePull")
    async with console(plane) as (app, _pilot):
        table = app.table
        assert table.spec.headers == [
            "NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "NODE", "IP", "AGE",
        ]  # fmt: skip
        await eventually(lambda: len(table.shown) == 3)
        assert rows_without_age(table) == [
            ["default", "crash-1", "0/1", "CrashLoopBackOff", "4", "node-1", "10.244.0.5"],
            ["default", "pull-1", "0/1", "ErrImagePull", "0", "node-1", "10.244.0.5"],
            ["default", "web-1", "1/1", "Running", "0", "node-1", "10.244.0.5"],
        ]


async def test_pods_view_follows_the_watch_by_keyed_diffs(
    plane: ControlPlane, client: Client
) -> None:
    await make_pod(client, "a")
    async with console(plane) as (app, _pilot):
        table = app.table
        await eventually(lambda: len(table.shown) == 1)
        row_a = table.rows_all["default/a"]
        await make_pod(client, "b", phase="Pending", waiting="ContainerCreating")
        await eventually(lambda: [r[1] for r in table.visible_rows()] == ["a", "b"])
        assert table.rows_all["default/a"] is row_a  # an unchanged row is left alone
        await client.patch(
            kinds.POD,
            "b",
            {"status": {"phase": "Running", "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0, "state": {"running": {}}}]}},
            "default",
            sub="status",
        )  # fmt: skip
        await eventually(lambda: table.visible_rows()[1][3] == "Running")
        assert table.visible_rows()[1][2] == "1/1"
        await client.delete(kinds.POD, "a", "default")
        await eventually(lambda: [r[1] for r in table.visible_rows()] == ["b"])


async def test_nodes_view_rows(plane: ControlPlane, client: Client) -> None:
    await make_node(client, "node-1")
    await make_node(client, "node-2", ready=False)
    await client.patch(kinds.NODE, "node-2", {"spec": {"unschedulable": True}})
    await make_pod(client, "p1", node="node-1")
    await make_pod(client, "p2", node="node-1")
    async with console(plane, view="nodes") as (app, _pilot):
        table = app.table
        await eventually(lambda: len(table.shown) == 2 and table.visible_rows()[0][5] == "2/110")
        rows = rows_without_age(table)
        name, status, roles, cpu, mem, pods, cordon = rows[0]
        assert (name, status, roles, pods, cordon) == ("node-1", "Ready", "worker", "2/110", "")
        assert cpu.startswith("200m/4 ") and mem.startswith("128Mi/8Gi ")
        assert cpu[-1] in "▁▂▃▄▅▆▇█"  # the sparkline
        assert rows[1][:3] == ["node-2", "NotReady,SchedulingDisabled", "worker"]
        assert rows[1][5:] == ["0/110", "cordoned"]
        await eventually(lambda: "nodes 1/2 ready" in str(app.main.query_one("#health").render()))


async def test_deployments_view_rows(plane: ControlPlane, client: Client) -> None:
    """The deployment controller fills status; with no nodes its pods stay Pending."""
    await make_deployment(client, "web", replicas=2)
    await make_deployment(client, "api", replicas=0)
    async with console(plane, view="deploy") as (app, _pilot):
        want = [
            ["default", "api", "0/0", "0", "0", "scaled to 0"],
            ["default", "web", "0/2", "2", "0", "░░░░░░░░░░ 0/2"],
        ]
        await eventually(lambda: rows_without_age(app.table) == want)


async def test_services_view_counts_endpoints(plane: ControlPlane, client: Client) -> None:
    # No selector: its endpoints are the user's to write, not the controller's.
    await client.create(kinds.SERVICE, service_manifest("ext", selector=False))
    async with console(plane, view="svc", rows=1) as (app, _pilot):
        row = app.table.visible_rows()[0]
        assert row[:3] == ["default", "ext", "ClusterIP"]
        assert row[3].count(".") == 3  # an allocated ClusterIP
        assert row[4:7] == ["80/TCP", "0/0", "0/0"]
        endpoints = {"192.0.2.5": True, "192.0.2.6": False}
        await client.create(kinds.ENDPOINTSLICE, slice_manifest("ext", endpoints))
        await eventually(lambda: app.table.visible_rows()[0][5] == "1/2")


async def test_services_view_counts_nodes_with_rules_in_sync(
    plane: ControlPlane, client: Client
) -> None:
    await client.create(kinds.SERVICE, service_manifest("web"))
    await make_node(client, "node-1")
    await make_node(client, "node-2")
    await client.patch(kinds.NODE, "node-1", rules_annotation(7, 7))
    await client.patch(kinds.NODE, "node-2", rules_annotation(6, 7))
    async with console(plane, view="svc") as (app, _pilot):
        await eventually(lambda: [r[6] for r in app.table.visible_rows()] == ["1/2"])
        await client.patch(kinds.NODE, "node-2", rules_annotation(7, 7))
        await eventually(lambda: app.table.visible_rows()[0][6] == "2/2")
        await make_node(client, "node-3")  # no rules reported yet
        await eventually(lambda: app.table.visible_rows()[0][6] == "2/3")


async def test_ingress_view_has_a_row_per_host_and_path(
    plane: ControlPlane, client: Client
) -> None:
    rules = {
        "a.test": [("/", "Prefix", "web", 80), ("/api", "Exact", "api", 8080)],
        "b.test": [("/", "Prefix", "web", 80)],
    }
    await client.create(kinds.INGRESS, ingress_manifest("site", rules, tls=["a.test"]))
    async with console(plane, view="ing", rows=3) as (app, _pilot):
        assert [r[:6] for r in app.table.visible_rows()] == [
            ["default", "a.test", "/ (Prefix)", "ingress/site", "web:80", "0"],
            ["default", "a.test", "/api (Exact)", "ingress/site", "api:8080", "0"],
            ["default", "b.test", "/ (Prefix)", "ingress/site", "web:80", "0"],
        ]


async def test_events_view_sorted_by_last_seen_with_warnings(
    plane: ControlPlane, client: Client
) -> None:
    for name, typ, reason, last in [
        ("e1", "Normal", "Scheduled", "2026-01-01T10:00:00Z"),
        ("e2", "Warning", "BackOff", "2026-01-01T12:00:00Z"),
        ("e3", "Normal", "Pulled", "2026-01-01T11:00:00Z"),
    ]:
        await client.create(
            kinds.EVENT,
            event_manifest(name, "Pod/web-1", reason, f"{reason} happened", type_=typ, last=last),
        )
    async with console(plane, view="ev") as (app, _pilot):
        table = app.table
        await eventually(lambda: len(table.shown) == 3)
        assert [r[3] for r in table.visible_rows()] == ["BackOff", "Pulled", "Scheduled"]
        first = table.get_row_at(0)
        assert "yellow" in str(first[2].style)  # the warning is highlighted
        assert [r[4] for r in table.visible_rows()] == ["pod/web-1"] * 3
