"""Every key of the console against a control plane with hollow nodes.

Scheduler, controllers, node links and hollow agents all run: a key's effect
is checked where it lands (the object in the API, the pods the controllers
make, the notification) and on the screen, which follows the watches with no
refresh key. (`x`, the shell, has tests of its own.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, RichLog, Static

from agent.hollow import HOLLOW_LOG_LINES, HOLLOW_LOG_TIME
from console.tui.app import PilothouseApp
from console.tui.screens import (
    ConfirmScreen,
    HelpScreen,
    LogScreen,
    ProgressScreen,
    PromptScreen,
    TextScreen,
)
from console.tui.table import ResourceTable
from control.client import Client
from control.errors import ApiError
from control.objects import kinds
from control.objects.revisions import RESTARTED_AT, REVISION
from tests.cluster import DEFAULT_TIMEOUT, HollowCluster, hollow_cluster
from tests.polling import eventually
from tests.tui.conftest import console, noted, press_for
from tests.tui.helpers import ingress_manifest, make_deployment, service_manifest

Obj = dict[str, Any]


@dataclass
class Hollow:
    cluster: HollowCluster
    client: Client
    app: PilothouseApp
    pilot: Pilot[None]

    async def running(self, app_label: str | None = None) -> dict[str, str]:
        """Running pods not being deleted, name -> node."""
        selector = f"app={app_label}" if app_label else None
        items = (await self.client.list(kinds.POD, "default", label_selector=selector))["items"]
        return {
            p["metadata"]["name"]: p["spec"].get("nodeName", "")
            for p in items
            if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        }

    async def wait_running(self, app_label: str, n: int) -> dict[str, str]:
        async def check() -> dict[str, str] | None:
            pods = await self.running(app_label)
            return pods if len(pods) == n else None

        return await eventually(check, f"{n} Running pods of {app_label}", within=DEFAULT_TIMEOUT)

    async def deployment(self, name: str = "web") -> Obj:
        return await self.client.get(kinds.DEPLOYMENT, name, "default")

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)

    async def filter(self, text: str) -> None:
        """Type `/text` and Enter: the view keeps only what matches."""
        await self.press("slash")
        self.app.main.query_one("#prompt", Input).value = ""
        await self.press(*text, "enter")

    async def jump(self, alias: str) -> None:
        await self.press("colon", *alias, "enter")


@asynccontextmanager
async def hollow_console(
    tmp_path: Path, view: str = "pods", deploy: dict[str, int] | None = None, **kwargs: Any
) -> AsyncIterator[Hollow]:
    """Two hollow nodes, `deploy` (name -> replicas) Running, and the console open on `view`."""
    async with hollow_cluster(tmp_path, nodes=2) as cluster:
        await cluster.wait_nodes_ready()
        async with (
            cluster.client() as client,
            console(cluster.plane, view, **kwargs) as (app, pilot),
        ):
            h = Hollow(cluster, client, app, pilot)
            for name, replicas in (deploy or {}).items():
                await make_deployment(client, name, replicas=replicas)
                await h.wait_running(name, replicas)
            yield h


def row(table: ResourceTable, i: int = 0) -> list[str]:
    """Row `i` as shown, or [] while there is none."""
    rows = table.visible_rows()
    return rows[i] if i < len(rows) else []


def names(rows: list[list[str]], status: str = "Running") -> set[str]:
    """The Pods view's pod names in `status`."""
    return {r[1] for r in rows if r[3] == status}


# -- : / esc -------------------------------------------------------------------


