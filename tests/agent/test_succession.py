"""A new agent stops the one it replaces, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.succession import PIDFILE, take_over

SLEEP = "import time; time.sleep(60)"


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _start(procs: list[subprocess.Popen[bytes]], *argv: str) -> subprocess.Popen[bytes]:
    """A sleeping process with `argv` on its command line, once it shows them
    (between fork and exec it still reads as this process)."""
    proc = subprocess.Popen([sys.executable, "-c", SLEEP, *argv])
    procs.append(proc)
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    deadline = time.monotonic() + 10
    while cmdline.read_bytes().split(b"\0")[3:-1] != [a.encode() for a in argv]:
        assert time.monotonic() < deadline, cmdline.read_bytes()
        time.sleep(0.01)
    return proc


async def test_the_recorded_agent_is_stopped_and_this_one_recorded(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    # Its command line reads as `python ... -m agent --node-name n1`.
    old = _start(spawned, "-m", "agent", "--node-name", "n1")
    (tmp_path / PIDFILE).write_text(f"{old.pid}\n")
    assert await take_over(tmp_path) == old.pid
    assert old.wait(timeout=5) == -15  # SIGTERM
    assert (tmp_path / PIDFILE).read_text() == f"{os.getpid()}\n"


async def test_a_process_that_is_not_an_agent_is_left_alone(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    other = _start(spawned, "--node-name", "n1")  # a reused pid, say
    (tmp_path / PIDFILE).write_text(f"{other.pid}\n")
    assert await take_over(tmp_path) is None
    assert other.poll() is None
    assert (tmp_path / PIDFILE).read_text() == f"{os.getpid()}\n"


async def test_no_record_or_a_dead_one_only_records_this_agent(tmp_path: Path) -> None:
    assert await take_over(tmp_path) is None
    (tmp_path / PIDFILE).write_text("not a pid\n")
    assert await take_over(tmp_path) is None
    assert (tmp_path / PIDFILE).read_text() == f"{os.getpid()}\n"
