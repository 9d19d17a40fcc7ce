"""Objects for console tests, made through the API as a hollow cluster would make them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from control.client import Client
from control.objects import kinds

Obj = dict[str, Any]


async def make_node(client: Client, name: str, *, ready: bool = True, cpu: str = "4") -> Obj:
    await client.create(
        kinds.NODE,
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"node-role.kubernetes.io/worker": ""}},
        },
    )
    status = {
        "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
    }
    return await client.patch(kinds.NODE, name, {"status": status}, sub="status")


def pod_manifest(name: str, *, ns: str = "default", labels: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "pilothouse/busybox:latest",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ]
        },
    }


async def make_pod(
    client: Client,
    name: str,
    *,
    ns: str = "default",
    node: str | None = None,
    phase: str = "Running",
    waiting: str | None = None,
    labels: dict[str, str] | None = None,
    restarts: int = 0,
) -> Obj:
    manifest = pod_manifest(name, ns=ns, labels=labels)
    if node:
        manifest["spec"]["nodeName"] = node
    await client.create(kinds.POD, manifest)
    state: Obj = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    status = {
        "phase": phase,
        "podIP": "10.244.0.5",
        "containerStatuses": [
            {
                "name": "web",
                "ready": waiting is None and phase == "Running",
                "restartCount": restarts,
                "state": state,
                "image": "pilothouse/busybox:latest",
            }
        ],
    }
    return await client.patch(kinds.POD, name, {"status": status}, ns, sub="status")


async def make_deployment(client: Client, name: str, replicas: int = 2) -> Obj:
    return await client.create(
        kinds.DEPLOYMENT,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "web", "image": "pilothouse/busybox:latest"}]},
                },
            },
        },
    )


async def until(check: Callable[[], Any], within: float = 5.0, step: float = 0.05) -> Any:
    """Wait until `check()` is truthy; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {check}")
        await asyncio.sleep(step)
