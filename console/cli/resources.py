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
from console.cli.output import print_objects, table, to_yaml
from control.errors import ApiError
from control.objects.kinds import (
    EVENT,
    HTTPROUTE,
    INGRESS,
    NAMESPACE,
    SERVICE,
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
    rt = resolve_kind(args.kind)
    ns = namespace_of(args, rt)
    async with client_for(args) as client:
        obj = await client.get(rt, args.name, ns)
        selector = f"involvedObject.name={args.name},involvedObject.kind={rt.kind}"
        events = await list_all(client, EVENT, ns or "default", field=selector)
        details: list[str] = []
        if rt is SERVICE:
            from control.operations.services import service_details_of

            details = await service_details_of(client, ns or "default", args.name)
        elif rt in (INGRESS, HTTPROUTE):
            from control.operations.routes import route_details_of

            details = await route_details_of(client, obj)
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
    for line in details:
        out.write(f"{line}\n")
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
