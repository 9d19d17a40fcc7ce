"""The keymap file: binding id = key."""

from __future__ import annotations

from pathlib import Path

from console.tui.app import SCREEN_ACTIONS, MainScreen
from console.tui.bindings import ACTIONS, KEYMAP_FILE, binding_id, load_keymap, main_bindings


def test_load_keymap_reads_string_keys_and_skips_the_rest(tmp_path: Path) -> None:
    (tmp_path / KEYMAP_FILE).write_text('scale_up = "ctrl+up"\nquit = "ctrl+q"\nlogs = 3\n')
    assert load_keymap(tmp_path) == {"scale_up": "ctrl+up", "quit": "ctrl+q"}


def test_no_keymap_file_is_no_remapping(tmp_path: Path) -> None:
    assert load_keymap(tmp_path) == {}


def test_every_action_is_bound_under_its_id() -> None:
    ids = [b.id for b in main_bindings() if not isinstance(b, tuple)]
    assert ids == [binding_id(a.action) for a in ACTIONS]
    assert "quit" in ids and "app.quit" not in ids


def test_every_screen_action_has_a_method() -> None:
    screen_actions = {a.action for a in ACTIONS if not a.action.startswith("app.")}
    assert set(SCREEN_ACTIONS) == screen_actions
    assert all(callable(getattr(MainScreen, f"action_{a}", None)) for a in screen_actions)
