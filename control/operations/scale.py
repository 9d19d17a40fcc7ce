"""Scaling a Deployment or ReplicaSet through its scale subresource."""

from __future__ import annotations

from typing import Any

from control.client import Client
from control.objects.kinds import ResourceType
from control.operations import OperationError
from control.operations.conflicts import retry_on_conflict


def _check(rt: ResourceType, replicas: int | None = None) -> None:
    if not rt.scale:
        raise OperationError(f"{rt.plural} cannot be scaled")
    if replicas is not None and replicas < 0:
        raise OperationError("replicas must be >= 0")


async def scale_to(
    client: Client, rt: ResourceType, name: str, namespace: str | None, replicas: int
) -> int:
    """Set the replica count, whatever it was (`kubectl scale --replicas=N`)."""
    _check(rt, replicas)
    await client.scale(rt, name, replicas, namespace)
    return replicas


async def scale_by(
    client: Client, rt: ResourceType, name: str, namespace: str | None, delta: int
) -> int:
    """Add `delta` replicas (not going below zero) to the count there is now, and
    return the new count. The write is conditional on the resourceVersion the
    count was read at, and is retried on a conflict: two quick +1s make +2."""
    _check(rt)
    path = Client.path(rt, namespace, name, "scale")

    async def attempt() -> int:
        scale: dict[str, Any] = await client.request("GET", path)
        spec = scale.setdefault("spec", {})
        current = spec.get("replicas")
        replicas = max(0, (1 if current is None else int(current)) + delta)
        spec["replicas"] = replicas
        await client.request("PUT", path, body=scale)
        return replicas

    return await retry_on_conflict(attempt)
