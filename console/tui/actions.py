"""What the console's keys do, as plain async functions over the API client.

They return a one-line result for a notification, or raise ApiError with the
server's message (OperationError when the cluster's state rules the action
out); the app shows either. What changes the cluster is control.operations,
which the CLI calls too; nothing here touches the UI.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

import yaml

from console.cli.output import to_yaml
from control.apply import apply_one
from control.client import Client
from control.errors import ApiError
from control.objects import Obj, kinds
from control.objects.kinds import ResourceType
from control.objects.manifest import load_manifests, load_paths
from control.objects.routes import Route
from control.operations import OperationError, jobs, nodes, rollout, routes, scale
from control.operations import delete as remove
from control.operations.describe import describe as describe_text


def split_key(key: str) -> tuple[str | None, str]:
    ns, _, name = key.rpartition("/")
    return (ns or None), name


def label(rt: ResourceType, name: str) -> str:
    return f"{rt.singular_resource}/{name}"


async def scale_to(client: Client, rt: ResourceType, key: str, replicas: int) -> str:
    ns, name = split_key(key)
    await scale.scale_to(client, rt, name, ns, replicas)
    return f"{label(rt, name)} scaled to {replicas}"


async def scale_by(client: Client, rt: ResourceType, key: str, delta: int) -> str:
    ns, name = split_key(key)
    replicas = await scale.scale_by(client, rt, name, ns, delta)
    return f"{label(rt, name)} scaled to {replicas}"


async def shift_weights(client: Client, route: Route, toward_canary: bool) -> str:
    """Move 10 points of an HTTPRoute rule's traffic to its last backend (the
    canary), or back to its first."""
    if route.rule is None:
        raise OperationError(f"{route.name} is not an HTTPRoute rule")
    shift = await routes.shift_weights(
        client, route.namespace, route.owner, route.rule, toward_canary
    )
    return shift.message()


async def cordon(client: Client, name: str, on: bool = True) -> str:
    changed = await nodes.set_unschedulable(client, name, on)
    word = "cordoned" if on else "uncordoned"
    return f"node/{name} {word if changed else 'already ' + word}"


class _DrainSteps(nodes.DrainListener):
    """A drain's steps as (done, total, message) for a progress display."""

    def __init__(self, node: str, progress: Callable[[int, int, str], None]) -> None:
        self.node, self.progress, self.done, self.total = node, progress, 0, 0

    def planned(self, pods: list[str]) -> None:
        self.total = len(pods)
        self.progress(0, self.total, f"cordoned node/{self.node}; evicting {self.total} pods")

    def refused(self, pod: str, message: str) -> None:
        self.progress(self.done, self.total, f"eviction of {pod} refused, retrying: {message}")

    def evicted(self, pod: str, done: int, total: int) -> None:
        self.done = done
        self.progress(done, total, f"evicted pod {pod}")


async def drain(
    client: Client,
    name: str,
    progress: Callable[[int, int, str], None] | None = None,
    wait_s: float = 60.0,
) -> str:
    """Cordon the node, evict its pods (DaemonSet pods stay) and wait until they are gone."""
    listener = _DrainSteps(name, progress) if progress else None
    total = await nodes.drain(
        client, name, ignore_daemonsets=True, time_limit=wait_s, listener=listener
    )
    return f"node/{name} drained ({total} pods evicted)"


async def rollout_restart(client: Client, key: str) -> str:
    ns, name = split_key(key)
    await rollout.restart(client, name, ns or "default")
    return f"deployment.apps/{name} restarted"


async def rollout_undo(client: Client, key: str) -> str:
    """Roll back to the previous revision's pod template, as `kubectl rollout undo` does."""
    ns, name = split_key(key)
    done = await rollout.undo(client, name, ns or "default")
    if done.skipped:
        return done.message(name)
    return f"deployment.apps/{name} rolled back to revision {done.revision}"


async def delete(client: Client, rt: ResourceType, key: str) -> str:
    ns, name = split_key(key)
    return await remove.delete(client, rt, name, ns)


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


async def describe(client: Client, rt: ResourceType, key: str) -> str:
    ns, name = split_key(key)
    return await describe_text(client, rt, name, ns)


def dump_for_edit(obj: Obj) -> str:
    clean = {k: v for k, v in obj.items() if k != "status"}
    return yaml.safe_dump(clean, sort_keys=False, default_flow_style=False)


async def run_cronjob(client: Client, key: str) -> str:
    """`t` on a CronJob: a Job from its template now (`kubectl create job --from`)."""
    ns, name = split_key(key)
    job = await jobs.create_job_from_cronjob(client, name, ns)
    return f"{label(kinds.JOB, str(job['metadata']['name']))} created"


async def suspend_cronjob(client: Client, key: str) -> str:
    """`p` on a CronJob: suspend it, or resume it if suspended."""
    ns, name = split_key(key)
    suspended = await jobs.toggle_suspend(client, name, ns)
    return f"{label(kinds.CRONJOB, name)} {'suspended' if suspended else 'resumed'}"


async def set_parallelism(client: Client, key: str, parallelism: int) -> str:
    ns, name = split_key(key)
    await jobs.set_parallelism(client, name, ns, parallelism)
    return f"{label(kinds.JOB, name)} parallelism set to {parallelism}"


def not_scalable(view: str, key: str) -> str:
    """Why a scaling key does nothing on this view."""
    if view == "daemonsets":
        return "a DaemonSet runs one pod on each eligible node: it does not scale"
    if view == "jobs":
        return f"{key} does not scale a Job: s sets its parallelism"
    return "a CronJob does not scale: t runs it now, p suspends or resumes it"
