"""The console's secondary screens: text (YAML, describe), logs, prompts, confirm, drain, help."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, ProgressBar, RichLog, Static, TextArea

from control.client import ClusterUnreachable
from control.errors import ApiError
from control.operations import OperationError


def error_text(e: BaseException) -> str:
    """An API error as a person reads it: reason, message, and the field causes."""
    if isinstance(e, ApiError):
        head = f"{e.reason or 'Error'} ({e.code}): {e.message}"
        causes = [
            f"{c.field}: {c.message}" for c in e.causes if c.field and c.field not in e.message
        ]
        return "\n".join([head, *causes])
    if isinstance(e, (ClusterUnreachable, OperationError)):
        return str(e)
    return f"{type(e).__name__}: {e}"


class TextScreen(Screen[None]):
    """A read-only text: YAML or describe output."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="text.back"),
        Binding("x", "shell", "Shell", id="text.shell"),
    ]

    def __init__(self, title: str, text: str, shell: Callable[[], None] | None = None) -> None:
        """`shell`, on a pod's describe: what `x` does (a shell in the pod)."""
        super().__init__()
        self.title_text = title
        self.text = text
        self.shell = shell

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "shell" or self.shell is not None

    def action_shell(self) -> None:
        if self.shell is not None:
            self.shell()

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, classes="screen-title")
        yield TextArea(self.text, read_only=True, show_line_numbers=False, id="text")
        yield Footer()


class LogScreen(Screen[None]):
    """A pod's logs. Options re-fetch; follow polls the API while it is on."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="logs.back"),
        Binding("f", "option('follow')", "Follow", id="logs.follow"),
        Binding("w", "option('wrap')", "Wrap", id="logs.wrap"),
        Binding("t", "option('timestamps')", "Timestamps", id="logs.timestamps"),
        Binding("p", "option('previous')", "Previous", id="logs.previous"),
    ]

    def __init__(self, title: str, fetch: Callable[[bool, bool], Awaitable[str]]) -> None:
        super().__init__()
        self.title_text = title
        self.fetch = fetch
        self.options = {"follow": True, "wrap": False, "timestamps": False, "previous": False}
        self.text = ""

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, id="logs-title", classes="screen-title")
        yield RichLog(max_lines=20000, wrap=False, markup=False, highlight=False, id="log")
        yield Footer()

    def on_mount(self) -> None:
        self._title()
        self.load()
        self.set_interval(1.0, self._poll)

    def _title(self) -> None:
        flags = " ".join(f"{k}:{'on' if v else 'off'}" for k, v in self.options.items())
        self.query_one("#logs-title", Static).update(f"{self.title_text}   [{flags}]")

    def _poll(self) -> None:
        if self.options["follow"]:
            self.load()

    def action_option(self, option: str) -> None:
        self.options[option] = not self.options[option]
        if option == "wrap":
            self.query_one(RichLog).wrap = self.options["wrap"]
            self._show(self.text, force=True)
        self._title()
        if option in ("timestamps", "previous"):
            self.load()

    @work(exclusive=True, group="logs")
    async def load(self) -> None:
        try:
            text = await self.fetch(self.options["timestamps"], self.options["previous"])
        except (ApiError, ClusterUnreachable) as e:
            self.options["follow"] = False
            self._title()
            self.notify(error_text(e), title="logs", severity="error")
            return
        self._show(text)

    def _show(self, text: str, force: bool = False) -> None:
        log = self.query_one(RichLog)
        if not force and text.startswith(self.text) and self.text:
            new = text[len(self.text) :]
            if new:
                log.write(new.rstrip("\n"))
        elif force or text != self.text:
            log.clear()
            log.write(text.rstrip("\n"))
        self.text = text


class PromptScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, prompt: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.prompt = prompt
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.prompt)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.message)
            with Horizontal():
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ProgressScreen(ModalScreen[None]):
    """A long action (drain) with a progress bar and a log of its steps."""

    BINDINGS = [Binding("escape,enter", "close", "Close", id="progress.close")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title
        self.done = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text)
            yield ProgressBar(total=None, id="bar")
            yield RichLog(max_lines=500, markup=False, id="steps")

    def step(self, done: int, total: int, message: str) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=max(total, 1), progress=done if total else 1)
        self.query_one(RichLog).write(message)

    def finish(self, message: str) -> None:
        self.done = True
        self.query_one(RichLog).write(message + "  (enter to close)")

    def action_close(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close", id="help.close")]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        width = max(len(r[0]) for r in self.rows) + 2
        id_header = "ID (for keymap)"
        idw = max(len(id_header), *(len(r[1]) for r in self.rows)) + 2
        lines = [f"{'KEY'.ljust(width)}{id_header.ljust(idw)}ACTION"]
        lines += [f"{k.ljust(width)}{i.ljust(idw)}{d}" for k, i, d in self.rows]
        with Vertical(classes="dialog wide"):
            yield Label("Keys")
            yield Static("\n".join(lines), id="help-text")