async def test_colon_jumps_to_each_view_showing_the_cluster(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "pods", {"web": 3}) as h:
        await h.client.create(kinds.SERVICE, service_manifest("web"))
        rules = {"web.test": [("/", "Prefix", "web", 80)]}
        await h.client.create(kinds.INGRESS, ingress_manifest("site", rules))
        app = h.app
        running = await h.running("web")
        await eventually(lambda: names(app.table.visible_rows()) == set(running))
        await h.jump("deploy")
        assert app.view.name == "deployments"
        await eventually(lambda: row(app.table, 0)[1:3] == ["web", "3/3"])
        await h.jump("svc")
        # The EndpointSlice controller found the three hollow pods, all ready.
        await eventually(lambda: row(app.table, 0)[1 : 1 + 1] == ["web"])
        await eventually(lambda: row(app.table, 0)[5 : 5 + 1] == ["3/3"], within=15)
        await h.jump("ing")
        await eventually(
            lambda: (
                [r[:5] + r[5].split(" ")[:1] for r in app.table.visible_rows()]
                == [["default", "web.test", "/ (Prefix)", "ingress/site", "web:80", "3"]]
            )
        )
        await h.jump("no")
        await eventually(
            lambda: sorted(r[0] for r in app.table.visible_rows()) == ["node-1", "node-2"]
        )
        await eventually(
            lambda: sum(int(r[5].split("/")[0]) for r in app.table.visible_rows()) == 3
        )
        await h.jump("ev")
        # The scheduler's events, one per pod.
        await eventually(
            lambda: sum(1 for r in app.table.visible_rows() if r[3] == "Scheduled") == 3, within=10
        )
        assert {r[4] for r in app.table.visible_rows() if r[3] == "Scheduled"} == {
            f"pod/{n}" for n in running
        }
        # esc walks back through the views visited.
        for back in ("nodes", "ingress", "services", "deployments", "pods"):
            await h.press("escape")
            assert app.view.name == back


async def test_slash_filters_pods_by_text_and_label(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "pods", {"web": 2, "db": 1}) as h:
        app, table = h.app, h.app.table
        db = set(await h.running("db"))
        web = set(await h.running("web"))
        await eventually(lambda: names(table.visible_rows()) == db | web)
        await h.filter("app=db")
        assert names(table.visible_rows()) == db
        assert "/app=db" in str(app.main.query_one("#title", Static).render())
        # A pod that starts to match while filtered shows up, live.
        await h.client.scale(kinds.DEPLOYMENT, "db", 2, "default")
        db = set(await h.wait_running("db", 2))
        await eventually(lambda: names(table.visible_rows()) == db)
        await h.filter("web-")
        await eventually(lambda: names(table.visible_rows()) == web)
        await h.press("escape")  # clears the filter
        await eventually(lambda: names(table.visible_rows()) == db | web)
        await h.filter("tier in (x")
        await eventually(noted(app, "filter:", "error"))


# -- scaling -----------------------------------------------------------------


async def test_s_scales_to_a_typed_number(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "deploy", {"web": 1}) as h:
        await eventually(lambda: row(h.app.table, 0)[2 : 2 + 1] == ["1/1"])
        await press_for(h.pilot, "s", PromptScreen)
        assert h.app.screen.query_one(Input).value == "1"  # the current count, to edit
        h.app.screen.query_one(Input).value = ""
        await h.press("4", "enter")
        await eventually(noted(h.app, "deployment.apps/web scaled to 4"))
        assert (await h.deployment())["spec"]["replicas"] == 4
        await h.wait_running("web", 4)
        await eventually(lambda: row(h.app.table, 0)[2 : 2 + 1] == ["4/4"], within=15)
        await press_for(h.pilot, "s", PromptScreen)
        h.app.screen.query_one(Input).value = "many"
        await h.press("enter")
        await eventually(noted(h.app, "'many' is not a number", "error"))
        assert (await h.deployment())["spec"]["replicas"] == 4


