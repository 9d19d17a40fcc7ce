"""The images every local node starts with, built and imported by the agent
package in a subprocess (control/ imports nothing from agent/ but its protocol)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from control.localcluster.proc import LocalClusterError, run


async def build_images(out_dir: Path) -> list[Path]:
    """The pause and busybox OCI archives, with `python3 -m agent.images`."""
    out = await run([sys.executable, "-m", "agent.images", str(out_dir)], within=300)
    paths = [Path(line.split("\t", 1)[1]) for line in out.splitlines() if "\t" in line]
    if not paths:
        raise LocalClusterError(f"python3 -m agent.images built nothing: {out.strip()}")
    return paths


async def import_images(socket: Path, archives: Sequence[Path]) -> list[str]:
    """Import archives into a node's containerd with the agent's own import code
    (`python3 -m agent.images --import-to`); returns the image names stored."""
    argv = [sys.executable, "-m", "agent.images", "--import-to", str(socket)]
    argv += [f"--archive={a}" for a in archives]
    out = await run(argv, within=120 * len(archives))
    return sorted({line.split("\t", 1)[0] for line in out.splitlines() if "\t" in line})
