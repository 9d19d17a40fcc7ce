"""A stand-in for node agents in controller tests, until hollow nodes replace it.

It registers Ready nodes (so the scheduler binds pods to them), then watches
pods and reports those bound to its nodes Running, with a Ready condition and
ready containers, through the status subresource, as a kubelet would. Pods
for which `hold(pod)` is true are reported Running but not ready, until
`release()`. A pod being deleted gracefully is deleted for good (grace 0), as
a kubelet does once its containers stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Coroutine
from typing import Any

from control.api.registry import Registry, now_rfc3339
from control.controllers.informer import Informer, object_key
from control.errors import ApiError
from control.objects.kinds import NODE, POD

Obj = dict[str, Any]
Hold = Callable[[Obj], bool]


def _ready(pod: Obj) -> bool | None:
    """The Ready condition as a bool, or None when the pod has none."""
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return None


def running_status(pod: Obj, ready: bool, ip: str, host_ip: str) -> Obj:
    now = now_rfc3339()
    flag = "True" if ready else "False"
    old = pod.get("status") or {}
    conditions = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
        {"type": "Ready", "status": flag, "lastTransitionTime": now},
    ]
    return {
        **old,
        "phase": "Running",
        "conditions": conditions,
        "hostIP": host_ip,
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": old.get("startTime") or now,
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c.get("image"),
                "ready": ready,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
            for c in (pod.get("spec") or {}).get("containers") or ()
        ],
    }


def node_manifest(name: str, index: int = 0) -> Obj:
    """A Ready node with room for plenty of pods."""
    now = now_rfc3339()
    resources = {"cpu": "64", "memory": "256Gi", "pods": "500"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"podCIDR": f"10.244.{index}.0/24"},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "addresses": [{"type": "InternalIP", "address": f"192.168.100.{index + 1}"}],
        },
    }


class FakeKubelet:
    def __init__(
        self,
        registry: Registry,
        nodes: tuple[str, ...] = ("node-1", "node-2", "node-3"),
        *,
        delay: float = 0.0,
        hold: Hold | None = None,
    ) -> None:
        self.registry = registry
        self.nodes = nodes
        self.delay = delay
        self._hold = hold
        self._informer = Informer(registry, POD)
        self._informer.add_handler(self._on_pod)
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[str] = set()
        self._reported: dict[str, bool] = {}  # pod key -> the readiness last reported
        self._stopping: set[str] = set()
        self._run: asyncio.Task[None] | None = None
        self._ips = itertools.count(2)

    async def __aenter__(self) -> FakeKubelet:
        for i, name in enumerate(self.nodes):
            await self._register(name, i)
        self._run = asyncio.create_task(self._informer.run())
        await self._informer.synced.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = [t for t in (self._run, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ApiError):
                await t

    def release(self) -> None:
        """Stop holding pods back: every held pod becomes ready."""
        self._hold = None
        for pod in self._informer.list():
            self._consider(pod)

    async def _register(self, name: str, index: int) -> None:
        try:
            await self.registry.create(NODE, None, node_manifest(name, index))
        except ApiError as e:
            if e.reason != "AlreadyExists":
                raise

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self._consider(new)
        elif old is not None:
            self._reported.pop(object_key(old), None)

    def _consider(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        meta = pod.get("metadata") or {}
        if node not in self.nodes:
            return
        key = object_key(pod)
        if meta.get("deletionTimestamp"):
            if key not in self._stopping:
                self._stopping.add(key)
                self._spawn(self._stop(pod))
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        want = not (self._hold is not None and self._hold(pod))
        if _ready(pod) is want and (pod.get("status") or {}).get("phase") == "Running":
            self._reported[key] = want
            return
        if key in self._busy or self._reported.get(key) is want:
            return
        self._busy.add(key)
        self._spawn(self._report(pod, want))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop(self, pod: Obj) -> None:
        """A graceful deletion: the containers stop, then the pod goes for good."""
        meta = pod["metadata"]
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            with contextlib.suppress(ApiError):
                await self.registry.delete(
                    POD,
                    meta["namespace"],
                    meta["name"],
                    grace_period_seconds=0,
                    expected_uid=meta.get("uid"),
                )
        finally:
            self._stopping.discard(object_key(pod))

    async def _report(self, pod: Obj, ready: bool) -> None:
        meta = pod["metadata"]
        key = object_key(pod)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            n = next(self._ips)
            node = pod["spec"]["nodeName"]
            host_ip = f"192.168.100.{self.nodes.index(node) + 1}"
            ip = f"10.244.{n // 250}.{n % 250 + 2}"

            def set_status(current: Obj) -> Obj:
                current["status"] = running_status(current, ready, ip, host_ip)
                return current

            try:
                await self.registry.patch(
                    POD, meta["namespace"], meta["name"], set_status, subresource="status"
                )
            except ApiError:
                return  # deleted meanwhile
            self._reported[key] = ready
        finally:
            self._busy.discard(key)
            current = self._informer.get(key)
            if current is not None:
                self._consider(current)  # the hold may have changed meanwhile