async def test_plus_adds_a_running_pod_shown_live(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "deploy", {"web": 1}) as h:
        app = h.app
        (first,) = await h.running("web")
        await eventually(lambda: row(app.table, 0)[2 : 2 + 1] == ["1/1"])
        await h.press("plus")
        await eventually(noted(app, "deployment.apps/web scaled to 2"))
        await eventually(lambda: row(app.table, 0)[2 : 2 + 1] == ["2/2"], within=15)
        await h.jump("po")
        pods = app.tables["pods"]
        await eventually(lambda: len(names(pods.visible_rows())) == 2, within=15)
        assert first in names(pods.visible_rows())
        assert {r[5] for r in pods.visible_rows()} <= {"node-1", "node-2"}
        assert set(await h.running("web")) == names(pods.visible_rows())
        await h.jump("no")
        nodes = app.tables["nodes"]
        await eventually(lambda: sum(int(r[5].split("/")[0]) for r in nodes.visible_rows()) == 2)


async def test_minus_removes_a_pod_shown_live(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "deploy", {"web": 3}) as h:
        app = h.app
        await eventually(lambda: row(app.table, 0)[2 : 2 + 1] == ["3/3"])
        await h.press("minus")
        await eventually(noted(app, "deployment.apps/web scaled to 2"))
        assert (await h.deployment())["spec"]["replicas"] == 2
        left = await h.wait_running("web", 2)
        await eventually(lambda: row(app.table, 0)[2 : 2 + 1] == ["2/2"], within=15)
        await h.jump("po")
        await eventually(
            lambda: [r[1] for r in app.table.visible_rows()] == sorted(left), within=15
        )


# -- logs, describe, YAML ------------------------------------------------------


async def test_l_shows_logs_with_follow_wrap_timestamps_previous(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "pods", {"web": 1}) as h:
        app = h.app
        (pod,) = await h.running("web")
        await eventually(lambda: names(app.table.visible_rows()) == {pod})
        await press_for(h.pilot, "l", LogScreen)
        screen = app.screen
        assert isinstance(screen, LogScreen)
        lines = [f"{pod}/web line {i}" for i in range(1, HOLLOW_LOG_LINES + 1)]
        await eventually(lambda: screen.text.splitlines() == lines)
        log = screen.query_one(RichLog)
        await eventually(lambda: len(log.lines) == HOLLOW_LOG_LINES)

        def title() -> str:
            return str(screen.query_one("#logs-title", Static).render())

        assert "follow:on" in title() and "wrap:off" in title()
        await h.press("t")
        await eventually(
            lambda: screen.text.splitlines() == [f"{HOLLOW_LOG_TIME} {x}" for x in lines]
        )
        assert "timestamps:on" in title()
        await h.press("w")
        assert log.wrap and "wrap:on" in title()
        await h.press("f")
        assert "follow:off" in title()
        await h.press("p")
        await eventually(
            noted(app, f'previous terminated container "web" in pod "{pod}" not found')
        )
        assert "previous:on" in title()
        await h.press("escape")
        assert app.screen is app.main


async def test_d_describes_with_the_cluster_events(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "pods", {"web": 1}) as h:
        app = h.app
        ((pod, node),) = (await h.running("web")).items()
        await eventually(lambda: names(app.table.visible_rows()) == {pod})
        await press_for(h.pilot, "d", TextScreen)
        text = app.screen.text
        assert f"Name:         {pod}" in text and "Kind:         Pod" in text
        assert "phase: Running" in text
        assert f"Successfully assigned default/{pod} to {node}" in text  # the scheduler's event
        await h.press("escape")
        await h.jump("deploy")
        await eventually(lambda: len(app.table.shown) == 1)
        await press_for(h.pilot, "d", TextScreen)
        assert "ScalingReplicaSet" in app.screen.text  # the deployment controller's event


async def test_y_shows_the_live_yaml(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "pods", {"web": 1}) as h:
        app = h.app
        ((pod, node),) = (await h.running("web")).items()
        obj = await h.client.get(kinds.POD, pod, "default")
        await eventually(lambda: names(app.table.visible_rows()) == {pod})
        await press_for(h.pilot, "y", TextScreen)
        text = app.screen.text
        assert f"  name: {pod}" in text and f"nodeName: {node}" in text
        assert f"podIP: {obj['status']['podIP']}" in text and "phase: Running" in text
        assert f"uid: {obj['metadata']['uid']}" in text


