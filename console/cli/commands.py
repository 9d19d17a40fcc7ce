"""The CLI's commands. Each takes parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
from pathlib import Path
from typing import Any

from agent.protocol import ImageArchiveError, image_archive_names
from console.cli.interactive import run as run_interactive
from console.cli.output import print_objects, table, to_yaml
from console.cli.target import make_client
from control.apply import apply_one
from control.client import Client
from control.config import load_config
from control.errors import ApiError
from control.objects.kinds import NODE, POD, ResourceType, by_kind, by_name
from control.objects.manifest import load_paths
from control.objects.quantity import parse_quantity


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
    from control.nodes.ssh import ssh_transports

    # The configured [[nodes]] are reached over SSH.
    plane = ControlPlane(config, transports=ssh_transports(config))
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


# -- rollout -------------------------------------------------------------------


def _deployment_target(args: argparse.Namespace) -> tuple[ResourceType, str, str]:
    rt, name = _split_target(args.target, args.name)
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


def _timeout(text: str) -> float:
    from control.config import _parse_duration

    text = text.strip()
    try:
        seconds: float | None = float(text)
    except ValueError:
        seconds = _parse_duration(text)
    if seconds is None or seconds < 0:
        raise UsageError(f'--timeout: not a duration: "{text}" (use e.g. "90s", "5m")')
    return seconds


async def rollout_status(args: argparse.Namespace) -> int:
    rt, name, ns = _deployment_target(args)
    timeout = _timeout(args.timeout)
    async with _client(args) as client:
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


async def _revisions(client: Client, d: dict[str, Any], ns: str) -> dict[int, dict[str, Any]]:
    """The Deployment's ReplicaSets by revision."""
    from control.objects.kinds import REPLICASET
    from control.objects.revisions import revision

    uid = (d.get("metadata") or {}).get("uid")
    out: dict[int, dict[str, Any]] = {}
    for rs in await list_all(client, REPLICASET, ns):
        refs = (rs.get("metadata") or {}).get("ownerReferences") or []
        if any(r.get("controller") and r.get("uid") == uid for r in refs):
            out[revision(rs)] = rs
    return out


async def rollout_history(args: argparse.Namespace) -> int:
    from control.objects.revisions import CHANGE_CAUSE

    rt, name, ns = _deployment_target(args)
    async with _client(args) as client:
        d = await client.get(rt, name, ns)
        history = await _revisions(client, d, ns)
    if args.revision:
        rs = history.get(args.revision)
        if rs is None:
            raise UsageError(f"unable to find the specified revision {args.revision}")
        print(f"deployment.apps/{name} with revision #{args.revision}")
        print("Pod Template:")
        for line in to_yaml((rs.get("spec") or {}).get("template") or {}).splitlines():
            print(f"  {line}")
        return 0
    if not history:
        print("No rollout history found.")
        return 0
    print(f"deployment.apps/{name}")
    table(
        ["REVISION", "CHANGE-CAUSE"],
        [
            [
                str(rev),
                ((history[rev].get("metadata") or {}).get("annotations") or {}).get(
                    CHANGE_CAUSE, "<none>"
                ),
            ]
            for rev in sorted(history)
        ],
        sys.stdout,
    )
    return 0


