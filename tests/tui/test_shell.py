"""The console's `x`: a shell in a pod, with the terminal handed over until it
exits, on hollow nodes. Pilot's headless driver cannot really suspend, so
the tests make it pretend and record when it is suspended; the command line
the console runs is then run for real, on a pseudo-terminal."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from textual.drivers.headless_driver import HeadlessDriver

from console.tui.app import run_with_terminal
from console.tui.screens import TextScreen
from tests.cluster import HollowCluster, hollow_pod
from tests.polling import eventually
from tests.terminal import Terminal
from tests.tui.conftest import console, noted, press_for


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[HollowCluster]:
    async with hollow_pod(tmp_path) as c:
        yield c


@pytest.fixture
def driver_events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Let the headless driver suspend, and record it doing so."""
    events: list[str] = []
    monkeypatch.setattr(HeadlessDriver, "can_suspend", property(lambda self: True))
    monkeypatch.setattr(
        HeadlessDriver, "suspend_application_mode", lambda self: events.append("suspend")
    )
    monkeypatch.setattr(
        HeadlessDriver, "resume_application_mode", lambda self: events.append("resume")
    )
    return events


Runner = Callable[[list[str]], "subprocess.CompletedProcess[bytes]"]


def recorder(
    events: list[str], calls: list[list[str]], code: int = 0, stderr: bytes = b""
) -> Runner:
    def run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
        events.append("run")
        calls.append(argv)
        return subprocess.CompletedProcess(argv, code, b"", stderr)

    return run


async def test_x_runs_a_shell_with_the_terminal_handed_over(
    cluster: HollowCluster, driver_events: list[str]
) -> None:
    calls: list[list[str]] = []
    runner = recorder(driver_events, calls)
    async with console(cluster.plane, shell_runner=runner, rows=1) as (app, pilot):
        await pilot.press("x")
        await eventually(lambda: calls)
        assert driver_events == ["suspend", "run", "resume"]
        await pilot.pause()
        assert app.screen is app.main and app.view.name == "pods"  # back where it was
        # The same from the pod's describe screen.
        await press_for(pilot, "d", TextScreen)
        await pilot.press("x")
        await eventually(lambda: len(calls) == 2)
    argv = calls[0]
    assert argv == calls[1]
    assert argv[argv.index("exec") :][:7] == [
        "exec",
        "-it",
        "--server",
        cluster.socket,
        "-n",
        "default",
        "web",
    ]
    # What it runs is a real session: on a terminal, a shell that exits 7.
    term = Terminal()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=term.slave, stdout=term.slave, stderr=term.slave
    )
    try:
        term.type("echo in-the-pod\rexit 7\r")
        async with asyncio.timeout(30):
            assert await proc.wait() == 7
        await term.until(b"in-the-pod\r\n")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        term.close()


async def test_x_shows_why_the_shell_failed(
    cluster: HollowCluster, driver_events: list[str]
) -> None:
    calls: list[list[str]] = []
    error = b'Error from server (NotFound): pods "web" not found\n'
    runner = recorder(driver_events, calls, code=1, stderr=error)
    async with console(cluster.plane, shell_runner=runner, rows=1) as (app, pilot):
        await pilot.press("x")
        await eventually(noted(app, 'pods "web" not found', "error"))
        assert driver_events == ["suspend", "run", "resume"]


async def test_x_is_hidden_when_read_only(cluster: HollowCluster, driver_events: list[str]) -> None:
    calls: list[list[str]] = []
    async with console(
        cluster.plane, readonly=True, shell_runner=recorder(driver_events, calls)
    ) as (app, pilot):
        await eventually(lambda: len(app.table.shown) == 1)
        assert app.main.check_action("shell", ()) is False
        await pilot.press("x")
        await press_for(pilot, "d", TextScreen)
        assert app.screen.check_action("shell", ()) is False
        await pilot.press("x")
        await pilot.pause()
    assert calls == [] and driver_events == []


def test_the_default_runner_keeps_stderr_and_the_sigint_handler() -> None:
    before = signal.getsignal(signal.SIGINT)
    script = (
        "import signal, sys; sys.stderr.write(str(signal.getsignal(signal.SIGINT))); sys.exit(3)"
    )
    done = run_with_terminal([sys.executable, "-c", script])
    # The child got Python's own ^C handling, not an ignored signal.
    assert (done.returncode, done.stderr) == (3, str(signal.default_int_handler).encode())
    assert signal.getsignal(signal.SIGINT) is before
