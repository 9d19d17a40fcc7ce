"""What the console's keys do, as plain async functions over the API client.

They return a one-line result for a notification, or raise ApiError with the
server's message; the app shows either. Nothing here touches the UI.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import yaml

from console.cli.output import to_yaml
from control.apply import apply_one
from control.client import Client
from control.errors import ApiError
from control.objects import kinds
from control.objects.kinds import ResourceType
from control.objects.manifest import load_manifests, load_paths

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def split_key(key: str) -> tuple[str | None, str]:
    ns, _, name = key.rpartition("/")
    return (ns or None), name


def label(rt: ResourceType, name: str) -> str:
    return f"{rt.singular}{'.' + rt.group if rt.group else ''}/{name}"


async def scale_to(client: Client, rt: ResourceType, key: str, replicas: int) -> str:
    if not rt.scale:
        raise ApiError(400, "BadRequest", f"{rt.plural} cannot be scaled")
    if replicas < 0:
        raise ApiError(400, "BadRequest", "replicas must be >= 0")
    ns, name = split_key(key)
    await client.scale(rt, name, replicas, ns)
    return f"{label(rt, name)} scaled to {replicas}"


async def scale_by(client: Client, rt: ResourceType, key: str, delta: int) -> str:
    ns, name = split_key(key)
    obj = await client.get(rt, name, ns)
    spec = obj.get("spec") or {}
    current = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    return await scale_to(client, rt, key, max(0, current + delta))


async def cordon(client: Client, name: str, on: bool = True) -> str:
    await client.patch(kinds.NODE, name, {"spec": {"unschedulable": True if on else None}})
    return f"node/{name} {'cordoned' if on else 'uncordoned'}"


async def drain(
    client: Client,
    name: str,
    progress: Callable[[int, int, str], None] | None = None,
    wait_s: float = 60.0,
) -> str:
    """Cordon, delete the node's pods (controllers recreate them elsewhere), wait until gone."""
    await cordon(client, name, True)
    listed = await client.list(kinds.POD, field_selector=f"spec.nodeName={name}")
    pods = [
        p
        for p in listed.get("items") or []
        if not any(
            r.get("kind") == "DaemonSet"
            for r in (p.get("metadata") or {}).get("ownerReferences") or []
        )
    ]
    total = len(pods)
    if progress:
        progress(0, total, f"cordoned node/{name}; evicting {total} pods")
    for done, pod in enumerate(pods, start=1):
        meta = pod.get("metadata") or {}
        try:
            await client.delete(kinds.POD, str(meta.get("name")), meta.get("namespace"))
        except ApiError as e:
            if e.code != 404:
                raise
        if progress:
            progress(done, total, f"evicted pod {meta.get('namespace')}/{meta.get('name')}")
    deadline = asyncio.get_running_loop().time() + wait_s
    uids = {(p.get("metadata") or {}).get("uid") for p in pods}
    while True:
        left = await client.list(kinds.POD, field_selector=f"spec.nodeName={name}")
        remaining = [p for p in left.get("items") or [] if p["metadata"].get("uid") in uids]
        if not remaining:
            break
        if progress:
            progress(total, total, f"waiting for {len(remaining)} pods to terminate")
        if asyncio.get_running_loop().time() > deadline:
            raise ApiError(
                504, "Timeout", f"drain node/{name}: {len(remaining)} pods still terminating"
            )
        await asyncio.sleep(0.5)
    return f"node/{name} drained ({total} pods evicted)"


async def rollout_restart(client: Client, key: str) -> str:
    ns, name = split_key(key)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
    await client.patch(kinds.DEPLOYMENT, name, patch, ns)
    return f"deployment.apps/{name} restarted"


async def rollout_undo(client: Client, key: str) -> str:
    """Roll back to the previous revision's pod template, as `kubectl rollout undo` does."""
    ns, name = split_key(key)
    deploy = await client.get(kinds.DEPLOYMENT, name, ns)
    uid = deploy["metadata"].get("uid")
    rss = (await client.list(kinds.REPLICASET, ns)).get("items") or []
    owned = []
    for rs in rss:
        refs = rs["metadata"].get("ownerReferences") or []
        rev = (rs["metadata"].get("annotations") or {}).get(REVISION)
        if rev and rev.isdigit() and any(r.get("uid") == uid for r in refs):
            owned.append((int(rev), rs))
    owned.sort(key=lambda t: t[0])
    current = (deploy["metadata"].get("annotations") or {}).get(REVISION)
    cur = int(current) if current and current.isdigit() else (owned[-1][0] if owned else 0)
    previous = [t for t in owned if t[0] < cur]
    if not previous:
        raise ApiError(400, "BadRequest", f"no rollout history found for deployment.apps/{name}")
    rev, rs = previous[-1]
    template = rs["spec"]["template"]
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels.pop("pod-template-hash", None)
    template = {**template, "metadata": {**(template.get("metadata") or {}), "labels": labels}}
    await client.patch(kinds.DEPLOYMENT, name, {"spec": {"template": template}}, ns)
    return f"deployment.apps/{name} rolled back to revision {rev}"