async def rollout_undo(args: argparse.Namespace) -> int:
    """Roll back client-side, as modern kubectl does: copy the revision's template
    (without its pod-template-hash label) and annotations into the Deployment."""
    from control.objects.revisions import (
        SKIP_ANNOTATIONS,
        equal_ignore_hash,
        template_without_hash,
    )

    rt, name, ns = _deployment_target(args)
    async with _client(args) as client:
        d = await client.get(rt, name, ns)
        if (d.get("spec") or {}).get("paused"):
            raise UsageError(
                "you cannot rollback a paused deployment; resume it first with "
                f"'pilothouse rollout resume deployment/{name}' and try again"
            )
        history = await _revisions(client, d, ns)
        if args.to_revision:
            target = history.get(args.to_revision)
            if target is None:
                raise UsageError(f"unable to find specified revision {args.to_revision} in history")
            rev = args.to_revision
        else:
            older = sorted(history)[:-1]
            if not older:
                raise UsageError(f'no rollout history found for deployment "{name}"')
            rev = older[-1]
            target = history[rev]
        template = (target.get("spec") or {}).get("template") or {}
        if equal_ignore_hash(template, (d.get("spec") or {}).get("template") or {}):
            print(
                f"deployment.apps/{name} skipped rollback "
                f"(current template already matches revision {rev})"
            )
            return 0
        meta = d.setdefault("metadata", {})
        current = meta.get("annotations") or {}
        annotations = {k: v for k, v in current.items() if k in SKIP_ANNOTATIONS}
        for k, v in ((target.get("metadata") or {}).get("annotations") or {}).items():
            if k not in SKIP_ANNOTATIONS:
                annotations[k] = v
        meta["annotations"] = annotations
        d["spec"]["template"] = template_without_hash(template)
        await client.replace(rt, d)
    print(f"deployment.apps/{name} rolled back")
    return 0


async def rollout_restart(args: argparse.Namespace) -> int:
    from control.api.registry import now_rfc3339
    from control.objects.revisions import RESTARTED_AT

    rt, name, ns = _deployment_target(args)
    async with _client(args) as client:
        d = await client.get(rt, name, ns)
        if (d.get("spec") or {}).get("paused"):
            raise UsageError(
                f'deployments.apps "{name}" can\'t restart paused deployment (run rollout resume first)'
            )
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now_rfc3339()}}}}}
        await client.patch(rt, name, patch, ns)
    print(f"deployment.apps/{name} restarted")
    return 0


async def _set_paused(args: argparse.Namespace, paused: bool) -> int:
    rt, name, ns = _deployment_target(args)
    word = "paused" if paused else "resumed"
    async with _client(args) as client:
        d = await client.get(rt, name, ns)
        if bool((d.get("spec") or {}).get("paused")) == paused:
            state = "already paused" if paused else "not paused"
            raise UsageError(f'deployments.apps "{name}" is {state}')
        await client.patch(rt, name, {"spec": {"paused": paused}}, ns)
    print(f"deployment.apps/{name} {word}")
    return 0


async def rollout_pause(args: argparse.Namespace) -> int:
    return await _set_paused(args, True)


async def rollout_resume(args: argparse.Namespace) -> int:
    return await _set_paused(args, False)


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


async def bench_scheduler(args: argparse.Namespace) -> int:
    from console.bench.scheduler import run_bench_scheduler

    return await run_bench_scheduler(args.nodes, args.pods, args.concurrency, args.json)


async def bench_console(args: argparse.Namespace) -> int:
    from console.bench.console import run_bench_console

    return await run_bench_console(args.pods, args.nodes, args.seconds, args.rate, args.json)


async def bench_pods(args: argparse.Namespace) -> int:
    from console.bench.pods import run_bench_pods

    if args.nodes < 1 or args.replicas < 1 or args.samples < 1:
        raise UsageError("--nodes, --replicas and --samples must be positive")
    try:
        return await run_bench_pods(
            nodes=args.nodes,
            replicas=args.replicas,
            samples=args.samples,
            use_current=args.use_current,
            server=args.server,
            kubeconfig=args.kubeconfig,
            as_json=args.json,
        )
    except RuntimeError as e:
        _say(f"error: bench pods: {e}")
        return 1


async def console(args: argparse.Namespace) -> int:
    from console.tui.launch import run_console

    return await run_console(args)


# -- cordon / uncordon / drain -----------------------------------------------

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from "90", "90s", "2m", "1m30s"; 0 means no limit."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    total, pos = 0.0, 0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if m is None:
            raise UsageError(f'invalid duration "{text}": use e.g. 90s, 2m, 1m30s')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not text:
        raise UsageError("invalid duration: empty")
    return total


