"""Cordoning and draining nodes, as `kubectl cordon` and `kubectl drain` do."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from control.client import Client
from control.errors import ApiError
from control.objects import Obj
from control.objects.kinds import NODE, POD
from control.operations import OperationError

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# How long kubectl waits before it asks again when an eviction is refused (429).
RETRY_EVICTION_AFTER = 5.0


async def set_unschedulable(client: Client, node: str, cordoned: bool) -> bool:
    """Cordon or uncordon a node; False when it already was."""
    obj = await client.get(NODE, node)
    if bool((obj.get("spec") or {}).get("unschedulable")) == cordoned:
        return False
    await client.patch(NODE, node, {"spec": {"unschedulable": True if cordoned else None}})
    return True


class DrainListener:
    """What a drain reports as it goes. Each method does nothing here: a front
    end overrides those it shows. Pods are named `namespace/name`."""

    def cordoned(self, node: str, changed: bool) -> None:
        """The node is cordoned (`changed` is False when it already was)."""

    def ignoring(self, daemon_pods: list[str]) -> None:
        """These DaemonSet-managed pods stay (`ignore_daemonsets`)."""

    def planned(self, pods: list[str]) -> None:
        """These pods are to be evicted."""

    def evicting(self, pod: str) -> None:
        """The eviction of this pod is about to be asked for."""

    def refused(self, pod: str, message: str) -> None:
        """The eviction was refused (a disruption budget); it is asked again shortly."""

    def evicted(self, pod: str, done: int, total: int) -> None:
        """This pod is gone: `done` of `total` are."""


def pod_name(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _daemon_pod(pod: Obj) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("kind") == "DaemonSet" for r in refs)


def _mirror_pod(pod: Obj) -> bool:
    return MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


async def drain(
    client: Client,
    node: str,
    *,
    ignore_daemonsets: bool = False,
    grace_period: int = -1,
    time_limit: float = 0.0,
    listener: DrainListener | None = None,
) -> int:
    """Cordon the node, evict its pods (not mirror or DaemonSet pods), and wait
    until they are gone, as `kubectl drain`. Returns how many were evicted.

    `grace_period` -1 leaves each pod its own; `time_limit` 0 waits as long as it
    takes. OperationError when DaemonSet pods are in the way or time runs out."""
    tell = listener or DrainListener()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + time_limit if time_limit > 0 else None
    tell.cordoned(node, await set_unschedulable(client, node, True))
    listed = await client.list(POD, None, field_selector=f"spec.nodeName={node}")
    revision = str((listed.get("metadata") or {}).get("resourceVersion") or "")
    pods = [p for p in listed.get("items") or [] if not _mirror_pod(p)]
    daemon = [p for p in pods if _daemon_pod(p)]
    if daemon and not ignore_daemonsets:
        raise OperationError(
            f'unable to drain node "{node}": cannot delete DaemonSet-managed Pods '
            f"(use --ignore-daemonsets to ignore): {', '.join(pod_name(p) for p in daemon)}"
        )
    if daemon:
        tell.ignoring([pod_name(p) for p in daemon])
    targets = [p for p in pods if p not in daemon]
    tell.planned([pod_name(p) for p in targets])
    pending: dict[str, str] = {}  # namespace/name -> uid
    gone = 0

    def evicted(key: str) -> None:
        nonlocal gone
        gone += 1
        tell.evicted(key, gone, len(targets))

    for pod in targets:
        tell.evicting(pod_name(pod))
        if await _evict(client, pod, grace_period, deadline, tell):
            pending[pod_name(pod)] = str(pod["metadata"].get("uid"))
        else:
            evicted(pod_name(pod))
    try:
        async with asyncio.timeout_at(deadline):
            await _wait_deleted(client, node, pending, revision, evicted)
    except TimeoutError:
        raise OperationError(
            f'unable to drain node "{node}": timed out after {time_limit:g}s '
            f"waiting for pods to be deleted: {', '.join(sorted(pending))}"
        ) from None
    return len(targets)


async def _evict(
    client: Client, pod: Obj, grace: int, deadline: float | None, tell: DrainListener
) -> bool:
    """POST the Eviction; False when the pod is already gone. A refusal (429)
    is retried, as kubectl does, until the deadline."""
    meta = pod["metadata"]
    body: Obj = {
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
            late = deadline is not None and loop.time() + RETRY_EVICTION_AFTER > deadline
            if e.code != 429 or late:
                raise
            tell.refused(pod_name(pod), e.message)
            await asyncio.sleep(RETRY_EVICTION_AFTER)


async def _wait_deleted(
    client: Client,
    node: str,
    pending: dict[str, str],
    revision: str,
    evicted: Callable[[str], None],
) -> None:
    """Watch the node's pods until every pending one is deleted (or replaced)."""

    def gone(key: str, uid: str | None) -> None:
        if key in pending and uid != pending[key]:
            del pending[key]
            evicted(key)

    while pending:
        try:
            async for kind, obj in client.watch(
                POD, None, resource_version=revision, field_selector=f"spec.nodeName={node}"
            ):
                meta = obj.get("metadata") or {}
                revision = str(meta.get("resourceVersion") or revision)
                gone(pod_name(obj), None if kind == "DELETED" else meta.get("uid"))
                if not pending:
                    return
        except ApiError as e:
            if e.code != 410:
                raise
        # The watch ended or fell behind: look at what is left, then watch again.
        listed = await client.list(POD, None, field_selector=f"spec.nodeName={node}")
        revision = str((listed.get("metadata") or {}).get("resourceVersion") or "")
        present = {
            pod_name(p): (p.get("metadata") or {}).get("uid") for p in listed.get("items") or []
        }
        for key in list(pending):
            gone(key, present.get(key))
