"""Shared pieces of the controller tests: manifests, bounded waits, the CLI in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from console.cli.main import build_parser
from control.api.registry import Registry
from control.controllers.deployment.progress import deployment_complete
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.objects.kinds import DEPLOYMENT, EVENT, POD, REPLICASET
from tests.manifests import workload
from tests.polling import eventually

Obj = dict[str, Any]
NS = "default"


def deployment(
    name: str = "web",
    replicas: int = 3,
    image: str = "nginx:1.25",
    *,
    strategy: Obj | None = None,
    **spec: Any,
) -> Obj:
    if strategy:
        spec = {"strategy": strategy, **spec}
    return workload("Deployment", name, replicas, image, namespace=NS, **spec)


def replicaset(name: str = "rs", replicas: int = 3, **spec: Any) -> Obj:
    return workload("ReplicaSet", name, replicas, "nginx:1.25", namespace=NS, **spec)


async def get(registry: Registry, kind: Any, name: str) -> Obj:
    return (await registry.get(kind, NS, name)).obj


async def pods(registry: Registry, app: str, *, terminating: bool = False) -> list[Obj]:
    """The app's pods; those being deleted only if `terminating`."""
    items = [kv.obj for kv in (await registry.list(POD, NS)).items]
    return [
        p
        for p in items
        if (p["metadata"].get("labels") or {}).get("app") == app
        and (terminating or not p["metadata"].get("deletionTimestamp"))
    ]


async def replicasets(registry: Registry, app: str) -> list[Obj]:
    items = [kv.obj for kv in (await registry.list(REPLICASET, NS)).items]
    return [rs for rs in items if (rs["metadata"].get("labels") or {}).get("app") == app]


async def rolled_out(registry: Registry, name: str, within: float = 15.0) -> Obj:
    """Wait until the Deployment's rollout is complete: every replica updated and
    available, no old pods left, and only the new ReplicaSet sized above zero."""

    async def check() -> Obj | None:
        d = await get(registry, DEPLOYMENT, name)
        if not deployment_complete(d, d.get("status") or {}):
            return None
        if len(await pods(registry, name, terminating=True)) != d["spec"]["replicas"]:
            return None
        sized = [rs for rs in await replicasets(registry, name) if rs["spec"]["replicas"]]
        return d if len(sized) <= 1 else None

    return await eventually(check, f"deployment {name} to roll out", within=within)


async def deployed(registry: Registry, name: str = "web", **kwargs: Any) -> Obj:
    """Create the Deployment `deployment(name, **kwargs)` and wait until it has rolled out."""
    await registry.create(DEPLOYMENT, NS, deployment(name, **kwargs))
    return await rolled_out(registry, name)


async def update(registry: Registry, kind: Any, name: str, change: Callable[[Obj], None]) -> Obj:
    def apply(obj: Obj) -> Obj:
        change(obj)
        return obj

    return (await registry.patch(kind, NS, name, apply)).obj


async def set_image(registry: Registry, name: str, image: str) -> Obj:
    def change(d: Obj) -> None:
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image

    return await update(registry, DEPLOYMENT, name, change)


async def events(registry: Registry, reason: str) -> list[Obj]:
    items = [kv.obj for kv in (await registry.list(EVENT, NS)).items]
    return [e for e in items if e.get("reason") == reason]


async def cli(plane: ControlPlane, *argv: str) -> int:
    """Run a `pilothouse` command in this event loop, against `plane`."""
    args = build_parser().parse_args([*argv, "--server", str(plane.socket_path)])
    code: int = await args.func(args)
    return code


async def ignore_missing(aw: Awaitable[Any]) -> None:
    try:
        await aw
    except ApiError as e:
        if e.code != 404:
            raise


class Observer:
    """Follows pods and ReplicaSets as one stream, in the store's revision order,
    and calls `check(observer)` after every change: what the test asserts holds at
    every moment anyone could have observed."""

    def __init__(self, plane: ControlPlane, check: Callable[[Observer], None]) -> None:
        self.store = plane.store
        self.check = check
        self.pods: dict[str, Obj] = {}
        self.replicasets: dict[str, Obj] = {}
        self.events = 0
        self.failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Observer:
        listed = await self.store.list("/registry/")
        for kv in listed.items:
            self._apply(kv.key, kv.obj, deleted=False)
        self._task = asyncio.create_task(self._follow(listed.revision))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        if self.failure is not None and exc[0] is None:
            raise self.failure

    async def _follow(self, revision: int) -> None:
        async for ev in self.store.watch("/registry/", revision):
            if self._apply(ev.kv.key, ev.kv.obj, deleted=ev.type == "DELETED"):
                self.events += 1
                try:
                    self.check(self)
                except AssertionError as e:
                    if self.failure is None:
                        self.failure = e

    def _apply(self, key: str, obj: Obj, *, deleted: bool) -> bool:
        if key.startswith("/registry/pods/"):
            target = self.pods
        elif key.startswith("/registry/replicasets/"):
            target = self.replicasets
        else:
            return False
        if deleted:
            target.pop(key, None)
        else:
            target[key] = obj
        return True

    def active_pods(self, app: str) -> list[Obj]:
        return [
            p
            for p in self.pods.values()
            if (p["metadata"].get("labels") or {}).get("app") == app
            and not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]


def is_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )
