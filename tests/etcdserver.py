"""A throwaway etcd for tests, in a temp dir (memory-backed where the machine has
one) that is removed afterwards, even when the test fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.localcluster.etcd import EtcdServer, etcd_binary, throwaway_etcd

__all__ = ["EtcdServer", "running_etcd"]


def _scratch_dir() -> Path:
    # etcd syncs its log on every write: on memory when the machine allows.
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="pilothouse-etcd-", dir=base))


@contextlib.contextmanager
def running_etcd(
    *, cert: Path | None = None, key: Path | None = None, client_ca: Path | None = None
) -> Iterator[EtcdServer]:
    if etcd_binary() is None:
        pytest.skip("etcd is not installed (scripts/setup.sh installs etcd-server)")
    d = _scratch_dir()
    try:
        with throwaway_etcd(d, cert=cert, key=key, client_ca=client_ca) as server:
            yield server
    finally:
        shutil.rmtree(d, ignore_errors=True)