# -- edit, delete, rollouts ------------------------------------------------------


async def test_e_edits_in_the_editor_and_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hollow_console(tmp_path, "deploy", {"web": 1}) as h:
        await eventually(lambda: row(h.app.table, 0)[2 : 2 + 1] == ["1/1"])
        seen: list[str] = []

        def editor(text: str) -> str:  # the headless driver cannot hand over the terminal
            seen.append(text)
            return text.replace("replicas: 1", "replicas: 3")

        monkeypatch.setattr(h.app, "run_editor", editor)
        await h.press("e")
        await eventually(noted(h.app, "deployment.apps/web edited"))
        assert "kind: Deployment" in seen[0] and "status:" not in seen[0]
        await h.wait_running("web", 3)
        await eventually(lambda: row(h.app.table, 0)[2 : 2 + 1] == ["3/3"], within=15)


async def test_ctrl_d_deletes_a_pod_and_its_replacement_shows(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "pods", {"web": 2}) as h:
        app = h.app
        before = set(await h.running("web"))
        await eventually(lambda: names(app.table.visible_rows()) == before)
        victim = sorted(before)[0]  # the first row, under the cursor
        await press_for(h.pilot, "ctrl+d", ConfirmScreen)
        assert victim in app.screen.message
        await h.press("n")
        assert set(await h.running("web")) == before
        await press_for(h.pilot, "ctrl+d", ConfirmScreen)
        await h.press("y")
        await eventually(noted(app, f'pod "{victim}" deleted'))
        after = set(await h.wait_running("web", 2))
        assert victim not in after and len(after - before) == 1
        await eventually(lambda: names(app.table.visible_rows()) == after, within=15)
        with pytest.raises(ApiError) as e:
            await h.client.get(kinds.POD, victim, "default")
        assert e.value.code == 404


async def test_r_restarts_the_rollout_with_new_pods(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "deploy", {"web": 2}) as h:
        app = h.app
        before = set(await h.running("web"))
        await eventually(lambda: row(app.table, 0)[2 : 2 + 1] == ["2/2"])
        await h.press("r")
        await eventually(noted(app, "deployment.apps/web restarted"))

        async def replaced() -> bool:
            now = set(await h.running("web"))
            return len(now) == 2 and not now & before

        await eventually(replaced, "every pod replaced", within=DEFAULT_TIMEOUT)
        template = (await h.deployment())["spec"]["template"]
        assert RESTARTED_AT in template["metadata"]["annotations"]
        await h.jump("po")
        after = set(await h.running("web"))
        await eventually(lambda: names(app.table.visible_rows()) == after, within=15)


async def test_u_undoes_the_rollout_to_the_previous_image(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "deploy", {"web": 2}) as h:
        app = h.app

        async def revision() -> str | None:
            annotations = (await h.deployment())["metadata"].get("annotations") or {}
            return annotations.get(REVISION)

        def image(obj: Obj) -> str:
            return str(obj["spec"]["containers"][0]["image"])

        await eventually(lambda: _is(revision(), "1"), "revision 1", within=DEFAULT_TIMEOUT)
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "pilothouse/busybox:2"}]}}}}  # fmt: skip
        await h.client.patch(kinds.DEPLOYMENT, "web", patch, "default", patch_type="strategic")
        await eventually(lambda: _is(revision(), "2"), "revision 2", within=DEFAULT_TIMEOUT)

        async def images() -> set[str] | None:
            pods = (await h.client.list(kinds.POD, "default"))["items"]
            live = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
            found = {image(p) for p in live if not p["metadata"].get("deletionTimestamp")}
            return found if len(live) == 2 else None

        await eventually(
            lambda: _is(images(), {"pilothouse/busybox:2"}),
            "image 2 rolled out",
            within=DEFAULT_TIMEOUT,
        )
        await eventually(lambda: len(app.table.shown) == 1)
        await h.press("u")
        await eventually(noted(app, "deployment.apps/web rolled back to revision 1"))
        await eventually(
            lambda: _is(images(), {"pilothouse/busybox:latest"}),
            "rolled back",
            within=DEFAULT_TIMEOUT,
        )
        assert await revision() == "3"
        await eventually(lambda: row(app.table, 0)[2 : 2 + 1] == ["2/2"], within=15)


