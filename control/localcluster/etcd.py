"""A throwaway single-member etcd on loopback: for benchmarks and tests.

It serves clients on a free port of 127.0.0.1 (over TLS when given a
certificate), keeps its data in the given directory, and is stopped by its pid
when the block ends, however it ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from control.localcluster.proc import LocalClusterError

ETCD: Final = "etcd"
START_TIMEOUT: Final = 20.0


@dataclass(frozen=True)
class EtcdServer:
    endpoint: str  # the client URL
    dir: Path
    pid: int

    def store_table(self, prefix: str = "/pilothouse") -> str:
        """The `[store]` table of a config.toml whose control plane keeps its objects here."""
        return (
            f'[store]\nbackend = "etcd"\netcd_endpoints = ["{self.endpoint}"]\n'
            f'etcd_prefix = "{prefix}"\n'
        )


def etcd_binary() -> str | None:
    """The etcd binary (Debian's etcd-server package), or None."""
    return shutil.which(ETCD) or next(
        (p for p in ("/usr/bin/etcd", "/usr/local/bin/etcd") if os.access(p, os.X_OK)), None
    )


def require_etcd() -> str:
    binary = etcd_binary()
    if binary is None:
        raise LocalClusterError("etcd is not installed (scripts/setup.sh installs etcd-server)")
    return binary


def member_argv(
    binary: str,
    name: str,
    data: Path,
    *,
    client_url: str,
    peer_url: str,
    initial_cluster: str,
    cluster_token: str = "etcd-cluster",
) -> list[str]:
    """One etcd member's command line: named `name`, its data in `data`,
    logging to stderr. The initial cluster counts only on the first start: a
    member with data rejoins the cluster its data names."""
    return [
        binary,
        f"--name={name}",
        f"--data-dir={data}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster={initial_cluster}",
        f"--initial-cluster-token={cluster_token}",
        "--logger=zap",
        "--log-outputs=stderr",
    ]


def healthy(url: str) -> bool:
    """Whether etcd's /health at `url` says true (a member with a quorum behind it)."""
    with contextlib.suppress(OSError):
        with urllib.request.urlopen(url, timeout=1) as resp:
            return b'"health":"true"' in resp.read()
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def throwaway_etcd(
    data_dir: Path,
    *,
    cert: Path | None = None,
    key: Path | None = None,
    client_ca: Path | None = None,
    quota_bytes: int | None = None,
) -> Iterator[EtcdServer]:
    """An etcd with its data and log in `data_dir`; over TLS with `cert` and
    `key`, requiring client certificates signed by `client_ca` when given;
    `quota_bytes`: its backend's size limit (etcd's own default when None)."""
    binary = require_etcd()
    data_dir.mkdir(parents=True, exist_ok=True)
    client, peer, metrics = _free_port(), _free_port(), _free_port()
    url = f"{'https' if cert is not None else 'http'}://127.0.0.1:{client}"
    peer_url = f"http://127.0.0.1:{peer}"
    argv = [
        *member_argv(
            binary,
            "throwaway",
            data_dir / "data",
            client_url=url,
            peer_url=peer_url,
            initial_cluster=f"throwaway={peer_url}",
        ),
        f"--listen-metrics-urls=http://127.0.0.1:{metrics}",
    ]
    if cert is not None and key is not None:
        argv += [f"--cert-file={cert}", f"--key-file={key}"]
    if quota_bytes is not None:
        argv.append(f"--quota-backend-bytes={quota_bytes}")
    if client_ca is not None:
        argv += [f"--trusted-ca-file={client_ca}", "--client-cert-auth"]
    log = data_dir / "etcd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{metrics}/health", proc, log)
        yield EtcdServer(url, data_dir, proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalClusterError(
                f"etcd exited with {proc.returncode}: {log.read_text()[-2000:]}"
            )
        if healthy(url):
            return
        time.sleep(0.05)
    raise LocalClusterError(f"etcd did not become healthy in {START_TIMEOUT:g}s: see {log}")
