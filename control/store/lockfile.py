"""The store's lock file: one process at a time on a data dir.

An exclusive `flock` on `<store>.lock`, which holds the owner's pid so that a
second control plane can name it. The lock is released when its file is closed,
by the owner or by the kernel when the process dies (kill -9 included).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from control.store.interface import StoreLocked


def acquire_lock(lock_path: Path, store_path: Path) -> int:
    """Take the lock and write our pid in it; the open file descriptor holds the lock.

    Raises StoreLocked, naming the holder's pid, at once if another holds it.
    """
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        # flock locks belong to the open file, so a second open in this same
        # process is refused too.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""
        with contextlib.suppress(OSError, ValueError):
            pid = int(os.pread(fd, 32, 0).decode().strip())
            holder = f" by pid {pid}"
        os.close(fd)
        raise StoreLocked(
            f"store {store_path} is locked{holder} (lock file {lock_path}); "
            "is another pilothouse control plane running on this data dir?"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
