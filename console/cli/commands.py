"""The CLI's commands. Each takes parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from console.cli.output import print_objects, table, to_yaml
from console.cli.target import make_client
from control.apply import apply_one
from control.client import Client
from control.config import load_config
from control.errors import ApiError
from control.objects.kinds import ResourceType, by_kind, by_name
from control.objects.manifest import load_paths


class UsageError(Exception):
    """The command line asks for something impossible."""


def _client(args: argparse.Namespace) -> Client:
    return make_client(getattr(args, "server", None), getattr(args, "kubeconfig", None))


def resolve_kind(name: str) -> ResourceType:
    rt = by_name(name)
    if rt is None:
        raise UsageError(f'the server doesn\'t have a resource type "{name}"')
    return rt


def _split_target(target: str, name: str | None) -> tuple[ResourceType, str]:
    if "/" in target:
        kind, _, obj = target.partition("/")
        return resolve_kind(kind), obj
    if not name:
        raise UsageError(f"missing a name: use {target}/NAME or {target} NAME")
    return resolve_kind(target), name


def _ns(args: argparse.Namespace, rt: ResourceType) -> str | None:
    return (args.namespace or "default") if rt.namespaced else None


# -- serve -------------------------------------------------------------------


async def serve(args: argparse.Namespace) -> int:
    from control.controlplane import ControlPlane

    data_dir = Path(args.data_dir).expanduser().absolute() if args.data_dir else None  # noqa: ASYNC240
    config = load_config(Path(args.config) if args.config else None, data_dir=data_dir)
    if args.listen is not None:
        from dataclasses import replace

        config = replace(config, api=replace(config.api, listen=args.listen))
    plane = ControlPlane(config)
    await plane.start()
    print(f"pilothouse API serving on unix:{plane.socket_path}", file=sys.stderr)
    if plane.server_url:
        print(f"pilothouse API serving on {plane.server_url}", file=sys.stderr)
        print(f"kubeconfig: {plane.kubeconfig_path}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await plane.stop()
    return 0


# -- apply / get / describe / delete / scale ---------------------------------


async def apply(args: argparse.Namespace) -> int:
    docs = load_paths(args.filename)
    # Namespaces first, so objects in them can be created in the same run.
    docs.sort(key=lambda d: 0 if d[1].get("kind") == "Namespace" else 1)
    failed = 0
    async with _client(args) as client:
        for source, manifest in docs:
            try:
                label, outcome = await apply_one(client, manifest, args.namespace)
            except ApiError as e:
                failed += 1
                name = (manifest.get("metadata") or {}).get("name", "?")
                print(
                    f"Error from server ({e.reason}): {source}: {manifest.get('kind')} {name}: {e.message}",
                    file=sys.stderr,
                )
                continue
            print(f"{label} {outcome}")
    return 1 if failed else 0


async def get(args: argparse.Namespace) -> int:
    rt = resolve_kind(args.kind)
    ns = None if args.all_namespaces else _ns(args, rt)
    async with _client(args) as client:
        if args.names:
            objs = [await client.get(rt, n, ns) for n in args.names]
        else:
            objs = await list_all(client, rt, ns, args.selector, args.field_selector)
    print_objects(
        rt, objs, args.output, all_namespaces=args.all_namespaces, single=len(args.names) == 1
    )
    return 0


async def list_all(
    client: Client,
    rt: ResourceType,
    ns: str | None,
    label: str | None = None,
    field: str | None = None,
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = await client.list(
            rt, ns, label_selector=label, field_selector=field, limit=500, continue_token=token
        )
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


async def describe(args: argparse.Namespace) -> int:
    rt = resolve_kind(args.kind)
    ns = _ns(args, rt)
    async with _client(args) as client:
        obj = await client.get(rt, args.name, ns)
        ev_rt = by_kind("v1", "Event")
        assert ev_rt is not None
        selector = f"involvedObject.name={args.name},involvedObject.kind={rt.kind}"
        events = await list_all(client, ev_rt, ns or "default", field=selector)
    meta = obj.get("metadata") or {}
    out = sys.stdout
    out.write(f"Name:         {meta.get('name')}\n")
    if rt.namespaced:
        out.write(f"Namespace:    {meta.get('namespace')}\n")
    out.write(f"Kind:         {rt.kind}\n")
    out.write(f"Created:      {meta.get('creationTimestamp')}\n")
    labels = meta.get("labels") or {}
    out.write(
        "Labels:       " + (", ".join(f"{k}={v}" for k, v in labels.items()) or "<none>") + "\n"
    )
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith("kubectl.kubernetes.io/")
    }
    out.write(
        "Annotations:  "
        + (", ".join(f"{k}={v}" for k, v in annotations.items()) or "<none>")
        + "\n"
    )
    for section in ("spec", "data", "subsets", "status"):
        if obj.get(section):
            out.write(f"{section.capitalize()}:\n")
            for line in to_yaml(obj[section]).splitlines():
                out.write(f"  {line}\n")
    out.write("Events:")
    if not events:
        out.write("       <none>\n")
        return 0
    out.write("\n")
    events.sort(key=lambda e: e.get("lastTimestamp") or "")
    table(
        ["  TYPE", "REASON", "COUNT", "FROM", "MESSAGE"],
        [
            [
                f"  {e.get('type', 'Normal')}",
                str(e.get("reason", "")),
                str(e.get("count", 1)),
                str((e.get("source") or {}).get("component", "")),
                str(e.get("message", "")),
            ]
            for e in events
        ],
        out,
    )
    return 0


async def delete(args: argparse.Namespace) -> int:
    targets: list[tuple[ResourceType, str | None, str]] = []
    if args.filename:
        for _, m in load_paths(args.filename):
            rt = by_kind(str(m.get("apiVersion")), str(m.get("kind")))
            if rt is None:
                raise UsageError(f"unknown kind {m.get('apiVersion')}/{m.get('kind')}")
            meta = m.get("metadata") or {}
            ns = (meta.get("namespace") or args.namespace or "default") if rt.namespaced else None
            targets.append((rt, ns, str(meta.get("name"))))
    elif args.kind:
        if "/" in args.kind:
            rt, name = _split_target(args.kind, None)
            targets.append((rt, _ns(args, rt), name))
        else:
            rt = resolve_kind(args.kind)
            if not args.names:
                raise UsageError("resource(s) were provided, but no name was specified")
        for n in args.names:
            targets.append((rt, _ns(args, rt), n))
    else:
        raise UsageError("you must provide one or more resources by KIND NAME or with -f")
    failed = 0
    async with _client(args) as client:
        for rt, ns, name in targets:
            try:
                await client.delete(rt, name, ns)
            except ApiError as e:
                failed += 1
                print(f"Error from server ({e.reason}): {e.message}", file=sys.stderr)
                continue
            print(f'{rt.singular}{"." + rt.group if rt.group else ""} "{name}" deleted')
    return 1 if failed else 0


async def scale(args: argparse.Namespace) -> int:
    rt, name = _split_target(args.target, args.name)
    if not rt.scale:
        raise UsageError(f"{rt.plural} cannot be scaled")
    if args.replicas < 0:
        raise UsageError("--replicas: must be >= 0")
    async with _client(args) as client:
        await client.scale(rt, name, args.replicas, _ns(args, rt))
    print(f"{rt.singular}{'.' + rt.group if rt.group else ''}/{name} scaled")
    return 0


async def version(args: argparse.Namespace) -> int:
    from importlib.metadata import version as pkg_version

    print(f"Client Version: pilothouse {pkg_version('pilothouse')}")
    async with _client(args) as client:
        info = await client.request("GET", "/version")
    print(f"Server Version: {info.get('gitVersion')}")
    return 0


async def bench_api(args: argparse.Namespace) -> int:
    from console.bench.api import run_bench_api

    return await run_bench_api(args.objects, args.concurrency, args.json)
