"""The main screen's own widgets: the footer and the `:` / `/` prompt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import events
from textual.screen import Screen
from textual.widgets import Footer, Input


class BurstFooter(Footer):
    """A Footer that rebuilds once per burst of binding changes.

    Textual's rebuilds (mounting every key) once per change, and opening the
    console changes the bindings several times in one go.
    """

    def __init__(self) -> None:
        super().__init__()
        self._queued = False

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if not self._queued:
            self._queued = True
            self.call_after_refresh(self._changed_once, screen)

    def _changed_once(self, screen: Screen[Any]) -> None:
        self._queued = False
        super().bindings_changed(screen)


class PromptInput(Input):
    """The `:` and `/` prompt, taking keys typed ahead of the screen.

    `:` and `/` open it and focus it as their key arrives, so the keys typed
    right after them land here, not on the view (where `:deploy` would run
    describe, edit and YAML). Enter is taken here, in order with the keys
    before it, and closes the prompt at once (`submit`); keys that reach it
    once closed were typed after Enter and go to the view.
    """

    def __init__(
        self, submit: Callable[[str], None], *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.submit = submit

    async def _on_key(self, event: events.Key) -> None:
        if self.has_class("hidden"):
            event.stop()
            event.prevent_default()
            # As if it arrived now: `:` and `/` may open the prompt again.
            await self.app.on_event(events.Key(event.key, event.character))
        elif event.key == "enter":
            event.stop()
            event.prevent_default()
            self.submit(self.value)
