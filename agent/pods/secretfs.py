"""Where a node keeps Secret data: a tmpfs only root can enter.

Secret volumes (and projected volumes, which may hold Secrets) are written
under `<state dir>/secrets`, a tmpfs mounted with mode 0700 (with the first
such volume) when the agent runs as root, so Secret data never reaches the node's disk. Without root (or
when the mount fails) it is a plain 0700 directory, and the agent says so.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

SECRETS_DIR = "secrets"
SIZE = "64m"


def secret_root(state_dir: Path) -> Path:
    return state_dir / SECRETS_DIR


def ensure_secret_fs(state_dir: Path, *, tmpfs: bool = True) -> bool:
    """Create the secrets directory (0700) and, with `tmpfs`, mount a tmpfs
    on it when it has none; returns whether it is a tmpfs. The agent calls it
    with the first Secret volume, so a node without any mounts nothing."""
    root = secret_root(state_dir)
    if root.is_dir() and root.stat().st_mode & 0o777 == 0o700 and not tmpfs:
        return False
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    if not tmpfs:
        return False
    if _is_tmpfs(root):
        return True
    if os.geteuid() != 0:
        log.warning("%s: not root, so Secret volumes are not on a tmpfs", root)
        return False
    argv = ["mount", "-t", "tmpfs", "-o", f"mode=0700,size={SIZE}", "tmpfs", str(root)]
    r = subprocess.run(argv, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        log.warning("%s: tmpfs for Secret volumes not mounted: %s", root, r.stderr.strip())
        return False
    return True


def _is_tmpfs(path: Path) -> bool:
    want = str(path.resolve())
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4].replace("\\040", " ") != want:
                    continue
                sep = fields.index("-")
                if fields[sep + 1] == "tmpfs":
                    return True
    except (OSError, ValueError, IndexError):
        return False
    return False
