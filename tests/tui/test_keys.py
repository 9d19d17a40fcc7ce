"""One test per key, driven by Pilot against the in-process control plane."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events
from textual.widgets import Footer, Input

from console.tui import actions
from console.tui.app import PilothouseApp
from console.tui.screens import ConfirmScreen, HelpScreen, LogScreen, PromptScreen, TextScreen
from control.client import Client
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.objects import kinds
from control.objects.revisions import REVISION
from tests.polling import eventually
from tests.tui.conftest import console, noted, notes, press_for
from tests.tui.helpers import event_manifest, make_deployment, make_node, make_pod


async def replicas(client: Client, name: str = "web") -> int:
    return int((await client.get(kinds.DEPLOYMENT, name, "default"))["spec"]["replicas"])


async def unschedulable(client: Client, name: str) -> bool:
    return bool((await client.get(kinds.NODE, name))["spec"].get("unschedulable"))


async def test_colon_jumps_to_views_by_alias(plane: ControlPlane, client: Client) -> None:
    await make_node(client, "node-1")
    async with console(plane) as (app, pilot):
        for alias, name in [
            ("no", "nodes"),
            ("deploy", "deployments"),
            ("svc", "services"),
            ("ing", "ingress"),
            ("ev", "events"),
            ("po", "pods"),
        ]:
            await pilot.press("colon", *alias, "enter")
            assert app.view.name == name
        await pilot.press("colon", *"nosuch", "enter")
        await eventually(noted(app, "no view 'nosuch'", "error"))
        assert app.view.name == "pods"


async def test_keys_typed_ahead_go_where_they_were_typed(
    plane: ControlPlane, client: Client
) -> None:
    """`:deploy⏎/web⏎+` typed faster than the console handles keys: the prompt takes its
    text (on the view, d e l y would describe, edit, log and show YAML), and the `+`
    after Enter is the view's again."""
    await make_deployment(client, "web", replicas=2)
    await make_deployment(client, "api", replicas=2)
    async with console(plane, view="deploy") as (app, pilot):
        # The rows are there to act on: a key typed ahead of them has nothing selected.
        await eventually(lambda: len(app.table.shown) == 2)
        await pilot.press("colon", *"po", "enter")
        typed = [("colon", ":"), *((c, c) for c in "deploy"), ("enter", "\r")]
        typed += [("slash", "/"), *((c, c) for c in "web"), ("enter", "\r"), ("plus", "+")]
        for key, character in typed:  # all queued at once, none handled yet
            app.post_message(events.Key(key, character))
        await eventually(noted(app, "deployment.apps/web scaled to 3"), within=15)
        assert app.view.name == "deployments" and app.table.filter_text == "web"
        assert app.screen is app.main and notes(app) == ["scale: deployment.apps/web scaled to 3"]
        assert await replicas(client, "api") == 2


async def test_escape_goes_back(plane: ControlPlane) -> None:
    async with console(plane) as (app, pilot):
        await pilot.press("colon", *"no", "enter")
        await pilot.press("colon", *"svc", "enter")
        await pilot.press("escape")
        assert app.view.name == "nodes"
        await pilot.press("escape")
        assert app.view.name == "pods"


async def test_slash_filters_by_text_and_label(plane: ControlPlane, client: Client) -> None:
    await make_pod(client, "web-1", labels={"app": "web"})
    await make_pod(client, "web-2", labels={"app": "web"})
    await make_pod(client, "db-1", labels={"app": "db"})
    async with console(plane) as (app, pilot):
        table = app.table
        await eventually(lambda: len(table.shown) == 3)
        await pilot.press("slash", *"web-2", "enter")
        assert [r[1] for r in table.visible_rows()] == ["web-2"]
        await pilot.press("slash")
        app.main.query_one("#prompt", Input).value = ""
        await pilot.press(*"app=db", "enter")
        assert [r[1] for r in table.visible_rows()] == ["db-1"]
        # A pod that starts to match while filtered appears; one that stops matching goes.
        await make_pod(client, "db-2", labels={"app": "db"})
        await eventually(lambda: [r[1] for r in table.visible_rows()] == ["db-1", "db-2"])
        await client.patch(kinds.POD, "db-1", {"metadata": {"labels": {"app": "x"}}}, "default")
        await eventually(lambda: [r[1] for r in table.visible_rows()] == ["db-2"])
        await pilot.press("escape")  # clears the filter
        await eventually(lambda: len(table.shown) == 4)


