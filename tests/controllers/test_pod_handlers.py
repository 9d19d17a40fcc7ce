"""Which pod changes wake which controller: the handlers' work queues, fed
through the shared pod informer's cache (no store, no workers)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, cast

from control.api.registry import Registry
from control.config import load_config
from control.controllers.deployment import DeploymentController
from control.controllers.endpoints import EndpointsController
from control.controllers.manager import ControllerManager
from control.controllers.replicaset import ReplicaSetController
from control.machinery.informer import Informer
from control.machinery.queue import WorkQueue
from control.objects.kinds import DEPLOYMENT, POD, REPLICASET, SERVICE

Obj = dict[str, Any]


class Cluster:
    """The controllers of one manager, and a pod whose versions the test puts."""

    def __init__(self, tmp_path: Path) -> None:
        config = load_config(None, data_dir=tmp_path)
        self.manager = ControllerManager(cast(Registry, None), config, controllers=[])
        self.replicasets = ReplicaSetController(self.manager, config)
        self.deployments = DeploymentController(self.manager, config)
        self.endpoints = EndpointsController(self.manager, config)
        self.rv = 0

    def put(self, informer: Informer, obj: Obj) -> Obj:
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        informer._put(obj)
        return obj


async def woken(queue: WorkQueue) -> set[str]:
    """The keys queued since the last call, taken off the queue as a worker would."""
    keys = set()
    while len(queue):
        key = await queue.get()
        assert key is not None
        queue.done(key)
        keys.add(key)
    return keys


def owned_pod(owner: Obj | None = None) -> Obj:
    meta: Obj = {"name": "web-1", "namespace": "default", "uid": "p1", "labels": {"app": "web"}}
    if owner is not None:
        meta["ownerReferences"] = [
            {"kind": owner["kind"], "name": owner["metadata"]["name"]}
            | {"uid": owner["metadata"]["uid"], "controller": True}
        ]
    return {"metadata": meta, "spec": {"containers": [{"name": "main"}]}, "status": {}}


def set_ready(pod: Obj, status: str) -> None:
    pod["status"]["conditions"] = [
        {"type": "Ready", "status": status, "lastTransitionTime": "2026-11-27T00:00:00Z"}
    ]


WEB_RS: Obj = {
    "kind": "ReplicaSet",
    "metadata": {"name": "web", "namespace": "default", "uid": "r1"},
    "spec": {"selector": {"matchLabels": {"app": "web"}}},
}


async def test_replicaset_wakes_for_changes_its_sync_reads(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.put(c.manager.informer(REPLICASET), WEB_RS)
    await woken(c.replicasets.queue)
    pods = c.manager.informer(POD)
    pod = owned_pod(WEB_RS)
    c.put(pods, pod)
    assert await woken(c.replicasets.queue) == {"default/web"}

    pod["spec"]["nodeName"] = "n1"  # bound: nothing a sync counts
    pod["status"]["containerStatuses"] = [{"name": "main", "restartCount": 0}]
    c.put(pods, pod)
    assert await woken(c.replicasets.queue) == set()

    set_ready(pod, "True")
    c.put(pods, pod)
    assert await woken(c.replicasets.queue) == {"default/web"}

    pod["metadata"]["labels"] = {"app": "other"}
    c.put(pods, pod)
    assert await woken(c.replicasets.queue) == {"default/web"}

    pod["metadata"]["deletionTimestamp"] = "2026-11-27T00:00:01Z"
    c.put(pods, pod)
    assert await woken(c.replicasets.queue) == {"default/web"}


async def test_replicaset_looks_for_adopters_of_orphans(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.put(c.manager.informer(REPLICASET), WEB_RS)
    await woken(c.replicasets.queue)
    pods = c.manager.informer(POD)
    pod = owned_pod()
    pod["metadata"]["labels"] = {"app": "db"}
    c.put(pods, pod)
    assert await woken(c.replicasets.queue) == set()
    pod["metadata"]["labels"] = {"app": "web"}  # now the ReplicaSet could adopt it
    c.put(pods, pod)
    assert await woken(c.replicasets.queue) == {"default/web"}


async def test_deployment_wakes_only_for_pods_of_its_replicasets(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    d = {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "d1"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}},
    }
    c.put(c.manager.informer(DEPLOYMENT), d)
    rs = {
        "kind": "ReplicaSet",
        "metadata": {
            "name": "web-abc",
            "namespace": "default",
            "uid": "r1",
            "ownerReferences": [
                {"kind": "Deployment", "name": "web", "uid": "d1", "controller": True}
            ],
        },
    }
    c.put(c.manager.informer(REPLICASET), rs)
    await woken(c.deployments.queue)
    pods = c.manager.informer(POD)

    orphan = owned_pod()
    orphan["metadata"] |= {"name": "lone", "uid": "p2", "labels": {"app": "lone"}}
    c.put(pods, orphan)
    set_ready(orphan, "True")
    c.put(pods, orphan)
    assert await woken(c.deployments.queue) == set()

    pod = owned_pod(rs)
    c.put(pods, pod)
    assert await woken(c.deployments.queue) == {"default/web"}
    pod["spec"]["nodeName"] = "n1"
    c.put(pods, pod)
    assert await woken(c.deployments.queue) == set()
    set_ready(pod, "True")
    c.put(pods, pod)
    assert await woken(c.deployments.queue) == {"default/web"}


async def test_endpoints_wake_for_pods_their_services_select(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    services = c.manager.informer(SERVICE)
    for name, selector in (("web", {"app": "web"}), ("all", None), ("db", {"app": "db"})):
        svc: Obj = {"metadata": {"name": name, "namespace": "default"}, "spec": {}}
        if selector:
            svc["spec"]["selector"] = selector
        c.put(services, svc)
    await woken(c.endpoints.queue)
    pods = c.manager.informer(POD)

    pod = owned_pod()
    c.put(pods, pod)
    assert await woken(c.endpoints.queue) == {"default/web"}
    pod["status"]["containerStatuses"] = [{"name": "main", "restartCount": 1}]
    c.put(pods, pod)
    assert await woken(c.endpoints.queue) == set()
    pod["spec"]["nodeName"] = "n1"
    c.put(pods, pod)
    assert await woken(c.endpoints.queue) == {"default/web"}
    pod["metadata"]["labels"] = {"app": "db"}  # leaves one service for another
    c.put(pods, pod)
    assert await woken(c.endpoints.queue) == {"default/web", "default/db"}

    elsewhere = owned_pod()
    elsewhere["metadata"] |= {"namespace": "other", "uid": "p3"}
    c.put(pods, elsewhere)
    set_ready(elsewhere, "True")
    c.put(pods, elsewhere)
    assert await woken(c.endpoints.queue) == set()
