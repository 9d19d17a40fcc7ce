"""The console's keymap: its actions, their default keys and binding ids, and keymap.toml.

A binding's id is its action without the `app.` prefix; `<data_dir>/keymap.toml`
maps ids to other keys (Textual's `App.set_keymap`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from textual.binding import Binding, BindingType

KEYMAP_FILE = "keymap.toml"

# Actions that change the cluster: off in read-only mode.
MUTATING = {
    "scale",
    "scale_up",
    "scale_down",
    "weight_up",
    "weight_down",
    "edit",
    "delete",
    "restart",
    "undo",
    "cordon",
    "uncordon",
    "drain",
    "shell",
    "apply",
    "trigger",
    "suspend",
}
SCALABLE = {"deployments"}
# Views where a scaling key only says why it does nothing there (`s` on a Job
# sets its parallelism).
NOT_SCALABLE = {"daemonsets", "jobs", "cronjobs"}
# Which views each action applies to; absent means every view.
APPLIES: dict[str, set[str]] = {
    "scale": SCALABLE | NOT_SCALABLE,
    "scale_up": SCALABLE | NOT_SCALABLE,
    "scale_down": SCALABLE | NOT_SCALABLE,
    "trigger": {"cronjobs"},
    "suspend": {"cronjobs"},
    "weight_up": {"ingress"},
    "weight_down": {"ingress"},
    "logs": {"pods"},
    "shell": {"pods"},
    "restart": {"deployments"},
    "undo": {"deployments"},
    "cordon": {"nodes"},
    "uncordon": {"nodes"},
    "drain": {"nodes"},
}


@dataclass(frozen=True)
class Act:
    key: str
    action: str
    description: str
    show: bool = True
    # Taken as the key arrives, before keys typed after it are routed (see PromptInput).
    priority: bool = False


ACTIONS: tuple[Act, ...] = (
    Act("colon", "command", "View", priority=True),
    Act("slash", "filter", "Filter", priority=True),
    Act("escape", "back", "Back"),
    Act("question_mark", "help", "Help"),
    Act("s", "scale", "Scale"),
    Act("plus", "scale_up", "+1"),
    Act("minus", "scale_down", "-1"),
    Act("plus", "weight_up", "Canary +10%"),
    Act("minus", "weight_down", "Canary -10%"),
    Act("l", "logs", "Logs"),
    Act("d", "describe", "Describe"),
    Act("y", "yaml", "YAML"),
    Act("e", "edit", "Edit"),
    Act("ctrl+d", "delete", "Delete"),
    Act("r", "restart", "Restart"),
    Act("u", "undo", "Undo"),
    Act("c", "cordon", "Cordon"),
    Act("u", "uncordon", "Uncordon"),
    Act("r", "drain", "Drain"),
    Act("x", "shell", "Shell"),
    Act("a", "apply", "Apply"),
    Act("t", "trigger", "Run now"),
    Act("p", "suspend", "Suspend/Resume"),
    Act("q", "app.quit", "Quit", show=False),
)


def binding_id(action: str) -> str:
    return action.removeprefix("app.")


def main_bindings() -> list[BindingType]:
    """The main screen's bindings, one per action, before any keymap."""
    return [
        Binding(
            a.key,
            a.action,
            a.description,
            show=a.show,
            priority=a.priority,
            id=binding_id(a.action),
        )
        for a in ACTIONS
    ]


def load_keymap(data_dir: Path) -> dict[str, str]:
    """`<data_dir>/keymap.toml`: binding id = "key", e.g. `scale_up = "ctrl+up"`."""
    path = data_dir / KEYMAP_FILE
    if not path.exists():
        return {}
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    return {str(k): str(v) for k, v in raw.items() if isinstance(v, str)}
