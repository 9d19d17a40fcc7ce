"""A control plane hosted in this process, on its own event loop in a thread.

The console's loop only draws and talks to the API over the unix socket, so a
busy control plane (a 20,000-pod list, a compaction) never freezes the UI.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from control.config import Config
from control.controlplane import ControlPlane

SWITCH_INTERVAL = 0.001
T = TypeVar("T")


def socket_answers(path: Path, timeout: float = 0.5) -> bool:
    """True when something accepts connections on the unix socket at `path`."""
    if not path.is_socket():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


class HostedControlPlane:
    """Runs `ControlPlane(config)` in a daemon thread; `start()` returns its socket path.

    `components=False` serves the API alone (see ControlPlane), for tests that
    need objects nobody else changes."""

    def __init__(self, config: Config, *, components: bool = True) -> None:
        self.config = config
        self.components = components
        self.plane: ControlPlane | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._done: Future[None] = Future()

    def start(self, timeout: float = 30.0) -> Path:
        # Both loops share the GIL: hand it over every 1 ms rather than 5 ms,
        # so a keypress never waits long behind the control plane's work.
        sys.setswitchinterval(SWITCH_INTERVAL)
        ready: Future[Path] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="pilothouse-control-plane", daemon=True
        )
        self._thread.start()
        return ready.result(timeout)

    def _run(self, ready: Future[Path]) -> None:
        try:
            asyncio.run(self._main(ready))
        except BaseException as e:
            if not ready.done():
                ready.set_exception(e)
        finally:
            if not self._done.done():
                self._done.set_result(None)

    async def _main(self, ready: Future[Path]) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.plane = ControlPlane(self.config, components=self.components)
        await self.plane.start()
        try:
            ready.set_result(self.plane.socket_path)
            await self._stop.wait()
        finally:
            await self.plane.stop()

    def run_coroutine(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run a coroutine on the control plane's loop (benchmarks use this)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 15.0) -> None:
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Path:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