async def test_plus_minus_scale_by_one(plane: ControlPlane, client: Client) -> None:
    await make_deployment(client, "web", replicas=2)
    async with console(plane, view="deploy", rows=1) as (app, pilot):
        await pilot.press("plus")
        await eventually(lambda: _eq(replicas(client), 3))
        await eventually(lambda: app.table.visible_rows()[0][2] == "0/3")  # live, no refresh key
        await pilot.press("minus")
        await eventually(lambda: _eq(replicas(client), 2))
        await eventually(noted(app, "scaled to 2"))


async def _eq(coro, value) -> bool:  # type: ignore[no-untyped-def]
    return bool(await coro == value)


async def test_s_scales_to_a_typed_number(plane: ControlPlane, client: Client) -> None:
    await make_deployment(client, "web", replicas=2)
    async with console(plane, view="deploy", rows=1) as (app, pilot):
        await press_for(pilot, "s", PromptScreen)
        app.screen.query_one(Input).value = ""
        await pilot.press(*"7", "enter")
        await eventually(lambda: _eq(replicas(client), 7))
        await press_for(pilot, "s", PromptScreen)
        app.screen.query_one(Input).value = ""
        await pilot.press(*"-3", "enter")
        await eventually(noted(app, "replicas must be >= 0", "error"))
        assert await replicas(client) == 7


async def test_scale_keys_only_where_they_apply(plane: ControlPlane, client: Client) -> None:
    await make_pod(client, "web-1")
    async with console(plane, rows=1) as (app, pilot):
        await pilot.press("plus")
        await pilot.pause(0.2)
        assert not app._notifications
        assert not app.main.check_action("scale_up", ())


async def test_c_and_u_cordon_and_uncordon(plane: ControlPlane, client: Client) -> None:
    await make_node(client, "node-1")
    async with console(plane, view="no", rows=1) as (app, pilot):
        await pilot.press("c")
        await eventually(lambda: unschedulable(client, "node-1"))
        await eventually(lambda: app.table.visible_rows()[0][6] == "cordoned")
        await pilot.press("u")
        await eventually(lambda: _not(unschedulable(client, "node-1")))
        await eventually(lambda: app.table.visible_rows()[0][6] == "")
        await eventually(noted(app, "node/node-1 uncordoned"))


async def _not(coro) -> bool:  # type: ignore[no-untyped-def]
    return not await coro


async def test_ctrl_d_deletes_after_confirmation(plane: ControlPlane, client: Client) -> None:
    await make_pod(client, "web-1")
    async with console(plane, rows=1) as (app, pilot):
        await press_for(pilot, "ctrl+d", ConfirmScreen)
        await pilot.press("n")
        await pilot.pause(0.2)
        assert (await client.get(kinds.POD, "web-1", "default"))["metadata"]["name"] == "web-1"
        await press_for(pilot, "ctrl+d", ConfirmScreen)
        await pilot.press("y")
        await eventually(lambda: len(app.table.shown) == 0)
        with pytest.raises(ApiError) as e:
            await client.get(kinds.POD, "web-1", "default")
        assert e.value.code == 404
        await eventually(noted(app, 'pod "web-1" deleted'))


async def test_y_shows_yaml(plane: ControlPlane, client: Client) -> None:
    await make_deployment(client, "web")
    async with console(plane, view="deploy", rows=1) as (app, pilot):
        await press_for(pilot, "y", TextScreen)
        text = app.screen.text
        assert "kind: Deployment" in text and "name: web" in text and "replicas: 2" in text
        await pilot.press("escape")
        assert app.view.name == "deployments" and not isinstance(app.screen, TextScreen)


async def test_d_describes_with_events(plane: ControlPlane, client: Client) -> None:
    await make_pod(client, "web-1")
    await client.create(
        kinds.EVENT,
        event_manifest(
            "web-1.1",
            "Pod/web-1",
            "BackOff",
            "Back-off restarting failed container",
            type_="Warning",
        ),
    )
    async with console(plane, rows=1) as (app, pilot):
        await press_for(pilot, "d", TextScreen)
        text = app.screen.text
        assert "Name:         web-1" in text
        assert "BackOff" in text and "Back-off restarting failed container" in text


