"""The local cluster's control plane (`pilothouse serve` on its data dir), and
its Nodes registered through the API with the pod CIDRs the network was built for.

A node link registers its Node on first connect and hands it the lowest free
pod CIDR, which need not be the one `up` routed to that node. So a Node is
always registered, through the API, by a control plane that has no link to
it yet: the one already serving the previous config (which does not name the
new nodes), or else one started on a config without nodes. Only then is the
config that names them written and the control plane restarted on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from control.client import Client
from control.errors import ApiError
from control.localcluster.clusterconfig import write_config
from control.localcluster.layout import Layout
from control.localcluster.plan import NodeState
from control.localcluster.proc import (
    LocalClusterError,
    Progress,
    alive,
    exit_status,
    is_zombie,
    read_pid,
    start_daemon,
    stop_pid,
)
from control.objects.kinds import NODE


async def register_nodes(client: Client, nodes: Sequence[NodeState]) -> list[str]:
    """Create the Nodes with the pod CIDRs their network was built for, or give
    an existing Node without one its CIDR. Returns warnings (a Node with
    another CIDR is left alone)."""
    warnings: list[str] = []
    for n in nodes:
        try:
            current = await client.get(NODE, n.name)
        except ApiError as e:
            if e.code != 404:
                raise
            body = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": n.name},
                "spec": {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr]},
            }
            await client.create(NODE, body)
            continue
        have = (current.get("spec") or {}).get("podCIDR")
        if have and have != n.pod_cidr:
            warnings.append(f"{n.name}: Node has podCIDR {have}, the network routes {n.pod_cidr}")
        elif not have:
            # With the resourceVersion read: a concurrent change fails instead of being lost.
            rv = (current.get("metadata") or {}).get("resourceVersion")
            patch = {
                "metadata": {"resourceVersion": rv},
                "spec": {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr]},
            }
            await client.patch(NODE, n.name, patch)
    return warnings


async def socket_answers(lay: Layout) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(lay.api_socket)), 2.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def ensure_serving(
    lay: Layout,
    argv: Sequence[str],
    *,
    config: str,
    config_without_nodes: str,
    nodes: Sequence[NodeState],
    progress: Progress,
) -> int:
    """Have a control plane serve `config`, its `nodes` registered first; returns its pid.

    A control plane of this data dir that serves the same config is left
    running; another one serving the API socket is an error.
    """
    marker = str(lay.data_dir)
    pid = read_pid(lay.serve_pid)
    ours = pid is not None and alive(pid, marker)
    answers = await socket_answers(lay)
    if pid is not None and ours and answers:
        if _reads(lay, config):
            return pid
        # It serves the previous config: no link to a node that is new in this one.
        await _register(lay, nodes, progress)
    else:
        if not ours and answers:
            raise LocalClusterError(
                f"another control plane already serves {lay.api_socket}; "
                "stop it, then run `up` again"
            )
        if pid is not None and ours:
            await stop_pid(pid, marker)
        write_config(lay.config, config_without_nodes)
        pid = await _start(lay, argv)
        await _register(lay, nodes, progress)
    # Only now: the control plane started on it links the nodes, registered above.
    write_config(lay.config, config)
    await stop_pid(pid, marker)
    return await _start(lay, argv)


def _reads(lay: Layout, config: str) -> bool:
    try:
        return lay.config.read_text() == config
    except FileNotFoundError:
        return False


async def _register(lay: Layout, nodes: Sequence[NodeState], progress: Progress) -> None:
    async with Client(str(lay.api_socket)) as client:
        for warning in await register_nodes(client, nodes):
            progress(f"warning: {warning}")


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
