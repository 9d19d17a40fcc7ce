"""A throwaway etcd for tests: Debian's `etcd` binary on loopback, free ports, a temp dir.

The server is stopped by its pid and its directory removed, even when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class EtcdServer:
    endpoint: str  # the client URL
    dir: Path
    pid: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scratch_dir() -> Path:
    # etcd syncs its log on every write: memory-backed when the machine has it.
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="pilothouse-etcd-", dir=base))


@contextlib.contextmanager
def running_etcd(
    *, cert: Path | None = None, key: Path | None = None, ca: Path | None = None
) -> Iterator[EtcdServer]:
    """An etcd serving clients on 127.0.0.1 (over TLS with `cert` and `key`;
    requiring client certificates signed by `ca` when given)."""
    if not os.access(ETCD, os.X_OK):
        pytest.skip("etcd is not installed (scripts/setup.sh installs etcd-server)")
    d = _scratch_dir()
    proc: subprocess.Popen[bytes] | None = None
    try:
        client, peer, metrics = _free_port(), _free_port(), _free_port()
        scheme = "https" if cert is not None else "http"
        url = f"{scheme}://127.0.0.1:{client}"
        argv = [
            ETCD,
            "--name=test",
            f"--data-dir={d / 'data'}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=test=http://127.0.0.1:{peer}",
            f"--listen-metrics-urls=http://127.0.0.1:{metrics}",
            "--logger=zap",
            "--log-outputs=stderr",
        ]
        if cert is not None and key is not None:
            argv += [f"--cert-file={cert}", f"--key-file={key}"]
        if ca is not None:
            argv += [f"--trusted-ca-file={ca}", "--client-cert-auth"]
        with open(d / "etcd.log", "wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        _wait_healthy(f"http://127.0.0.1:{metrics}/health", proc, d / "etcd.log")
        yield EtcdServer(url, d, proc.pid)
    finally:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"etcd exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as resp:
                if b'"health":"true"' in resp.read():
                    return
        time.sleep(0.05)
    raise RuntimeError(
        f"etcd did not become healthy in {START_TIMEOUT}s:\n{log.read_text()[-2000:]}"
    )