async def delete(client: Client, rt: ResourceType, key: str) -> str:
    ns, name = split_key(key)
    await client.delete(rt, name, ns)
    return f'{rt.singular}{"." + rt.group if rt.group else ""} "{name}" deleted'


async def apply_file(client: Client, path: str) -> str:
    docs = await asyncio.to_thread(lambda: load_paths([os.path.expanduser(path)]))
    docs.sort(key=lambda d: 0 if d[1].get("kind") == "Namespace" else 1)
    if not docs:
        raise ApiError(400, "BadRequest", f"{path}: no objects")
    lines = []
    for _, manifest in docs:
        obj_label, outcome = await apply_one(client, manifest, None)
        lines.append(f"{obj_label} {outcome}")
    return "\n".join(lines)


def edited_manifest(text: str) -> Obj | None:
    docs = load_manifests(text, "edited")
    return docs[0] if docs else None


async def replace_edited(client: Client, rt: ResourceType, original: Obj, text: str) -> str:
    """Send an edited object back with PUT; its resourceVersion makes it a compare-and-swap."""
    obj = edited_manifest(text)
    name = str(original["metadata"]["name"])
    if obj is None:
        return "edit cancelled: the file is empty"
    if obj == {k: v for k, v in original.items() if k != "status"}:
        return f"{label(rt, name)} unchanged"
    await client.replace(rt, obj)
    return f"{label(rt, name)} edited"


async def logs(
    client: Client,
    key: str,
    *,
    container: str | None = None,
    previous: bool = False,
    timestamps: bool = False,
    tail: int = 1000,
) -> str:
    ns, name = split_key(key)
    return await client.logs(
        name,
        ns or "default",
        container=container,
        previous=previous,
        tail_lines=tail,
        timestamps=timestamps,
    )


# What `x` runs: bash where the image has it, else sh.
SHELL = ["sh", "-c", "command -v bash >/dev/null 2>&1 && exec bash || exec sh"]


def shell_argv(target: list[str], key: str, container: str | None = None) -> list[str]:
    """The CLI command line for an interactive shell in a pod, against the
    cluster that `target` (CLI flags: --server or --kubeconfig) names."""
    ns, name = split_key(key)
    argv = [sys.executable, "-m", "console", "exec", "-it", *target, "-n", ns or "default", name]
    if container:
        argv += ["-c", container]
    return [*argv, "--", *SHELL]


def shell_container(pod: Obj | None) -> str | None:
    """The container a shell goes to: the first, when there are several."""
    containers = ((pod or {}).get("spec") or {}).get("containers") or []
    if len(containers) > 1:
        return str(containers[0].get("name") or "") or None
    return None


def as_yaml(obj: Obj) -> str:
    return to_yaml(obj)


def _kv(d: Obj | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (d or {}).items()) or "<none>"


async def describe(client: Client, rt: ResourceType, key: str) -> str:
    ns, name = split_key(key)
    obj = await client.get(rt, name, ns)
    try:
        events = (
            await client.list(
                kinds.EVENT,
                ns or "default",
                field_selector=f"involvedObject.name={name},involvedObject.kind={rt.kind}",
            )
        ).get("items") or []
    except ApiError:
        events = []
    meta = obj.get("metadata") or {}
    out = [f"Name:         {meta.get('name')}"]
    if rt.namespaced:
        out.append(f"Namespace:    {meta.get('namespace')}")
    out.append(f"Kind:         {rt.kind}")
    out.append(f"Created:      {meta.get('creationTimestamp')}")
    out.append(f"Labels:       {_kv(meta.get('labels'))}")
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith("kubectl.kubernetes.io/last")
    }
    out.append(f"Annotations:  {_kv(annotations)}")
    for section in ("spec", "data", "subsets", "status"):
        if obj.get(section):
            out.append(f"{section.capitalize()}:")
            out.extend(f"  {line}" for line in to_yaml(obj[section]).splitlines())
    if not events:
        out.append("Events:       <none>")
    else:
        out.append("Events:")
        events.sort(key=lambda e: e.get("lastTimestamp") or "")
        out.append("  TYPE      REASON                COUNT  MESSAGE")
        for e in events:
            out.append(
                f"  {e.get('type', 'Normal')!s:<9} {e.get('reason', '')!s:<21} "
                f"{e.get('count', 1)!s:<6} {e.get('message', '')}"
            )
    return "\n".join(out) + "\n"


def dump_for_edit(obj: Obj) -> str:
    clean = {k: v for k, v in obj.items() if k != "status"}
    return yaml.safe_dump(clean, sort_keys=False, default_flow_style=False)