async def _is(coro: Any, value: Any) -> bool:
    return bool(await coro == value)


# -- nodes: cordon, uncordon, drain -------------------------------------------


async def test_c_cordons_and_u_uncordons_a_node(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "no") as h:
        app, table = h.app, h.app.table
        await eventually(lambda: [r[1] for r in table.visible_rows()] == ["Ready", "Ready"])
        await h.press("c")  # the cursor is on node-1
        await eventually(noted(app, "node/node-1 cordoned"))
        await eventually(lambda: row(table, 0)[1 : 1 + 1] == ["Ready,SchedulingDisabled"])
        assert row(table, 0)[6 : 6 + 1] == ["cordoned"] and row(table, 1)[6 : 6 + 1] == [""]
        assert (await h.client.get(kinds.NODE, "node-1"))["spec"]["unschedulable"] is True
        # The scheduler agrees: new pods go to node-2 only.
        await make_deployment(h.client, "web", replicas=3)
        placed = await h.wait_running("web", 3)
        assert set(placed.values()) == {"node-2"}
        await eventually(lambda: row(table, 1)[5 : 5 + 1] == ["3/110"])
        await h.press("u")
        await eventually(noted(app, "node/node-1 uncordoned"))
        await eventually(lambda: row(table, 0)[1:2] == ["Ready"])
        assert row(table, 0)[6 : 6 + 1] == [""]
        assert not (await h.client.get(kinds.NODE, "node-1"))["spec"].get("unschedulable")


async def test_a_node_that_stops_heartbeating_shows_not_ready(tmp_path: Path) -> None:
    async with hollow_cluster(tmp_path, nodes=2, grace_period=0.5) as cluster:
        await cluster.wait_nodes_ready()
        async with console(cluster.plane, view="no") as (app, _pilot):
            table = app.table
            await eventually(lambda: [r[1] for r in table.visible_rows()] == ["Ready", "Ready"])
            cluster.agents["node-2"].heartbeating = False
            await eventually(
                lambda: table.visible_rows()[1][1] in ("NotReady", "Unknown"), within=10
            )
            health = app.main.query_one("#health")
            await eventually(lambda: "nodes 1/2 ready" in str(health.render()), within=10)


async def test_drain_evicts_with_progress_and_pods_move(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "no", {"web": 4}) as h:
        app = h.app
        on_1 = {p for p, n in (await h.running("web")).items() if n == "node-1"}
        await eventually(lambda: len(app.table.shown) == 2)
        await press_for(h.pilot, "r", ConfirmScreen)  # drain, on the nodes view
        await press_for(h.pilot, "y", ProgressScreen)
        screen = app.screen
        assert isinstance(screen, ProgressScreen)
        await eventually(noted(app, f"node/node-1 drained ({len(on_1)} pods evicted)"), within=20)
        steps = "\n".join(str(line.text) for line in screen.query_one(RichLog).lines)
        assert f"evicting {len(on_1)} pods" in steps
        for pod in on_1:
            assert f"evicted pod default/{pod}" in steps
        assert (await h.client.get(kinds.NODE, "node-1"))["spec"]["unschedulable"]

        async def all_on_node_2() -> bool:
            placed = await h.running("web")
            return len(placed) == 4 and set(placed.values()) == {"node-2"}

        await eventually(all_on_node_2, "every pod on node-2", within=DEFAULT_TIMEOUT)
        await h.press("enter")  # closes the progress screen
        await eventually(lambda: row(app.table, 0)[5 : 5 + 1] == ["0/110"], within=10)


