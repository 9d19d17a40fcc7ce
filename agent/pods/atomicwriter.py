"""The kubelet's atomic writer: a volume's files change all at once.

The files live in a timestamped directory (`..2024_05_01_12_00_00.123456789`);
`..data` is a symlink to it, replaced by a rename; each top-level name the
user sees is a symlink through it (`key -> ..data/key`). A reader of the
volume sees the old set of files or the new one, never a mix. A `subPath`
mount binds one file of one timestamped directory and so keeps the content
it was started with.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.protocol.podsources import volume_path_problem

DATA = "..data"
_DATA_TMP = "..data_tmp"


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int = 0o644


def _timestamped_name() -> str:
    now = time.time()
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime(now))
    return f"..{stamp}.{int(now % 1 * 1e9):09d}"


def _current(target: Path) -> Path | None:
    link = target / DATA
    if not link.is_symlink():
        return None
    return target / os.readlink(link)


def _same(current: Path, payload: Mapping[str, FileProjection]) -> bool:
    """Whether the directory holds exactly the payload (content and modes)."""
    have: set[str] = set()
    for root, _dirs, names in os.walk(current):
        for name in names:
            have.add(str(Path(root, name).relative_to(current)))
    if have != set(payload):
        return False
    for path, proj in payload.items():
        file = current / path
        try:
            if file.stat().st_mode & 0o7777 != proj.mode or file.read_bytes() != proj.data:
                return False
        except OSError:
            return False
    return True


def write_payload(target: Path, payload: Mapping[str, FileProjection]) -> bool:
    """Make `target`'s files the payload (relative path -> content and mode),
    atomically. Returns whether anything changed."""
    for path in payload:
        problem = volume_path_problem(path)
        if problem:
            raise ValueError(f"invalid path {path!r}: {problem}")
    target.mkdir(parents=True, exist_ok=True)
    old = _current(target)
    if old is not None and old.is_dir() and _same(old, payload):
        return False
    new = Path(tempfile.mkdtemp(prefix=_timestamped_name() + ".", dir=target))
    new.chmod(0o755)
    for path, proj in payload.items():
        f = new / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(proj.data)
        f.chmod(proj.mode)
    tmp = target / _DATA_TMP
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(new.name)
    tmp.rename(target / DATA)  # the atomic step
    visible = {PurePosixPath(p).parts[0] for p in payload}
    for name in visible:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA}/{name}")
    for entry in target.iterdir():
        if entry.name in (DATA, new.name) or entry.name in visible:
            continue
        if entry.name.startswith("..") and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)  # the previous timestamped directory
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
    return True


def data_dir(target: Path) -> Path | None:
    """The timestamped directory `..data` points at now (for subPath mounts)."""
    current = _current(target)
    return current if current is not None and current.is_dir() else None
