"""Node commands: cordon, uncordon, drain, and `node check`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from console.cli.arguments import UsageError, client_for, duration
from control.operations import OperationError
from control.operations.nodes import (
    RETRY_EVICTION_AFTER,
    DrainListener,
    set_unschedulable,
)
from control.operations.nodes import drain as drain_node


async def cordon(args: argparse.Namespace) -> int:
    async with client_for(args) as client:
        changed = await set_unschedulable(client, args.node, True)
    print(f"node/{args.node} {'cordoned' if changed else 'already cordoned'}")
    return 0


async def uncordon(args: argparse.Namespace) -> int:
    async with client_for(args) as client:
        changed = await set_unschedulable(client, args.node, False)
    print(f"node/{args.node} {'uncordoned' if changed else 'already uncordoned'}")
    return 0


class _Printer(DrainListener):
    """kubectl drain's lines: progress on stdout, warnings on stderr."""

    def cordoned(self, node: str, changed: bool) -> None:
        print(f"node/{node} {'cordoned' if changed else 'already cordoned'}", flush=True)

    def ignoring(self, daemon_pods: list[str]) -> None:
        names = ", ".join(daemon_pods)
        print(f"Warning: ignoring DaemonSet-managed Pods: {names}", file=sys.stderr)

    def evicting(self, pod: str) -> None:
        print(f"evicting pod {pod}", flush=True)

    def refused(self, pod: str, message: str) -> None:
        name = pod.partition("/")[2]
        print(
            f"error when evicting pods/{name} "
            f"(will retry after {RETRY_EVICTION_AFTER:g}s): {message}",
            file=sys.stderr,
        )

    def evicted(self, pod: str, done: int, total: int) -> None:
        print(f"pod/{pod.partition('/')[2]} evicted", flush=True)


async def drain(args: argparse.Namespace) -> int:
    """Cordon the node, evict its pods (not mirror or DaemonSet pods), and wait
    until they are gone, as `kubectl drain`."""
    time_limit = duration("--timeout", args.timeout)
    async with client_for(args) as client:
        try:
            await drain_node(
                client,
                args.node,
                ignore_daemonsets=args.ignore_daemonsets,
                grace_period=args.grace_period,
                time_limit=time_limit,
                listener=_Printer(),
            )
        except OperationError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    print(f"node/{args.node} drained")
    return 0


async def node_check(args: argparse.Namespace) -> int:
    from control.config import load_config
    from control.nodesetup.check import check_node

    data_dir = Path(args.data_dir).expanduser().absolute() if args.data_dir else None  # noqa: ASYNC240
    config = load_config(Path(args.config) if args.config else None, data_dir=data_dir)
    node = next((n for n in config.nodes if n.name == args.name), None)
    if node is None:
        known = ", ".join(n.name for n in config.nodes) or "none"
        raise UsageError(f"no node {args.name!r} in the config (nodes: {known})")
    results = await check_node(node, config.ssh, containerd_socket=args.socket or "")
    for r in results:
        print(f"{'ok' if r.ok else 'MISSING':8} {r.name:12} {r.detail}")
        if not r.ok and r.fix:
            print(f"{'':8} {'':12} fix: {r.fix}")
    return 0 if all(r.ok for r in results) else 1
