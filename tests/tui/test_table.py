"""The keyed-diff table, on its own: bulk add/remove/reorder keep it consistent."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult

from console.tui.table import ResourceTable
from console.tui.views import VIEWS, Context, pod_rows, slim_pod
from control.objects import kinds
from tests.tui.helpers import pod_manifest

PODS = next(v for v in VIEWS if v.name == "pods")


def pod(name: str, ns: str = "default", phase: str = "Running") -> dict[str, Any]:
    obj = pod_manifest(name, ns=ns)
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    obj["status"] = {"phase": phase}
    return obj


class TableApp(App[None]):
    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx

    def compose(self) -> ComposeResult:
        yield ResourceTable(PODS, self.ctx, id="t")


def _consistent(table: ResourceTable) -> None:
    keys = table.row_keys()
    assert sorted(keys) == sorted(table.shown)
    assert len(set(keys)) == len(keys) == table.row_count
    assert [table.get_row_index(k) for k in keys] == list(range(len(keys)))


async def test_bulk_changes_keep_the_table_consistent_and_sorted() -> None:
    ctx = Context()
    objs = {f"ns-{i % 3}/p-{i:04d}": pod(f"p-{i:04d}", ns=f"ns-{i % 3}") for i in range(3000)}
    ctx.objects[kinds.POD.plural] = objs
    app = TableApp(ctx)
    async with app.run_test() as pilot:
        table = app.query_one(ResourceTable)
        table.mark(set(objs))
        table.flush()
        await pilot.pause()
        assert table.row_count == 3000
        _consistent(table)
        keys = table.row_keys()
        assert keys == sorted(objs)
        # Put the cursor on a row, then remove a third of the rows before it.
        target = "ns-2/p-2999"
        table.move_cursor(row=table.get_row_index(target))
        gone = {k for k in objs if k.startswith("ns-0/")}
        for k in gone:
            del objs[k]
        objs["ns-1/zzz"] = pod("zzz", ns="ns-1", phase="Failed")
        table.mark(gone | {"ns-1/zzz"})
        table.flush()
        await pilot.pause()
        _consistent(table)
        assert table.row_count == 2001
        assert table.selected_key() == target  # the cursor follows its row
        assert table.row_keys() == sorted(objs)
        row = table.get_row("ns-1/zzz")
        assert str(row[3]) == "Failed"
        # One update: one cell changes, the rest stay.
        objs["ns-1/zzz"] = pod("zzz", ns="ns-1", phase="Running")
        table.mark({"ns-1/zzz"})
        table.flush()
        assert table.get_row("ns-1/zzz")[3] == "Running"
        assert table.set_filter("zzz") is None
        assert table.visible_rows()[0][1] == "zzz" and table.row_count == 1
        assert table.set_filter("app in (") is not None  # a bad selector is reported
        table.set_filter("")
        assert table.row_count == 2001
        _consistent(table)


async def test_pages_in_key_order_append_and_a_page_out_of_order_merges() -> None:
    ctx = Context()
    objs: dict[str, dict[str, Any]] = {}
    ctx.objects[kinds.POD.plural] = objs
    app = TableApp(ctx)
    async with app.run_test() as pilot:
        table = app.query_one(ResourceTable)
        # Pages of a list arrive in key order; then one that sorts among them.
        pages = [[f"p-{i:04d}" for i in range(start, start + 100)] for start in (0, 100, 200)]
        pages.append([f"p-{i:04d}x" for i in range(50, 150)])
        for page in pages:
            new = {f"default/{name}": pod(name) for name in page}
            objs.update(new)
            table.mark(set(new))
            table.flush()
            _consistent(table)
            assert table.row_keys() == sorted(objs)
        await pilot.pause()
        assert table.row_count == 400


def test_pod_rows_show_waiting_reasons_plainly() -> None:
    obj = pod("crash")
    obj["status"]["containerStatuses"] = [
        {"name": "web", "ready": False, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    ]  # fmt: skip
    ((_, cells),) = pod_rows(obj, Context())
    assert [str(c) for c in cells[:5]] == ["default", "crash", "0/1", "CrashLoopBackOff", "3"]


def test_the_pod_projection_keeps_what_rows_selectors_and_node_usage_read() -> None:
    full = pod("crash", ns="ns-1")
    full["metadata"]["labels"] = {"app": "web", "tier": "front"}
    full["metadata"]["annotations"] = {"big": "x" * 1000}
    full["spec"]["nodeName"] = "node-1"
    full["status"] = {
        "phase": "Running",
        "podIP": "10.0.0.7",
        "containerStatuses": [
            {"name": "web", "ready": False, "restartCount": 2, "image": "i", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "long"}}}
        ],
    }  # fmt: skip
    slim = slim_pod(full)
    assert pod_rows(slim, Context()) == pod_rows(full, Context())
    assert slim["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert "annotations" not in slim["metadata"]
    full_ctx, slim_ctx = Context(), Context()
    full_ctx.objects[kinds.POD.plural] = {"ns-1/crash": full}
    slim_ctx.objects[kinds.POD.plural] = {"ns-1/crash": slim}
    assert (
        full_ctx.update_pods({"ns-1/crash"}) == slim_ctx.update_pods({"ns-1/crash"}) == {"node-1"}
    )
    assert full_ctx.node_usage("node-1") == slim_ctx.node_usage("node-1")
    # Equal labels are one shared dict across pods.
    other = pod("other", ns="ns-1")
    other["metadata"]["labels"] = {"tier": "front", "app": "web"}
    assert slim_pod(other)["metadata"]["labels"] is slim["metadata"]["labels"]


def test_pod_counts_follow_changes_and_deletes() -> None:
    ctx = Context()
    pods = ctx.objects[kinds.POD.plural] = {}
    for i in range(3):
        p = pod(f"p{i}", phase="Running")
        p["spec"]["nodeName"] = "n1"
        pods[f"default/p{i}"] = p
    ctx.update_pods(set(pods))
    assert ctx.node_usage("n1")[2] == 3 and ctx.phases["Running"] == 3
    pods["default/p0"]["status"]["phase"] = "Succeeded"
    del pods["default/p1"]
    ctx.update_pods({"default/p0", "default/p1"})
    assert ctx.node_usage("n1")[2] == 1
    assert (ctx.phases["Running"], ctx.phases["Succeeded"]) == (1, 1)
