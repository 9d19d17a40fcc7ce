"""start_daemon: when it returns, the daemon's own command line is readable, so
that `alive` (which guards against pid reuse by it) never takes it for gone."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from control.localcluster.proc import alive, cmdline, start_daemon, stop_pid


def test_a_started_daemon_is_alive_at_once(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    argv = [sys.executable, "-c", "import time; time.sleep(60)", marker]
    pids: list[int] = []
    try:
        for i in range(10):
            pids.append(start_daemon(argv, tmp_path / "log", tmp_path / f"{i}.pid"))
            assert cmdline(pids[-1]) == argv
            assert alive(pids[-1], marker)
    finally:
        for pid in pids:
            asyncio.run(stop_pid(pid, marker))
    assert not any(alive(pid, marker) for pid in pids)
