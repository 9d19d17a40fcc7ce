"""`rollout status|history|undo|restart|pause|resume` on a Deployment."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from console.cli.arguments import UsageError, client_for, duration, split_target
from console.cli.output import table, to_yaml
from control.client import Client
from control.errors import ApiError
from control.objects.kinds import ResourceType
from control.operations import rollout


def _deployment_target(args: argparse.Namespace) -> tuple[ResourceType, str, str]:
    rt, name = split_target(args.target, args.name)
    if rt.kind != "Deployment":
        raise UsageError(f"rollout is not supported on {rt.plural}: use deployment/NAME")
    return rt, name, args.namespace or "default"


def rollout_message(d: dict[str, Any]) -> tuple[str, bool]:
    """kubectl's rollout status line for a Deployment, and whether it is done.

    Raises UsageError when the rollout exceeded its progress deadline."""
    meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    name = meta.get("name")
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return "Waiting for deployment spec update to be observed...", False
    for c in status.get("conditions") or ():
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            raise UsageError(f'deployment "{name}" exceeded its progress deadline')
    want = int(spec.get("replicas", 1))
    total = int(status.get("replicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < want:
        return f"{waiting}{updated} out of {want} new replicas have been updated...", False
    if total > updated:
        return f"{waiting}{total - updated} old replicas are pending termination...", False
    if available < updated:
        return f"{waiting}{available} of {updated} updated replicas are available...", False
    return f'deployment "{name}" successfully rolled out', True


async def status(args: argparse.Namespace) -> int:
    rt, name, ns = _deployment_target(args)
    timeout = duration("--timeout", args.timeout)
    async with client_for(args) as client:
        try:
            async with asyncio.timeout(timeout or None):
                return await _follow_rollout(client, rt, name, ns, args.watch)
        except TimeoutError:
            print("error: timed out waiting for the condition", file=sys.stderr)
            return 1


async def _follow_rollout(client: Client, rt: ResourceType, name: str, ns: str, watch: bool) -> int:
    last = ""

    def show(d: dict[str, Any]) -> bool:
        nonlocal last
        message, done = rollout_message(d)
        if message != last:
            print(message, flush=True)
            last = message
        return done

    d = await client.get(rt, name, ns)
    while True:
        if show(d) or not watch:
            return 0
        rv = str((d.get("metadata") or {}).get("resourceVersion") or "")
        try:
            async for kind, obj in client.watch(
                rt, ns, resource_version=rv, field_selector=f"metadata.name={name}"
            ):
                if kind == "DELETED":
                    raise UsageError(f'deployment "{name}" was deleted')
                d = obj
                if show(d):
                    return 0
        except ApiError as e:
            if e.code != 410:
                raise
        d = await client.get(rt, name, ns)  # the watch ended or fell behind: start again


async def history(args: argparse.Namespace) -> int:
    from control.objects.revisions import CHANGE_CAUSE

    rt, name, ns = _deployment_target(args)
    async with client_for(args) as client:
        d = await client.get(rt, name, ns)
        revisions = await rollout.history(client, d, ns)
    if args.revision:
        rs = revisions.get(args.revision)
        if rs is None:
            raise UsageError(f"unable to find the specified revision {args.revision}")
        print(f"deployment.apps/{name} with revision #{args.revision}")
        print("Pod Template:")
        for line in to_yaml((rs.get("spec") or {}).get("template") or {}).splitlines():
            print(f"  {line}")
        return 0
    if not revisions:
        print("No rollout history found.")
        return 0
    print(f"deployment.apps/{name}")
    table(
        ["REVISION", "CHANGE-CAUSE"],
        [
            [
                str(rev),
                ((revisions[rev].get("metadata") or {}).get("annotations") or {}).get(
                    CHANGE_CAUSE, "<none>"
                ),
            ]
            for rev in sorted(revisions)
        ],
        sys.stdout,
    )
    return 0


async def undo(args: argparse.Namespace) -> int:
    _, name, ns = _deployment_target(args)
    async with client_for(args) as client:
        done = await rollout.undo(client, name, ns, args.to_revision or 0)
    print(done.message(name))
    return 0


async def restart(args: argparse.Namespace) -> int:
    _, name, ns = _deployment_target(args)
    async with client_for(args) as client:
        await rollout.restart(client, name, ns)
    print(f"deployment.apps/{name} restarted")
    return 0


async def _set_paused(args: argparse.Namespace, paused: bool) -> int:
    _, name, ns = _deployment_target(args)
    async with client_for(args) as client:
        await rollout.set_paused(client, name, ns, paused)
    print(f"deployment.apps/{name} {'paused' if paused else 'resumed'}")
    return 0


async def pause(args: argparse.Namespace) -> int:
    return await _set_paused(args, True)


async def resume(args: argparse.Namespace) -> int:
    return await _set_paused(args, False)
