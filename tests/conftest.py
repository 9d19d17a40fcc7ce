"""Shared fixtures: an in-process control plane, and a `pilothouse serve` child process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from control.client import Client
from control.config import load_config
from control.controlplane import ControlPlane

REPO = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def running_plane(
    data_dir: Path, config: str = "", **kwargs: Any
) -> AsyncIterator[ControlPlane]:
    """A control plane in this process: unix socket plus TLS on 127.0.0.1, a free
    port. `config` is more of config.toml, after its [api] table."""
    (data_dir / "config.toml").write_text('[api]\nlisten = "127.0.0.1:0"\n' + config)
    cp = ControlPlane(load_config(None, data_dir=data_dir), **kwargs)
    await cp.start()
    try:
        yield cp
    finally:
        await cp.stop()


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with running_plane(tmp_path) as cp:
        yield cp


@pytest.fixture
async def client(plane: ControlPlane) -> AsyncIterator[Client]:
    async with Client(str(plane.socket_path)) as c:
        yield c


@dataclass
class Served:
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def socket(self) -> Path:
        return self.data_dir / "api.sock"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PILOTHOUSE_HOME": str(self.data_dir),
        }


def start_serve(data_dir: Path, log: Path, *extra: str) -> Served:
    """Start `pilothouse serve` (with `extra` arguments) and wait until its
    kubeconfig and socket are there."""
    for stale in (data_dir / "kubeconfig", data_dir / "api.sock"):
        stale.unlink(missing_ok=True)
    out = open(log, "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "console",
            "serve",
            "--data-dir",
            str(data_dir),
            "--listen",
            "127.0.0.1:0",
            *extra,
        ],
        stdout=out,
        stderr=out,
        cwd=REPO,
    )
    out.close()
    served = Served(data_dir, proc, log)
    deadline = time.monotonic() + 30
    while not (served.kubeconfig.exists() and served.socket.exists()):
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}: {log.read_text()}")
        if time.monotonic() > deadline:
            stop_serve(served)
            raise RuntimeError(f"serve did not come up in 30 s: {log.read_text()}")
        time.sleep(0.05)
    return served


def stop_serve(served: Served, sig: int = signal.SIGTERM) -> None:
    if served.proc.poll() is None:
        served.proc.send_signal(sig)
        try:
            served.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            served.proc.kill()
            served.proc.wait()


@contextlib.contextmanager
def serving(tmp: Path, *extra: str) -> Iterator[Served]:
    """`pilothouse serve` on `tmp/data` (its log in `tmp/serve.log`) while inside."""
    s = start_serve(tmp / "data", tmp / "serve.log", *extra)
    try:
        yield s
    finally:
        stop_serve(s)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as s:
        yield s


def pilothouse(
    served: Served, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI against `served`, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=served.env(),
        cwd=REPO,
        timeout=60,
    )
