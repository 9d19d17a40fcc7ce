"""One agent per node: a new agent stops the one it replaces.

A node's agent lives as long as its SSH session. When a partition makes the
control plane give a connection up, the old session can outlive it on the
node, and the old agent with it, beside the new agent the control plane
starts once the node is back. Two agents would both act on the node's pods.
So each agent records its pid in the node's state directory, and a new agent
first stops the process recorded there, if it is an agent, then records its
own. Stopping an agent leaves its pods running: the new agent adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
from pathlib import Path

PIDFILE = "agent.pid"
_STOP_WAIT = 5.0  # seconds for the old agent to exit before going on


async def take_over(state_dir: Path) -> int | None:
    """Stop the agent recorded in `state_dir`, if one runs, and record this
    process instead. Returns the pid stopped, or None."""
    path = state_dir / PIDFILE
    old = _recorded(path)
    stopped = None
    if old is not None and old != os.getpid() and _is_agent(old):
        with contextlib.suppress(ProcessLookupError):
            os.kill(old, signal.SIGTERM)
            stopped = old
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _STOP_WAIT
        while _is_agent(old) and loop.time() < deadline:  # noqa: ASYNC110 - not our child: no event to wait on
            await asyncio.sleep(0.05)
    tmp = path.with_name(PIDFILE + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(path)
    return stopped


def _recorded(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_agent(pid: int) -> bool:
    """Whether `pid` is a live `python -m agent` (not a zombie, not a pid reused
    by something else)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = status.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and (b"-m", b"agent") in itertools.pairwise(argv)
