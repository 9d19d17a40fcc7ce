"""Objects by kind and name: apply, get, describe, delete, scale."""

from __future__ import annotations

import argparse
import sys

from console.cli.arguments import (
    UsageError,
    client_for,
    namespace_of,
    resolve_kind,
    split_target,
)
from console.cli.output import print_objects
from control.errors import ApiError
from control.objects.kinds import (
    NAMESPACE,
    ResourceType,
    by_kind,
)
from control.operations.listing import list_all


async def apply(args: argparse.Namespace) -> int:
    from control.apply import apply_one
    from control.objects.manifest import load_paths

    docs = load_paths(args.filename)
    if not docs:
        raise UsageError("no objects passed to apply")
    # Namespaces first, so objects in them can be created in the same run.
    docs.sort(key=lambda d: 0 if d[1].get("kind") == "Namespace" else 1)
    failed = 0
    async with client_for(args) as client:
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
    ns = None if args.all_namespaces else namespace_of(args, rt)
    async with client_for(args) as client:
        if args.names:
            objs = [await client.get(rt, n, ns) for n in args.names]
        else:
            objs = await list_all(client, rt, ns, args.selector, args.field_selector)
            if not objs and ns and rt.namespaced:
                await client.get(NAMESPACE, ns)  # a missing namespace is an error, not a list
    print_objects(
        rt,
        objs,
        args.output,
        all_namespaces=args.all_namespaces,
        single=len(args.names) == 1,
        namespace=ns,
    )
    return 0


async def describe(args: argparse.Namespace) -> int:
    from control.operations.describe import describe as describe_text

    rt = resolve_kind(args.kind)
    async with client_for(args) as client:
        sys.stdout.write(await describe_text(client, rt, args.name, namespace_of(args, rt)))
    return 0


async def delete(args: argparse.Namespace) -> int:
    from control.objects.manifest import load_paths
    from control.operations.delete import delete as delete_object

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
            rt, name = split_target(args.kind, None)
            targets.append((rt, namespace_of(args, rt), name))
        else:
            rt = resolve_kind(args.kind)
            if not args.names:
                raise UsageError("resource(s) were provided, but no name was specified")
        for n in args.names:
            targets.append((rt, namespace_of(args, rt), n))
    else:
        raise UsageError("you must provide one or more resources by KIND NAME or with -f")
    failed = 0
    async with client_for(args) as client:
        for rt, ns, name in targets:
            try:
                print(await delete_object(client, rt, name, ns))
            except ApiError as e:
                failed += 1
                print(f"Error from server ({e.reason}): {e.message}", file=sys.stderr)
    return 1 if failed else 0


async def scale(args: argparse.Namespace) -> int:
    from control.operations.scale import scale_to

    rt, name = split_target(args.target, args.name)
    if args.replicas < 0:
        raise UsageError("--replicas: must be >= 0")
    async with client_for(args) as client:
        await scale_to(client, rt, name, namespace_of(args, rt), args.replicas)
    print(f"{rt.singular_resource}/{name} scaled")
    return 0
