"""Garbage collection through ownerReferences, and the controller manager around it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from control.api.registry import Registry
from control.config import Config, load_config
from control.controllers.gc import GarbageCollector
from control.controllers.manager import ControllerManager
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.objects.kinds import CONFIGMAP, DEPLOYMENT, POD, REPLICASET, SECRET
from control.store.sqlite import SqliteStore
from tests.controllers.helpers import (
    NS,
    deployed,
    deployment,
    get,
    pods,
    replicasets,
    rolled_out,
    set_image,
)
from tests.controllers.hollow_nodes import HollowNodes
from tests.polling import eventually

Obj = dict[str, Any]


def ref(kind: str, name: str, uid: str, api_version: str = "v1") -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid}


def configmap(name: str, *owners: Obj) -> Obj:
    meta: Obj = {"name": name, "namespace": NS}
    if owners:
        meta["ownerReferences"] = list(owners)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


async def exists(registry: Registry, kind: Any, name: str) -> bool:
    try:
        await registry.get(kind, NS, name)
    except ApiError as e:
        if e.code == 404:
            return False
        raise
    return True


async def test_deleting_a_deployment_deletes_its_replicasets_and_pods(
    plane: ControlPlane, kubelet: HollowNodes
) -> None:
    reg = plane.registry
    await deployed(reg, replicas=3)
    await set_image(reg, "web", "nginx:1.26")
    await rolled_out(reg, "web")
    assert len(await replicasets(reg, "web")) == 2
    await deployed(reg, "other", replicas=1)

    await reg.delete(DEPLOYMENT, NS, "web")

    async def collected() -> bool:
        return not await replicasets(reg, "web") and not await pods(reg, "web", terminating=True)

    await eventually(collected, "the ReplicaSets and pods of the deployment to go", within=10.0)
    assert len(await pods(reg, "other")) == 1  # others' dependents stay
    assert len(await replicasets(reg, "other")) == 1


async def test_dangling_owner_uids_are_collected(plane: ControlPlane) -> None:
    reg = plane.registry
    await reg.create(DEPLOYMENT, NS, deployment(name="real", replicas=0))
    # One owner never existed; the other has the right name but another uid.
    await reg.create(
        CONFIGMAP,
        NS,
        configmap("ghost", ref("Deployment", "nobody", str(uuid.uuid4()), "apps/v1")),
    )
    await reg.create(
        CONFIGMAP,
        NS,
        configmap("impostor", ref("Deployment", "real", str(uuid.uuid4()), "apps/v1")),
    )
    await reg.create(CONFIGMAP, NS, configmap("unowned"))

    async def gone() -> bool:
        return not await exists(reg, CONFIGMAP, "ghost") and not await exists(
            reg, CONFIGMAP, "impostor"
        )

    await eventually(gone, "objects with dangling owners to be deleted", within=10.0)
    assert await exists(reg, CONFIGMAP, "unowned")
    assert await exists(reg, DEPLOYMENT, "real")


async def test_a_live_owner_keeps_its_dependent(plane: ControlPlane) -> None:
    reg = plane.registry
    secret = (
        await reg.create(
            SECRET,
            NS,
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "owner", "namespace": NS}},
        )
    ).obj
    live = ref("Secret", "owner", secret["metadata"]["uid"])
    dangling = ref("Secret", "vanished", str(uuid.uuid4()))
    # An owner of a kind nobody serves cannot be judged: the object is left alone.
    widget = ref("Widget", "w", str(uuid.uuid4()), "example.com/v1")
    await reg.create(CONFIGMAP, NS, configmap("unknown-kind", widget))
    await reg.create(CONFIGMAP, NS, configmap("shared", live, dangling))

    async def dropped() -> Obj | None:
        refs = (await get(reg, CONFIGMAP, "shared"))["metadata"].get("ownerReferences")
        return refs if refs == [live] else None

    await eventually(dropped, "the dangling reference to be dropped", within=10.0)
    assert await exists(reg, CONFIGMAP, "unknown-kind")

    await reg.delete(SECRET, NS, "owner")

    async def followed() -> bool:
        return not await exists(reg, CONFIGMAP, "shared")

    await eventually(followed, "the dependent to follow its owner", within=10.0)


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[tuple[Registry, Config]]:
    """A registry with no controllers running on it."""
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    try:
        reg = Registry(store, "10.96.0.0/12")
        await reg.ensure_system_namespaces()
        yield reg, load_config(None, data_dir=tmp_path)
    finally:
        await store.close()


async def test_startup_pass_collects_existing_garbage(bare: tuple[Registry, Config]) -> None:
    reg, config = bare
    owner = (await reg.create(CONFIGMAP, NS, configmap("owner"))).obj
    await reg.create(
        CONFIGMAP, NS, configmap("kept", ref("ConfigMap", "owner", owner["metadata"]["uid"]))
    )
    await reg.create(
        CONFIGMAP, NS, configmap("garbage", ref("ConfigMap", "gone", str(uuid.uuid4())))
    )
    manager = ControllerManager(reg, config, controllers=[GarbageCollector])
    task = asyncio.create_task(manager.run())
    try:

        async def collected() -> bool:
            return not await exists(reg, CONFIGMAP, "garbage")

        await eventually(collected, "the startup pass to delete the garbage", within=10.0)
        assert await exists(reg, CONFIGMAP, "kept")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_manager_shares_informers_and_runs_registered_controllers(
    bare: tuple[Registry, Config],
) -> None:
    reg, config = bare
    started: list[str] = []

    class Probe:
        def __init__(self, name: str, manager: ControllerManager) -> None:
            self.name = name
            self.pods = manager.informer(POD)

        async def run(self) -> None:
            await self.pods.synced.wait()
            started.append(self.name)

    manager = ControllerManager(reg, config, controllers=[])
    assert manager.informer(POD) is manager.informer(POD)
    assert manager.informer(POD) is not manager.informer(REPLICASET)
    manager.register(Probe("before", manager))
    task = asyncio.create_task(manager.run())
    try:

        async def ran(name: str) -> bool:
            return name in started

        await eventually(lambda: ran("before"), "a controller registered before run", within=10.0)
        manager.register(Probe("after", manager))
        await eventually(lambda: ran("after"), "a controller registered while running", within=10.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert started == ["before", "after"]


def test_plane_runs_the_default_controllers(plane: ControlPlane) -> None:
    names = {c.name for c in plane.controllers.controllers}
    assert {"replicaset-controller", "deployment-controller", "garbage-collector"} <= names