async def test_r_restarts_a_rollout(plane: ControlPlane, client: Client) -> None:
    await make_deployment(client, "web")
    async with console(plane, view="deploy", rows=1) as (app, pilot):
        await pilot.press("r")
        await eventually(noted(app, "deployment.apps/web restarted"))
        obj = await client.get(kinds.DEPLOYMENT, "web", "default")
        annotations = obj["spec"]["template"]["metadata"]["annotations"]
        assert "kubectl.kubernetes.io/restartedAt" in annotations


async def test_u_undoes_a_rollout(plane: ControlPlane, client: Client) -> None:
    """Against the deployment controller: two revisions, then `u` goes back to the first."""
    await make_deployment(client, "web")

    async def revision() -> str:
        obj = await client.get(kinds.DEPLOYMENT, "web", "default")
        return str((obj["metadata"].get("annotations") or {}).get(REVISION))

    async def image() -> str:
        obj = await client.get(kinds.DEPLOYMENT, "web", "default")
        return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])

    await eventually(lambda: _eq(revision(), "1"))
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "busybox:new"}]}}}
    }
    await client.patch(kinds.DEPLOYMENT, "web", patch, "default", patch_type="strategic")
    await eventually(lambda: _eq(revision(), "2"))
    async with console(plane, view="deploy", rows=1) as (app, pilot):
        await pilot.press("u")
        await eventually(noted(app, "rolled back to revision 1"))
        assert await image() == "pilothouse/busybox:latest"
        await eventually(lambda: _eq(revision(), "3"))


async def test_u_without_history_says_so(plane: ControlPlane, client: Client) -> None:
    await make_deployment(client, "web")
    async with console(plane, view="deploy", rows=1) as (app, pilot):
        await pilot.press("u")
        await eventually(noted(app, "no rollout history", "error"))


async def test_l_logs_reports_the_api_error(plane: ControlPlane, client: Client) -> None:
    await make_pod(client, "web-1")
    async with console(plane, rows=1) as (app, pilot):
        await press_for(pilot, "l", LogScreen)
        # The pod has no node, so the API server has no logs to give: the console
        # shows the API's own error, not hang.
        await eventually(
            noted(app, "logs: BadRequest (400): pod web-1 does not have a host assigned", "error")
        )
        screen = app.screen
        assert isinstance(screen, LogScreen)
        assert screen.options["follow"] is False
        await pilot.press("t")
        assert screen.options["timestamps"] is True


async def test_x_says_when_the_terminal_cannot_be_handed_over(
    plane: ControlPlane, client: Client
) -> None:
    await make_pod(client, "web-1")
    async with console(plane, rows=1) as (app, pilot):
        await pilot.press("x")
        # Pilot's headless driver cannot suspend (tests/tui/test_shell.py pretends it can).
        await eventually(noted(app, "cannot be handed over", "error"))


async def test_a_applies_a_manifest(plane: ControlPlane, client: Client, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\n  namespace: default\n"
        "data:\n  a: '1'\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\nspec: {}\n")
    async with console(plane) as (app, pilot):
        await press_for(pilot, "a", PromptScreen)
        app.screen.query_one(Input).value = str(manifest)
        await pilot.press("enter")
        await eventually(noted(app, "configmap/conf created"))
        assert (await client.get(kinds.CONFIGMAP, "conf", "default"))["data"] == {"a": "1"}
        await press_for(pilot, "a", PromptScreen)
        app.screen.query_one(Input).value = str(bad)
        await pilot.press("enter")
        await eventually(noted(app, "Invalid", "error"))


