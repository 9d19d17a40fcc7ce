"""PilothouseApp: the operator's console.

The app reaches the cluster only through `control.client.Client`. Each kind it
shows is one `WatchCache` (list + watch), shared by the views and the health
header; views apply changes as keyed diffs (see table.py). Every API call runs
in a worker, and every action ends in a notification: its result or its error.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SuspendNotSupported, SystemCommand
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Input, Static

from console.tui import actions
from console.tui.bindings import ACTIONS, APPLIES, MUTATING, NOT_SCALABLE, Act, main_bindings
from console.tui.informer import WatchCache
from console.tui.leader import follow_leader
from console.tui.screens import (
    ConfirmScreen,
    HelpScreen,
    LogScreen,
    ProgressScreen,
    PromptScreen,
    TextScreen,
    error_text,
)
from console.tui.table import ResourceTable
from console.tui.traffic import POLL_SECONDS
from console.tui.views import PROJECTIONS, VIEWS, Context, ViewSpec, find_view
from console.tui.widgets import BurstFooter, PromptInput
from control.client import Client, ClusterUnreachable
from control.errors import ApiError
from control.objects import kinds
from control.objects.columns import node_status
from control.objects.kinds import ResourceType
from control.objects.routes import routes_of
from control.operations import OperationError

ClientFactory = Callable[[], Client]
# Runs a command line with the terminal handed over: `x` runs the CLI's exec.
ShellRunner = Callable[[list[str]], "subprocess.CompletedProcess[bytes]"]


def run_with_terminal(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    """The default ShellRunner: the terminal is the child's; its stderr is
    kept for the notification when it fails (with a tty, the shell's own
    output all goes to stdout). A ^C before the child's terminal is raw
    interrupts the child only: the console waits it out (a Python handler,
    unlike SIG_IGN, is not inherited)."""
    previous = signal.signal(signal.SIGINT, _ignore_signal)
    try:
        return subprocess.run(argv, stderr=subprocess.PIPE, check=False)
    finally:
        signal.signal(signal.SIGINT, previous)


def _ignore_signal(signum: int, frame: object) -> None:
    return None


# The view that shows the ingress routes' live traffic.
TRAFFIC_VIEW = "ingress"
# A change of more keys than this (a list) is flushed at once.
FLUSH_NOW = 1000


class MainScreen(Screen[None]):
    BINDINGS = main_bindings()

    def __init__(self, initial_view: str = "pods") -> None:
        super().__init__()
        self.initial_view = initial_view

    @property
    def papp(self) -> PilothouseApp:
        app = self.app
        assert isinstance(app, PilothouseApp)
        return app

    def compose(self) -> ComposeResult:
        with Horizontal(id="header"):
            yield Static("pilothouse", id="health")
        yield Static("", id="title")
        with ContentSwitcher(initial=None, id="views"):
            for spec in VIEWS:
                yield ResourceTable(spec, self.papp.ctx, id=f"view-{spec.name}")
        yield PromptInput(self.papp.submit_prompt, id="prompt", classes="hidden")
        yield BurstFooter()

    def on_mount(self) -> None:
        papp = self.papp
        papp.tables = {t.spec.name: t for t in self.query(ResourceTable)}
        for spec in VIEWS:
            cache = papp.caches.get(spec.rt.plural)
            if cache is not None and cache.objects:
                papp.tables[spec.name].mark_all()  # listed before this screen mounted
        papp.show_view(self.initial_view)

    # -- applicability -----------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        papp = self.papp
        if papp.readonly and action in MUTATING:
            return False
        if action in ("command", "filter") and papp.prompt_open():
            return False  # `:` and `/` typed into the prompt are text
        views = APPLIES.get(action)
        if views is not None and papp.view.name not in views:
            return False
        return True


def _forward(call: Callable[[PilothouseApp], object]) -> Callable[[MainScreen], None]:
    def action(screen: MainScreen) -> None:
        call(screen.papp)

    return action


# What each of the main screen's actions (bindings.ACTIONS) does, on the app.
# Textual runs a binding as the screen's `action_<name>`: one forwarder each.
SCREEN_ACTIONS: dict[str, Callable[[PilothouseApp], object]] = {
    "command": lambda app: app.open_prompt("command"),
    "filter": lambda app: app.open_prompt("filter"),
    "back": lambda app: app.back(),
    "help": lambda app: app.push_screen(HelpScreen(app.help_rows())),
    "scale": lambda app: app.act_scale_prompt(),
    "scale_up": lambda app: app.act_scale_by(1),
    "scale_down": lambda app: app.act_scale_by(-1),
    "weight_up": lambda app: app.act_shift_weights(True),
    "weight_down": lambda app: app.act_shift_weights(False),
    "logs": lambda app: app.act_logs(),
    "describe": lambda app: app.act_describe(),
    "yaml": lambda app: app.act_yaml(),
    "edit": lambda app: app.act_edit(),
    "delete": lambda app: app.act_delete(),
    "restart": lambda app: app.act_simple(actions.rollout_restart),
    "undo": lambda app: app.act_simple(actions.rollout_undo),
    "cordon": lambda app: app.act_cordon(True),
    "uncordon": lambda app: app.act_cordon(False),
    "drain": lambda app: app.act_drain(),
    "shell": lambda app: app.act_shell(),
    "apply": lambda app: app.act_apply(),
    "trigger": lambda app: app.act_simple(actions.run_cronjob),
    "suspend": lambda app: app.act_simple(actions.suspend_cronjob),
}
for _name, _call in SCREEN_ACTIONS.items():
    setattr(MainScreen, f"action_{_name}", _forward(_call))


class PilothouseApp(App[None]):
    TITLE = "pilothouse"
    CSS_PATH = "app.tcss"

    def __init__(
        self,
        client_factory: ClientFactory,
        *,
        readonly: bool = False,
        initial_view: str = "pods",
        info: str = "",
        keymap: dict[str, str] | None = None,
        target: list[str] | None = None,
        shell_runner: ShellRunner = run_with_terminal,
    ) -> None:
        super().__init__()
        self.client_factory = client_factory
        self.client = client_factory()
        self.readonly = readonly
        self.initial_view = initial_view
        self.info = info
        # CLI flags that name this cluster, for commands run on its behalf.
        self.target = target
        self.shell_runner = shell_runner
        self.ctx = Context()
        self.caches: dict[str, WatchCache] = {}
        self.view: ViewSpec = find_view(initial_view) or VIEWS[0]
        self.history: list[str] = []
        self.server_version = ""
        self.leader = ""  # which control plane leads; "" without leader election
        self._prompt_mode = ""
        self.tables: dict[str, ResourceTable] = {}
        self._polling = False  # a traffic poll is under way
        if keymap:
            self.set_keymap(keymap)

    # -- lifecycle ---------------------------------------------------------------

    def on_mount(self) -> None:
        # Start listing before the screen is built: at 20,000 pods the list is
        # most of the wait. The health header needs nodes and pods on every view.
        for rt in (kinds.NODE, kinds.POD):
            self.cache(rt)
        self.push_screen(MainScreen(self.initial_view))
        self.set_interval(1.0, self.update_health)
        self.set_interval(5.0, self._sample_nodes)
        self.set_interval(10.0, self._refresh_ages)
        self.set_interval(POLL_SECONDS, self.poll_traffic)
        self.fetch_version()
        self.follow_leader()

    async def on_unmount(self) -> None:
        for cache in self.caches.values():
            await cache.stop()
        await self.client.close()

    @work(group="version")
    async def fetch_version(self) -> None:
        try:
            info = await self.client.request("GET", "/version")
            self.server_version = str(info.get("gitVersion") or "")
        except (ApiError, ClusterUnreachable) as e:
            self.server_version = f"unreachable: {e}"
        self.update_health()

    @work(group="leader", exclusive=True, exit_on_error=False)
    async def follow_leader(self) -> None:
        await follow_leader(self.client, self._show_leader)

    def _show_leader(self, leader: str) -> None:
        if leader != self.leader:
            self.leader = leader
            self.update_health()

    def cache(self, rt: ResourceType) -> WatchCache:
        """The watch cache of one kind, started on first use."""
        cache = self.caches.get(rt.plural)
        if cache is None:
            cache = WatchCache(self.client, rt, PROJECTIONS.get(rt.plural))
            self.caches[rt.plural] = cache
            self.ctx.objects[rt.plural] = cache.objects
            cache.subscribe(functools.partial(self._changed, cache))
            cache.start()
        return cache

    def _changed(self, cache: WatchCache, keys: set[str]) -> None:
        rt = cache.rt
        self.ctx.objects[rt.plural] = cache.objects  # a re-list replaces the dict
        if rt is kinds.POD:
            nodes = self.ctx.update_pods(keys)
            if nodes and self.tables:
                self.tables["nodes"].mark(nodes)
        elif rt is kinds.ENDPOINTSLICE:
            self.ctx.update_slices(keys)
        rules_changed = rt is kinds.NODE and self.ctx.update_rules(keys)
        if not self.tables:
            return  # the main screen marks everything cached when it mounts
        if rt is kinds.NODE:
            self.update_health()
            if rules_changed:
                self.tables["services"].mark_all()
        listing = not cache.synced.is_set()
        for spec in VIEWS:
            if rt in spec.row_kinds:
                if rt is spec.rt:
                    self.tables[spec.name].listing = listing
                self.tables[spec.name].mark(spec.object_keys(rt, keys))
            elif rt in spec.depends:
                self.tables[spec.name].mark_all()
        table = self.table
        if len(keys) > FLUSH_NOW and not (table.listing and table.row_count):
            # A list: show its first page and its last now rather than at the next
            # tick; the pages between go in at the (slower) listing ticks.
            table.flush()

    def poll_traffic(self) -> None:
        """Ask for the ingress routes' traffic while their view is shown (one
        request at a time: a slow answer is waited for, not cut short)."""
        if self.tables and self.view.name == TRAFFIC_VIEW and not self._polling:
            self._polling = True
            self.run_worker(self._poll_traffic(), group="traffic", exit_on_error=False)

    async def _poll_traffic(self) -> None:
        traffic = self.ctx.traffic
        try:
            traffic.update((await self.client.ingress_stats()).get("routes") or {})
        except Exception as e:  # the API's errors, or an answer of the wrong shape
            traffic.failed(error_text(e))
        finally:
            self._polling = False
        self.tables[TRAFFIC_VIEW].mark_all()
        self.update_title()

    def _sample_nodes(self) -> None:
        self.ctx.sample_nodes()
        self.tables["nodes"].mark(set(self.ctx.of(kinds.NODE)))

    def _refresh_ages(self) -> None:
        if self.tables:
            self.table.refresh_ages()

    @property
    def main(self) -> MainScreen:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("no main screen")

    @property
    def table(self) -> ResourceTable:
        return self.tables[self.view.name]

    # -- views -------------------------------------------------------------------

    def show_view(self, name: str, remember: bool = True) -> bool:
        spec = find_view(name)
        if spec is None:
            return False
        if remember and spec is not self.view:
            self.history.append(self.view.name)
        self.view = spec
        for rt in (*spec.row_kinds, *spec.depends):
            cache = self.cache(rt)
            # A table created after its cache synced starts from the whole cache.
            if rt in spec.row_kinds and cache.synced.is_set():
                self.table.mark_all()
        if spec.name == TRAFFIC_VIEW:
            self.poll_traffic()
        self.main.query_one("#views", ContentSwitcher).current = f"view-{spec.name}"
        self.main.set_focus(self.table)  # now: keys typed ahead go where they belong
        self.update_title()
        self.main.refresh_bindings()
        return True

    def back(self) -> None:
        prompt = self.main.query_one("#prompt", Input)
        if not prompt.has_class("hidden"):
            self.close_prompt()
            return
        if self.table.filter_text:
            self.table.set_filter("")
            self.update_title()
            return
        if self.history:
            self.show_view(self.history.pop(), remember=False)

    def update_title(self) -> None:
        if self.view.name not in self.tables:
            return  # not mounted yet
        table = self.table
        title = f" {self.view.title}"
        if table.filter_text:
            title += f"  /{table.filter_text}"
        if self.readonly:
            title += "  [read-only]"
        cache = self.caches.get(self.view.rt.plural)
        if cache is not None and not cache.synced.is_set():
            title += "  (loading…)"
        if self.view.name == TRAFFIC_VIEW and self.ctx.traffic.error:
            title += "  (no live traffic)"
        title += f"  {len(table.shown)} rows"
        with contextlib.suppress(NoMatches, LookupError):
            # Plain text: "[read-only]" and a filter's own brackets are not markup.
            self.main.query_one("#title", Static).update(Text(title), layout=False)

    def update_health(self) -> None:
        try:
            main = self.main
        except LookupError:
            return
        if not self.tables:
            return
        nodes = self.ctx.of(kinds.NODE)
        ready = sum(1 for n in nodes.values() if node_status(n).startswith("Ready"))
        phases = self.ctx.phases
        order = ("Running", "Pending", "Succeeded", "Failed", "Unknown")
        pods = " ".join(f"{ph} {phases[ph]}" for ph in order if phases.get(ph))
        parts = [
            f"nodes {ready}/{len(nodes)} ready",
            f"pods {len(self.ctx.pods)}" + (f" ({pods})" if pods else ""),
            f"server {self.client.server}",
        ]
        if self.server_version:
            parts.append(self.server_version)
        if self.leader:
            parts.append(self.leader)
        if self.info:
            parts.append(self.info)
        errors = [c.error for c in self.caches.values() if c.error]
        text = "  │  ".join(parts)
        if errors:
            text = f"[b red]⚠ {errors[0]}[/]  │  " + text
        with contextlib.suppress(NoMatches):  # torn down under a timer
            main.query_one("#health", Static).update(text, layout=False)
        self.update_title()

    # -- prompt (: and /) -------------------------------------------------------

    def prompt_open(self) -> bool:
        return bool(self._prompt_mode)

    def open_prompt(self, mode: str) -> None:
        prompt = self.main.query_one("#prompt", Input)
        self._prompt_mode = mode
        prompt.remove_class("hidden")
        if mode == "command":
            prompt.placeholder = ":view  (po deploy svc ing no ev), or :q to quit"
            prompt.value = ""
        else:
            prompt.placeholder = "/text, or a label selector such as app=web,tier!=db"
            prompt.value = self.table.filter_text
        self.main.set_focus(prompt)  # now, not later: the next key may be on its way

    def close_prompt(self) -> None:
        prompt = self.main.query_one("#prompt", Input)
        prompt.add_class("hidden")
        self._prompt_mode = ""
        self.main.set_focus(self.table)

    def submit_prompt(self, value: str) -> None:
        mode, value = self._prompt_mode, value.strip()
        self.close_prompt()
        if mode == "command":
            self.run_command(value)
        elif mode == "filter":
            error = self.table.set_filter(value)
            if error:
                self.notify(f"filter: {error}", severity="error")
            self.update_title()

    def run_command(self, value: str) -> None:
        value = value.lstrip(":").strip()
        if not value:
            return
        if value in ("q", "quit", "q!"):
            self.exit()
            return
        if not self.show_view(value):
            names = ", ".join(sorted(a for v in VIEWS for a in v.aliases if len(a) <= 6))
            self.notify(f"no view {value!r}: try {names}", severity="error")

    # -- help and the command palette -------------------------------------------

    def active_actions(self) -> list[Act]:
        main = self.main
        return [a for a in ACTIONS if main.check_action(a.action, ())]

    def help_rows(self) -> list[tuple[str, str, str]]:
        """(key, binding id, description) of what works here, after any keymap."""
        rows = []
        for active in self.main.active_bindings.values():
            binding = active.binding
            if active.node not in (self.main, self) or not active.enabled:
                continue
            rows.append((self.get_key_display(binding), binding.id or "", binding.description))
        return rows or [("", "", "no actions")]

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        try:
            main = self.main
        except LookupError:
            return
        for spec in VIEWS:
            yield SystemCommand(
                f"View: {spec.title}",
                f":{spec.aliases[0]}",
                lambda name=spec.name: self.show_view(name),
            )
        for act in ACTIONS:
            if act.action.startswith("app.") or not main.check_action(act.action, ()):
                continue
            yield SystemCommand(
                f"{act.description} ({act.action})",
                f"key {act.key} on the selected {self.view.rt.singular}",
                lambda a=act.action: self.call_later(main.run_action, a),
            )

    # -- running actions ---------------------------------------------------------

    def selected(self) -> str | None:
        key = self.table.selected_key()
        if key is None:
            self.notify(f"no {self.view.rt.singular} selected", severity="warning")
        return key

    def selected_object(self) -> tuple[ResourceType, str] | None:
        """The kind and key of the object of the row under the cursor."""
        key = self.selected()
        return None if key is None else self.view.target(key)

    def run_api(self, title: str, call: Callable[[], Awaitable[str]]) -> None:
        """Run one API action in a worker; notify its result or its error."""

        async def job() -> None:
            try:
                message = await call()
            except (ApiError, ClusterUnreachable) as e:
                self.notify(error_text(e), title=title, severity="error", timeout=8)
                return
            except Exception as e:
                self.notify(error_text(e), title=title, severity="error", timeout=8)
                return
            self.notify(message, title=title)

        self.run_worker(job(), group="api", exit_on_error=False)

    def act_simple(self, fn: Callable[[Client, str], Awaitable[str]]) -> None:
        key = self.selected()
        if key is not None:
            self.run_api(fn.__name__.replace("_", " "), lambda: fn(self.client, key))

    def act_scale_by(self, delta: int) -> None:
        if self.view.name in NOT_SCALABLE:
            self.notify(actions.not_scalable(self.view.name, "+" if delta > 0 else "-"))
            return
        key, rt = self.selected(), self.view.rt
        if key is not None:
            self.run_api("scale", lambda: actions.scale_by(self.client, rt, key, delta))

    def act_shift_weights(self, toward_canary: bool) -> None:
        """`+`/`-` on the Ingress routes view: shift a weighted HTTPRoute rule."""
        selected, row = self.selected_object(), self.table.selected_row()
        if selected is None or row is None:
            return
        rt, key = selected
        route = next((r for r in routes_of(self.ctx.of(rt).get(key) or {}) if r.name == row), None)
        if route is None or not route.weighted:
            self.notify(
                f"{row} is not weighted: + and - shift an HTTPRoute rule with 2 or more backends",
                title="weights",
                severity="warning",
            )
            return
        self.run_api("weights", lambda: actions.shift_weights(self.client, route, toward_canary))

    def act_scale_prompt(self) -> None:
        if self.view.name in NOT_SCALABLE - {"jobs"}:
            self.notify(actions.not_scalable(self.view.name, "s"))
            return
        key, rt = self.selected(), self.view.rt
        if key is None:
            return
        obj = self.ctx.of(rt).get(key) or {}
        field = "parallelism" if rt is kinds.JOB else "replicas"
        current = str((obj.get("spec") or {}).get(field, ""))

        def done(value: str | None) -> None:
            if value is None or not value.strip():
                return
            try:
                replicas = int(value)
            except ValueError:
                self.notify(f"scale: {value!r} is not a number", severity="error")
                return
            if rt is kinds.JOB:
                self.run_api(
                    "parallelism", lambda: actions.set_parallelism(self.client, key, replicas)
                )
                return
            self.run_api("scale", lambda: actions.scale_to(self.client, rt, key, replicas))

        what = "Set parallelism of" if rt is kinds.JOB else "Scale"
        self.push_screen(PromptScreen(f"{what} {rt.singular}/{key} to:", current), done)

    def act_cordon(self, on: bool) -> None:
        key = self.selected()
        if key is not None:
            self.run_api(
                "cordon" if on else "uncordon", lambda: actions.cordon(self.client, key, on)
            )

    def act_delete(self) -> None:
        selected = self.selected_object()
        if selected is None:
            return
        rt, key = selected

        def done(yes: bool | None) -> None:
            if yes:
                self.run_api("delete", lambda: actions.delete(self.client, rt, key))

        self.push_screen(ConfirmScreen(f"Delete {rt.singular} {key}?"), done)

    def act_drain(self) -> None:
        key = self.selected()
        if key is None:
            return

        def done(yes: bool | None) -> None:
            if not yes:
                return
            screen = ProgressScreen(f"Draining node/{key}")
            self.push_screen(screen)

            async def job() -> None:
                try:
                    message = await actions.drain(self.client, key, screen.step)
                except (ApiError, ClusterUnreachable, OperationError) as e:
                    screen.finish(f"failed: {error_text(e)}")
                    self.notify(error_text(e), title="drain", severity="error")
                    return
                screen.finish(message)
                self.notify(message, title="drain")

            self.run_worker(job(), group="api", exit_on_error=False)

        self.push_screen(
            ConfirmScreen(f"Drain node {key}? It is cordoned and its pods are evicted."), done
        )

    def act_yaml(self) -> None:
        async def yaml_of(rt: ResourceType, key: str) -> str:
            ns, name = actions.split_key(key)
            return actions.as_yaml(await self.client.get(rt, name, ns))

        self.show_selected("yaml", yaml_of, "{kind}/{key}  (YAML)")

    def act_describe(self) -> None:
        self.show_selected(
            "describe",
            functools.partial(actions.describe, self.client),
            "describe {kind}/{key}",
            pod_shell=True,
        )

    def show_selected(
        self,
        what: str,
        fetch: Callable[[ResourceType, str], Awaitable[str]],
        title: str,
        *,
        pod_shell: bool = False,
    ) -> None:
        """A TextScreen of the selected object's text from `fetch`, titled
        `title` (with {kind} and {key}); with `pod_shell`, `x` on a pod's opens
        a shell in it. A failed fetch is notified under `what`."""
        selected = self.selected_object()
        if selected is None:
            return
        rt, key = selected

        async def job() -> None:
            try:
                text = await fetch(rt, key)
            except (ApiError, ClusterUnreachable) as e:
                self.notify(error_text(e), title=what, severity="error")
                return
            shell = (
                functools.partial(self.open_shell, key)
                if pod_shell and rt is kinds.POD and not self.readonly
                else None
            )
            heading = " " + title.format(kind=rt.singular, key=key)
            self.push_screen(TextScreen(heading, text, shell=shell))

        self.run_worker(job(), group="api", exit_on_error=False)

    def act_logs(self) -> None:
        key = self.selected()
        if key is None:
            return

        def fetch(timestamps: bool, previous: bool) -> Awaitable[str]:
            return actions.logs(self.client, key, timestamps=timestamps, previous=previous)

        self.push_screen(LogScreen(f" logs pod/{key}", fetch))

    def act_shell(self) -> None:
        key = self.selected()
        if key is not None:
            self.open_shell(key)

    def open_shell(self, key: str) -> None:
        """A shell in the pod (`pilothouse exec -it`), with the terminal
        handed over until it exits; then the console comes back."""
        target = self.target
        if target is None and self.client.server.startswith(("/", "unix://")):
            target = ["--server", self.client.server.removeprefix("unix://")]
        if target is None:
            self.notify(
                "shell: the console does not know how the CLI reaches this cluster",
                title="shell",
                severity="error",
            )
            return
        pod = self.ctx.of(kinds.POD).get(key)
        argv = actions.shell_argv(target, key, actions.shell_container(pod))
        try:
            with self.suspend():
                done = self.shell_runner(argv)
        except SuspendNotSupported:
            self.notify(
                "shell: this terminal cannot be handed over", title="shell", severity="error"
            )
            return
        except OSError as e:
            self.notify(f"shell: {e}", title="shell", severity="error")
            return
        lines = (done.stderr or b"").decode(errors="replace").strip().splitlines()
        if done.returncode and lines:
            self.notify(lines[-1], title=f"shell pod/{key}", severity="error", timeout=8)
        elif done.returncode:
            self.notify(f"exited with code {done.returncode}", title=f"shell pod/{key}")

    def act_apply(self) -> None:
        def done(path: str | None) -> None:
            if path and path.strip():
                self.run_api("apply", lambda: actions.apply_file(self.client, path.strip()))

        self.push_screen(
            PromptScreen("Apply manifest file:", placeholder="path/to/manifest.yaml"), done
        )

    def act_edit(self) -> None:
        selected = self.selected_object()
        if selected is None:
            return
        rt, key = selected

        async def job() -> None:
            ns, name = actions.split_key(key)
            try:
                original = await self.client.get(rt, name, ns)
            except (ApiError, ClusterUnreachable) as e:
                self.notify(error_text(e), title="edit", severity="error")
                return
            text = actions.dump_for_edit(original)
            edited = self.run_editor(text)
            if edited is None or edited == text:
                self.notify("edit cancelled: no changes", title="edit")
                return
            try:
                message = await actions.replace_edited(self.client, rt, original, edited)
            except (ApiError, ClusterUnreachable, ValueError) as e:
                self.notify(error_text(e), title="edit", severity="error", timeout=8)
                return
            self.notify(message, title="edit")

        self.run_worker(job(), group="api", exit_on_error=False)

    def run_editor(self, text: str) -> str | None:
        """Edit `text` in $EDITOR with the terminal handed over; None if the editor failed."""
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.NamedTemporaryFile("w+", suffix=".yaml", delete=False) as f:
            f.write(text)
            path = f.name
        try:
            with self.suspend():
                result = subprocess.run([*shlex.split(editor), path], check=False)
            if result.returncode != 0:
                self.notify(f"edit: {editor} exited with {result.returncode}", severity="error")
                return None
            with open(path) as f:
                return f.read()
        except Exception as e:
            self.notify(f"edit: {e}", severity="error")
            return None
        finally:
            os.unlink(path)
