"""Deleting an object by name."""

from __future__ import annotations

from control.client import Client
from control.objects.kinds import ResourceType


async def delete(client: Client, rt: ResourceType, name: str, namespace: str | None) -> str:
    """Delete it (gracefully, for a pod on a node); kubectl's line saying so."""
    await client.delete(rt, name, namespace)
    return f'{rt.singular_resource} "{name}" deleted'
