"""Pods on their nodes: logs, exec, top, and image import."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from agent.protocol import ImageArchiveError, image_archive_names
from console.cli.arguments import UsageError, client_for, resolve_kind
from console.cli.output import table
from control.client import LogOptions
from control.objects.kinds import NODE, POD


def _pod_arg(target: str) -> str:
    """`POD` or `pod/POD` (kubectl accepts both)."""
    kind, sep, name = target.partition("/")
    if not sep:
        return target
    if resolve_kind(kind) is not POD:
        raise UsageError(f"only pods are supported here, not {kind}")
    return name


async def logs(args: argparse.Namespace) -> int:
    name, ns = _pod_arg(args.pod), args.namespace or "default"
    if args.tail is not None and args.tail < 0:
        args.tail = None  # kubectl's -1: everything
    options = LogOptions(
        container=args.container,
        tail_lines=args.tail,
        since_seconds=args.since,
        timestamps=args.timestamps,
    )
    async with client_for(args) as client:
        if args.follow and not args.previous:
            async for chunk in client.follow_logs(name, ns, **options):
                sys.stdout.write(chunk)
                sys.stdout.flush()
            return 0
        text = await client.logs(name, ns, previous=args.previous, **options)
    sys.stdout.write(text)
    return 0


async def exec_(args: argparse.Namespace) -> int:
    command = list(args.argv)
    if not command:
        raise UsageError("you must specify at least one command for the container: exec POD -- CMD")
    if args.stdin or args.tty:
        from console.cli.interactive import run as run_interactive

        async with client_for(args) as client:
            return await run_interactive(
                client,
                _pod_arg(args.pod),
                args.namespace or "default",
                command,
                container=args.container,
                stdin=args.stdin,
                tty=args.tty,
            )
    async with client_for(args) as client:
        result = await client.exec(
            _pod_arg(args.pod), command, args.namespace or "default", container=args.container
        )
    sys.stdout.write(result.get("stdout", ""))
    sys.stdout.flush()
    sys.stderr.write(result.get("stderr", ""))
    return int(result.get("exitCode", 0))


def _millicores(q: str) -> int:
    from agent.protocol.primitives import parse_quantity

    return int(parse_quantity(q) * 1000)


def _mebibytes(q: str) -> int:
    from agent.protocol.primitives import parse_quantity

    return int(parse_quantity(q) / (1024 * 1024))


async def top(args: argparse.Namespace) -> int:
    async with client_for(args) as client:
        if args.what in ("nodes", "node", "no"):
            metrics = (await client.node_metrics())["items"]
            nodes = {n["metadata"]["name"]: n for n in (await client.list(NODE))["items"]}
            rows: list[list[str]] = []
            for m in metrics:
                name = m["metadata"]["name"]
                cpu, mem = _millicores(m["usage"]["cpu"]), _mebibytes(m["usage"]["memory"])
                alloc = ((nodes.get(name) or {}).get("status") or {}).get("allocatable") or {}
                cpu_pct = mem_pct = "<unknown>"
                if alloc.get("cpu") and _millicores(alloc["cpu"]):
                    cpu_pct = f"{cpu * 100 // _millicores(alloc['cpu'])}%"
                if alloc.get("memory") and _mebibytes(alloc["memory"]):
                    mem_pct = f"{mem * 100 // _mebibytes(alloc['memory'])}%"
                rows.append([name, f"{cpu}m", cpu_pct, f"{mem}Mi", mem_pct])
            table(["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"], rows, sys.stdout)
            return 0
        ns = None if args.all_namespaces else (args.namespace or "default")
        items = (await client.pod_metrics(ns))["items"]
    rows = []
    for m in items:
        cs = m.get("containers") or []
        cpu = sum(_millicores(c["usage"]["cpu"]) for c in cs)
        mem = sum(_mebibytes(c["usage"]["memory"]) for c in cs)
        row = [m["metadata"]["name"], f"{cpu}m", f"{mem}Mi"]
        rows.append([m["metadata"]["namespace"], *row] if ns is None else row)
    headers = ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    table(["NAMESPACE", *headers] if ns is None else headers, rows, sys.stdout)
    return 0


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def _image_archive(archive: Path) -> tuple[str, list[str], int]:
    """The archive's kind, image names and size; UsageError when it is no image archive."""
    if not archive.is_file():
        why = "no such file" if not archive.exists() else "not a regular file"
        raise UsageError(f"{archive}: {why}")
    try:
        kind, names = image_archive_names(archive)
    except ImageArchiveError as e:
        raise UsageError(f"{archive}: {e}") from None
    return kind, names, archive.stat().st_size


async def image_import(args: argparse.Namespace) -> int:
    """Load an OCI or docker image archive onto nodes through the API server."""
    archive = Path(args.file)
    kind, names, size = await asyncio.to_thread(_image_archive, archive)
    what = ", ".join(names) or f"an {kind} archive"
    shown: dict[str, int] = {}  # node -> the last tenth of the upload printed
    failed: dict[str, str] = {}
    nodes: list[str] = []
    async with client_for(args) as client:
        async for event in client.import_image(archive, args.node or ()):
            phase, node = event.get("phase"), str(event.get("node") or "")
            if phase == "started":
                nodes = [str(n) for n in event.get("nodes") or []]
                print(f"importing {what} ({_mib(size)}) into {', '.join(nodes)}", flush=True)
            elif phase == "sending":
                total = int(event.get("size") or 0) or 1
                tenth = int(event.get("sent") or 0) * 10 // total
                if tenth > shown.get(node, 0):
                    shown[node] = tenth
                    print(f"{node}: sent {tenth * 10}% of {_mib(total)}", flush=True)
            elif phase == "imported":
                for image in event.get("images") or []:
                    print(f"{node}: imported {image}", flush=True)
            elif phase == "failed":
                failed[node] = str(event.get("error") or "failed")
                print(f"{node}: error: {failed[node]}", file=sys.stderr, flush=True)
            elif phase == "finished":
                failed.update({str(n): failed.get(str(n), "failed") for n in event["failed"]})
                break
        else:
            raise UsageError("the API server ended the import before it finished")
    if failed:
        raise UsageError(
            f"the import failed on {len(failed)} of {len(nodes)} nodes: {', '.join(sorted(failed))}"
        )
    return 0