async def test_e_edits_and_applies(
    plane: ControlPlane, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_deployment(client, "web", replicas=2)
    async with console(plane, view="deploy", rows=1) as (app, pilot):
        # The headless driver cannot suspend; stand in for the editor.
        monkeypatch.setattr(
            app, "run_editor", lambda text: text.replace("replicas: 2", "replicas: 6")
        )
        await pilot.press("e")
        await eventually(noted(app, "deployment.apps/web edited"))
        assert await replicas(client) == 6


async def test_e_reports_a_conflict(
    plane: ControlPlane, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_deployment(client, "web", replicas=2)
    async with console(plane, view="deploy", rows=1) as (app, pilot):

        def edit_while_someone_scales(text: str) -> str:
            import asyncio

            asyncio.get_running_loop().create_task(
                client.scale(kinds.DEPLOYMENT, "web", 9, "default")
            )
            return text.replace("replicas: 2", "replicas: 3")

        async def slow_replace(*args, **kwargs):  # type: ignore[no-untyped-def]
            import asyncio

            await asyncio.sleep(0.3)
            return await original(*args, **kwargs)

        original = actions.replace_edited
        monkeypatch.setattr(actions, "replace_edited", slow_replace)
        monkeypatch.setattr(app, "run_editor", edit_while_someone_scales)
        await pilot.press("e")
        await eventually(noted(app, "Conflict", "error"))
        assert await replicas(client) == 9


async def test_question_mark_shows_keys_with_ids(plane: ControlPlane) -> None:
    async with console(plane, view="deploy") as (app, pilot):
        await press_for(pilot, "question_mark", HelpScreen)
        ids = {row[1] for row in app.screen.rows}
        assert {"scale_up", "scale_down", "scale", "delete", "restart", "undo", "yaml"} <= ids
        assert "cordon" not in ids  # not on deployments


async def test_keymap_remaps_by_binding_id(plane: ControlPlane, client: Client) -> None:
    await make_deployment(client, "web", replicas=2)
    keymap = {"scale_up": "ctrl+up"}
    async with console(plane, view="deploy", keymap=keymap, rows=1) as (_app, pilot):
        await pilot.press("ctrl+up")
        await eventually(lambda: _eq(replicas(client), 3))


async def test_readonly_hides_mutating_actions(plane: ControlPlane, client: Client) -> None:
    await make_deployment(client, "web", replicas=2)
    async with console(plane, view="deploy", readonly=True, rows=1) as (app, pilot):
        footer_keys = {b.binding.action for b in app.main.active_bindings.values()}
        assert "scale_up" not in footer_keys and "delete" not in footer_keys
        assert "yaml" in footer_keys and "describe" in footer_keys
        await pilot.press("plus", "ctrl+d", "r", "e", "a")
        await pilot.pause(0.3)
        assert await replicas(client) == 2
        assert not isinstance(app.screen, ConfirmScreen | PromptScreen)
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert any("YAML" in c for c in commands)
        assert not any("scale" in c.lower() or "Delete" in c for c in commands)
        assert app.main.query_one(Footer) is not None


async def test_command_palette_lists_actions(plane: ControlPlane) -> None:
    async with console(plane, view="deploy") as (app, pilot):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for name in ("Scale", "+1", "-1", "Describe", "YAML", "Edit", "Delete", "Restart", "Undo"):
            assert any(t.startswith(name) for t in titles), name
        assert any(t.startswith("View: Nodes") for t in titles)
        await pilot.press("colon", *"no", "enter")
        (nodes,) = [c for c in app.get_system_commands(app.screen) if c.title == "View: Nodes"]
        await pilot.press("colon", *"po", "enter")
        nodes.callback()
        assert app.view.name == "nodes"


def test_app_takes_a_client_factory() -> None:
    made: list[Client] = []

    def factory() -> Client:
        made.append(Client("/nonexistent.sock"))
        return made[-1]

    app = PilothouseApp(factory, readonly=True)
    assert app.client is made[0] and app.readonly


async def test_the_footer_follows_the_view(plane: ControlPlane) -> None:
    def shown(app: PilothouseApp) -> set[str]:
        return {str(k.key) for k in app.main.query_one(Footer).children}

    async with console(plane) as (app, pilot):
        await eventually(lambda: "l" in shown(app))  # logs, on pods
        assert "plus" not in shown(app)
        await pilot.press("colon", *"deploy", "enter")
        await eventually(lambda: "plus" in shown(app) and "l" not in shown(app))
        await pilot.press("colon", *"no", "enter")
        await eventually(lambda: "c" in shown(app) and "plus" not in shown(app))
