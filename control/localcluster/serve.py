"""The local cluster's control plane: `pilothouse serve` on its data dir.

The config names every node with the pod CIDR its network was built for
(`[[nodes]] pod_cidr`), so each node link registers its Node with that block.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from control.localcluster.clusterconfig import write_config
from control.localcluster.layout import Layout
from control.localcluster.proc import (
    LocalClusterError,
    alive,
    exit_status,
    is_zombie,
    read_pid,
    start_daemon,
    stop_pid,
)


async def socket_answers(lay: Layout) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(lay.api_socket)), 2.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def ensure_serving(lay: Layout, argv: Sequence[str], *, config: str) -> int:
    """Have a control plane serve `config`; returns its pid.

    A control plane of this data dir that serves the same config is left
    running, one that serves another config is restarted on this one, and
    another process serving the API socket is an error.
    """
    marker = str(lay.data_dir)
    pid = read_pid(lay.serve_pid)
    ours = pid is not None and alive(pid, marker)
    answers = await socket_answers(lay)
    if not ours and answers:
        raise LocalClusterError(
            f"another control plane already serves {lay.api_socket}; stop it, then run `up` again"
        )
    if pid is not None and ours:
        if answers and _reads(lay, config):
            return pid
        await stop_pid(pid, marker)
    write_config(lay.config, config)
    return await _start(lay, argv)


def _reads(lay: Layout, config: str) -> bool:
    try:
        return lay.config.read_text() == config
    except FileNotFoundError:
        return False


async def _start(lay: Layout, argv: Sequence[str]) -> int:
    pid = start_daemon(argv, lay.serve_log, lay.serve_pid)
    deadline = time.monotonic() + 30.0
    while not await socket_answers(lay):
        # Not alive(pid, marker): a child that is still in execve has an empty
        # command line for a moment (the kernel sets it after closing the
        # close-on-exec fds that Popen waits for). Until this process reaps it,
        # the pid is its own and cannot be reused, so exiting is all to check.
        if is_zombie(pid):
            how = exit_status(pid) or "no exit status"
            raise LocalClusterError(f"the control plane exited ({how}); see {lay.serve_log}")
        if time.monotonic() > deadline:
            raise LocalClusterError(f"the control plane did not start; see {lay.serve_log}")
        await asyncio.sleep(0.1)
    return pid