async def _set_unschedulable(client: Client, node: str, cordoned: bool) -> bool:
    """Cordon or uncordon; False when the node already was."""
    obj = await client.get(NODE, node)
    if bool((obj.get("spec") or {}).get("unschedulable")) == cordoned:
        return False
    await client.patch(NODE, node, {"spec": {"unschedulable": True if cordoned else None}})
    return True


async def cordon(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        changed = await _set_unschedulable(client, args.node, True)
    print(f"node/{args.node} {'cordoned' if changed else 'already cordoned'}")
    return 0


async def uncordon(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        changed = await _set_unschedulable(client, args.node, False)
    print(f"node/{args.node} {'uncordoned' if changed else 'already uncordoned'}")
    return 0


def _pod_name(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _daemon_pod(pod: dict[str, Any]) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("kind") == "DaemonSet" for r in refs)


async def drain(args: argparse.Namespace) -> int:
    """Cordon the node, evict its pods (not mirror or DaemonSet pods), and wait
    until they are gone, as `kubectl drain`."""
    node = args.node
    timeout = parse_duration(args.timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout > 0 else None
    async with _client(args) as client:
        changed = await _set_unschedulable(client, node, True)
        print(f"node/{node} {'cordoned' if changed else 'already cordoned'}", flush=True)
        listed = await client.list(POD, None, field_selector=f"spec.nodeName={node}")
        revision = str((listed.get("metadata") or {}).get("resourceVersion") or "")
        pods = listed.get("items") or []
        mirror = [
            p
            for p in pods
            if MIRROR_ANNOTATION in ((p.get("metadata") or {}).get("annotations") or {})
        ]
        daemon = [p for p in pods if _daemon_pod(p) and p not in mirror]
        if daemon and not args.ignore_daemonsets:
            names = ", ".join(_pod_name(p) for p in daemon)
            print(
                f'error: unable to drain node "{node}": cannot delete DaemonSet-managed Pods '
                f"(use --ignore-daemonsets to ignore): {names}",
                file=sys.stderr,
            )
            return 1
        if daemon:
            names = ", ".join(_pod_name(p) for p in daemon)
            print(f"Warning: ignoring DaemonSet-managed Pods: {names}", file=sys.stderr)
        targets = [p for p in pods if p not in mirror and p not in daemon]
        pending: dict[str, str] = {}  # namespace/name -> uid
        for pod in targets:
            meta = pod["metadata"]
            print(f"evicting pod {_pod_name(pod)}", flush=True)
            if await _evict(client, pod, args.grace_period, deadline):
                pending[_pod_name(pod)] = str(meta.get("uid"))
            else:
                print(f"pod/{meta['name']} evicted", flush=True)
        try:
            async with asyncio.timeout_at(deadline):
                await _wait_deleted(client, node, pending, revision)
        except TimeoutError:
            print(
                f'error: unable to drain node "{node}": timed out after {args.timeout} '
                f"waiting for pods to be deleted: {', '.join(sorted(pending))}",
                file=sys.stderr,
            )
            return 1
    print(f"node/{node} drained")
    return 0


async def _evict(client: Client, pod: dict[str, Any], grace: int, deadline: float | None) -> bool:
    """POST the Eviction; False when the pod is already gone. A refusal (429)
    is retried, as kubectl does, until the deadline."""
    meta = pod["metadata"]
    body: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "deleteOptions": {"preconditions": {"uid": meta.get("uid")}},
    }
    if grace >= 0:
        body["deleteOptions"]["gracePeriodSeconds"] = grace
    path = Client.path(POD, meta["namespace"], meta["name"], "eviction")
    loop = asyncio.get_running_loop()
    while True:
        try:
            await client.request("POST", path, body=body)
            return True
        except ApiError as e:
            if e.code in (404, 409):  # gone, or replaced by another pod of that name
                return False
            if e.code != 429 or (deadline is not None and loop.time() + 5 > deadline):
                raise
            print(
                f"error when evicting pods/{meta['name']} (will retry after 5s): {e.message}",
                file=sys.stderr,
            )
            await asyncio.sleep(5)


async def _wait_deleted(client: Client, node: str, pending: dict[str, str], revision: str) -> None:
    """Watch the node's pods until every pending one is deleted (or replaced)."""

    def gone(key: str, uid: str | None) -> None:
        if key in pending and uid != pending[key]:
            del pending[key]
            print(f"pod/{key.partition('/')[2]} evicted", flush=True)

    while pending:
        try:
            async for kind, obj in client.watch(
                POD, None, resource_version=revision, field_selector=f"spec.nodeName={node}"
            ):
                meta = obj.get("metadata") or {}
                revision = str(meta.get("resourceVersion") or revision)
                if kind == "DELETED":
                    gone(_pod_name(obj), None)
                else:
                    gone(_pod_name(obj), meta.get("uid"))
                if not pending:
                    return
        except ApiError as e:
            if e.code != 410:
                raise
        # The watch ended or fell behind: look at what is left, then watch again.
        listed = await client.list(POD, None, field_selector=f"spec.nodeName={node}")
        revision = str((listed.get("metadata") or {}).get("resourceVersion") or "")
        present = {
            _pod_name(p): (p.get("metadata") or {}).get("uid") for p in listed.get("items") or []
        }
        for key in list(pending):
            gone(key, present.get(key))


# -- up / down / node check ----------------------------------------------------


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _data_dir_arg(args: argparse.Namespace) -> Path:
    from control.config import default_data_dir

    d = getattr(args, "data_dir", None)
    return Path(d).expanduser().absolute() if d else default_data_dir()


async def up(args: argparse.Namespace) -> int:
    from control.config import default_data_dir
    from control.localcluster.cluster import up as cluster_up

    data_dir = _data_dir_arg(args)
    result = await cluster_up(
        args.nodes,
        data_dir,
        cluster=args.name,
        node_subnet=args.node_subnet,
        pod_cidr=args.pod_cidr,
        api_listen=args.listen,
        node_grace_period=args.node_grace_period,
        backoff_base=args.backoff_base,
        serve_command=(sys.executable, "-m", "console", "serve", "--data-dir", str(data_dir)),
        progress=_say,
    )
    print(f"local cluster up: {len(result.nodes)} nodes in {result.seconds:.1f}s")
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
            args.tui_server = args.tui_kubeconfig = None
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


async def node_check(args: argparse.Namespace) -> int:
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


# -- logs / exec / top -------------------------------------------------------


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
    async with _client(args) as client:
        if args.follow and not args.previous:
            async for chunk in client.follow_logs(
                name,
                ns,
                container=args.container,
                tail_lines=args.tail,
                since_seconds=args.since,
                timestamps=args.timestamps,
            ):
                sys.stdout.write(chunk)
                sys.stdout.flush()
            return 0
        text = await client.logs(
            name,
            ns,
            container=args.container,
            previous=args.previous,
            tail_lines=args.tail,
            since_seconds=args.since,
            timestamps=args.timestamps,
        )
    sys.stdout.write(text)
    return 0


async def exec_(args: argparse.Namespace) -> int:
    command = list(args.argv)
    if not command:
        raise UsageError("you must specify at least one command for the container: exec POD -- CMD")
    if args.stdin or args.tty:
        async with _client(args) as client:
            return await run_interactive(
                client,
                _pod_arg(args.pod),
                args.namespace or "default",
                command,
                container=args.container,
                stdin=args.stdin,
                tty=args.tty,
            )
    async with _client(args) as client:
        result = await client.exec(
            _pod_arg(args.pod), command, args.namespace or "default", container=args.container
        )
    sys.stdout.write(result.get("stdout", ""))
    sys.stdout.flush()
    sys.stderr.write(result.get("stderr", ""))
    return int(result.get("exitCode", 0))


def _millicores(q: str) -> int:
    return int(parse_quantity(q) * 1000)


def _mebibytes(q: str) -> int:
    return int(parse_quantity(q) / (1024 * 1024))


async def top(args: argparse.Namespace) -> int:
    async with _client(args) as client:
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


# -- image import ----------------------------------------------------------------


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
    async with _client(args) as client:
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
