"""The cluster itself: serve a control plane, bring a local one up or down,
open the console, and show versions."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from console.cli.arguments import UsageError, client_for


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _data_dir_arg(args: argparse.Namespace) -> Path:
    from control.config import default_data_dir

    d = getattr(args, "data_dir", None)
    return Path(d).expanduser().absolute() if d else default_data_dir()


async def serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from control.config import load_config
    from control.controlplane import over_ssh

    data_dir = Path(args.data_dir).expanduser().absolute() if args.data_dir else None  # noqa: ASYNC240
    config = load_config(Path(args.config) if args.config else None, data_dir=data_dir)
    if args.listen is not None:
        config = replace(config, api=replace(config.api, listen=args.listen))
    if args.hollow_nodes < 0:
        raise UsageError("--hollow-nodes: must be 0 or more")
    # The configured [[nodes]] are reached over SSH; hollow nodes are child processes.
    try:
        plane = over_ssh(config, hollow_nodes=args.hollow_nodes)
    except ValueError as e:
        raise UsageError(f"--hollow-nodes: {e}") from None
    await plane.start()
    print(f"pilothouse API serving on unix:{plane.socket_path}", file=sys.stderr)
    if plane.server_url:
        print(f"pilothouse API serving on {plane.server_url}", file=sys.stderr)
        print(f"kubeconfig: {plane.kubeconfig_path}", file=sys.stderr)
    if plane.elector is not None:
        print(
            f"leader election: candidate {plane.elector.identity}; the leader runs the "
            "scheduler, the controllers and the node links",
            file=sys.stderr,
        )
    if args.hollow_nodes:
        print(f"hollow nodes joining: hollow-1 ... hollow-{args.hollow_nodes}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await plane.stop()
    return 0


async def migrate(args: argparse.Namespace) -> int:
    from control.migrate import EtcdOptions
    from control.migrate import migrate as copy_store

    def path(p: str | None) -> Path | None:
        return Path(p).expanduser().absolute() if p else None

    etcd = EtcdOptions(
        prefix=args.etcd_prefix,
        ca_file=path(args.etcd_ca_file),
        cert_file=path(args.etcd_cert_file),
        key_file=path(args.etcd_key_file),
    )
    if (etcd.cert_file is None) != (etcd.key_file is None):
        raise UsageError("--etcd-cert-file and --etcd-key-file must be given together")
    done = await copy_store(
        args.source, args.destination, etcd, progress=lambda n: _say(f"copied {n} objects")
    )
    counts = ", ".join(f"{r} {n}" for r, n in done.counts.items())
    print(f"migrated {done.total} objects from {done.source} to {done.destination}: counts match")
    if counts:
        print(f"  {counts}")
    return 0


async def up(args: argparse.Namespace) -> int:
    from control.config import LeaderElectionConfig, default_data_dir
    from control.localcluster.cluster import up as cluster_up

    data_dir = _data_dir_arg(args)
    election = LeaderElectionConfig(
        enabled=True,
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
    )
    result = await cluster_up(
        args.nodes,
        data_dir,
        cluster=args.name,
        node_subnet=args.node_subnet,
        pod_cidr=args.pod_cidr,
        service_cidr=args.service_cidr,
        api_listen=args.listen,
        node_grace_period=args.node_grace_period,
        backoff_base=args.backoff_base,
        store_dir=Path(args.store_dir) if args.store_dir else None,
        control_planes=args.control_planes,
        leader_election=election,
        serve_command=(sys.executable, "-m", "console", "serve", "--data-dir", str(data_dir)),
        progress=_say,
    )
    print(f"local cluster up: {len(result.nodes)} nodes in {result.seconds:.1f}s")
    if result.api_url is not None:
        planes = len(result.control_plane_pids)
        print(f"API: {result.api_url} (haproxy, in front of {planes} control planes)")
        print(f"kubeconfig: {result.config_path}")
    else:
        print(f"config: {result.config_path}")
    print(f"known_hosts: {result.known_hosts}")
    env = "" if data_dir == default_data_dir() else f"PILOTHOUSE_HOME={data_dir} "
    if not args.no_console and sys.stdin.isatty() and sys.stdout.isatty():
        try:
            from console.tui.launch import run_console
        except ImportError:
            pass
        else:
            # Attach to the control plane that `up` left serving this data dir.
            args.tui_data_dir, args.tui_config = str(data_dir), None
            args.tui_server = None
            # Several control planes: through HAProxy, as the kubeconfig says.
            args.tui_kubeconfig = str(result.config_path) if result.api_url else None
            args.readonly = getattr(args, "readonly", False)
            return await run_console(args)
    print("next:")
    print(f"  {env}pilothouse get nodes")
    print(f"  {env}pilothouse apply -f examples/")
    print(f"  {env}pilothouse            # the console")
    print(f"  pilothouse down{' --data-dir ' + str(data_dir) if env else ''}")
    return 0


async def down(args: argparse.Namespace) -> int:
    from control.localcluster.cluster import down as cluster_down

    data_dir = _data_dir_arg(args)
    if await cluster_down(data_dir, progress=_say):
        print(f"local cluster in {data_dir} removed")
    else:
        print(f"no local cluster in {data_dir}")
    return 0


async def console(args: argparse.Namespace) -> int:
    from console.tui.launch import run_console

    return await run_console(args)


async def version(args: argparse.Namespace) -> int:
    from importlib.metadata import version as pkg_version

    print(f"Client Version: pilothouse {pkg_version('pilothouse')}")
    async with client_for(args) as client:
        info = await client.request("GET", "/version")
    print(f"Server Version: {info.get('gitVersion')}")
    return 0