# -- apply, palette, help, read-only --------------------------------------------


async def test_a_applies_a_manifest_file_and_its_pods_run(tmp_path: Path) -> None:
    manifest = tmp_path / "api.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: default}\n"
        "spec:\n  replicas: 2\n  selector: {matchLabels: {app: api}}\n"
        "  template:\n    metadata: {labels: {app: api}}\n"
        "    spec: {containers: [{name: api, image: pilothouse/busybox}]}\n"
    )
    async with hollow_console(tmp_path, "pods") as h:
        await press_for(h.pilot, "a", PromptScreen)
        h.app.screen.query_one(Input).value = str(manifest)
        await h.press("enter")
        await eventually(noted(h.app, "deployment.apps/api created"))
        running = await h.wait_running("api", 2)
        await eventually(lambda: names(h.app.table.visible_rows()) == set(running), within=15)
        await press_for(h.pilot, "a", PromptScreen)
        h.app.screen.query_one(Input).value = str(tmp_path / "missing.yaml")
        await h.press("enter")
        await eventually(noted(h.app, "missing.yaml", "error"))


async def test_command_palette_runs_node_actions(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "no") as h:
        app = h.app
        await eventually(lambda: len(app.table.shown) == 2)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Cordon (cordon)", "Uncordon (uncordon)", "Drain (drain)", "YAML (yaml)"):
            assert title in titles
        assert "Scale (scale)" not in titles  # not on nodes
        assert {f"View: {v}" for v in ("Pods", "Nodes", "Events")} <= set(titles)
        (cordon,) = [c for c in app.get_system_commands(app.screen) if c.title.startswith("Cordon")]
        cordon.callback()
        await eventually(noted(app, "node/node-1 cordoned"))
        assert (await h.client.get(kinds.NODE, "node-1"))["spec"]["unschedulable"] is True
        await eventually(lambda: row(app.table, 0)[6 : 6 + 1] == ["cordoned"])


async def test_question_mark_lists_the_view_keys(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "no") as h:
        await press_for(h.pilot, "question_mark", HelpScreen)
        rows = {(r[0], r[1]) for r in h.app.screen.rows}
        assert {("c", "cordon"), ("u", "uncordon"), ("r", "drain")} <= rows
        assert not {r[1] for r in h.app.screen.rows} & {"scale", "logs", "restart", "undo"}
        await h.press("escape")
        assert h.app.screen is h.app.main


async def test_readonly_hides_and_refuses_every_mutating_key(tmp_path: Path) -> None:
    async with hollow_console(tmp_path, "deploy", {"web": 1}, readonly=True) as h:
        app = h.app
        await eventually(lambda: row(app.table, 0)[2 : 2 + 1] == ["1/1"])
        assert "[read-only]" in str(app.main.query_one("#title", Static).render())
        await h.press("plus", "minus", "s", "ctrl+d", "r", "u", "e", "a")
        await h.jump("no")
        await eventually(lambda: len(app.table.shown) == 2)
        await h.press("c", "r")
        await h.pilot.pause(0.3)
        assert app.screen is app.main and not app._notifications
        assert (await h.deployment())["spec"]["replicas"] == 1
        assert not (await h.client.get(kinds.NODE, "node-1"))["spec"].get("unschedulable")
        shown = {b.binding.id for b in app.main.active_bindings.values() if b.binding.show}
        assert not shown & {"cordon", "uncordon", "drain", "delete", "edit", "apply"}
        assert {"describe", "yaml", "filter"} <= shown
        titles = " ".join(c.title for c in app.get_system_commands(app.screen))
        assert "Cordon" not in titles and "Drain" not in titles and "YAML" in titles
