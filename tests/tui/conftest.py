"""Console fixtures: an app against the in-process `plane`, driven by Pilot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from textual.pilot import Pilot
from textual.screen import Screen

from console.tui.app import PilothouseApp
from control.client import Client
from control.controlplane import ControlPlane
from tests.polling import eventually

SIZE = (180, 45)


@asynccontextmanager
async def console(
    plane: ControlPlane, view: str = "pods", *, rows: int | None = None, **kwargs: Any
) -> AsyncIterator[tuple[PilothouseApp, Pilot[None]]]:
    """The console on `plane`, open on `view`; with `rows`, once the view shows that many."""
    app = PilothouseApp(lambda: Client(str(plane.socket_path)), initial_view=view, **kwargs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        if rows is not None:
            await eventually(lambda: len(app.table.shown) == rows)
        yield app, pilot


def notes(app: PilothouseApp, severity: str | None = None) -> list[str]:
    return [
        f"{n.title}: {n.message}"
        for n in app._notifications
        if severity is None or n.severity == severity
    ]


class noted:
    """A check for `eventually`: a notification holding `text` was shown."""

    def __init__(self, app: PilothouseApp, text: str, severity: str | None = None) -> None:
        self.app, self.text, self.severity = app, text, severity

    def __call__(self) -> bool:
        return any(self.text in m for m in notes(self.app, self.severity))

    def __repr__(self) -> str:
        return f"notification {self.text!r}; shown: {notes(self.app)}"


async def press_for(pilot: Pilot[Any], key: str, screen: type[Screen[Any]]) -> None:
    """Press `key` and wait until it has opened a `screen`."""
    await pilot.press(key)
    await eventually(lambda: isinstance(pilot.app.screen, screen))
