"""The control plane a benchmark measures: `pilothouse serve` as a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

Stream = IO[bytes] | int | None


def spawn_serve(
    data: Path, *, stdout: Stream = None, stderr: Stream = None, listen: str = ""
) -> subprocess.Popen[bytes]:
    """`pilothouse serve` on the data directory `data` (its home too), its API on
    the unix socket `data/api.sock`, and on TLS at `listen` if given."""
    env = {**os.environ, "PILOTHOUSE_HOME": str(data)}
    return subprocess.Popen(
        [sys.executable, "-m", "console", "serve", "--data-dir", str(data), "--listen", listen],
        env=env,
        stdout=stdout,
        stderr=stderr,
    )


def stop(proc: subprocess.Popen[bytes], within: float) -> None:
    """Terminate the child; kill it if it has not exited `within` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
