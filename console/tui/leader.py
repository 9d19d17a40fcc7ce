"""Which control plane leads, for the console's header: the holder of the
leader election's Lease and the endpoint it advertises. Nothing when there is
no such Lease (one control plane, without leader election)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

from control.client import Client, ClusterUnreachable
from control.errors import ApiError
from control.objects.coordination import lease_holder
from control.objects.kinds import LEASE
from control.wire import LEADER_ENDPOINT_ANNOTATION, LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE

# After the watch ends or fails, how long before the Lease is read again.
RETRY_SECONDS: Final = 1.0


def leader_text(lease: dict[str, Any], server: str) -> str:
    """`leader cp-1 at https://...`, marked when it is the server the console uses."""
    holder = lease_holder(lease)
    if not holder:
        return "no leader"
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    endpoint = str(annotations.get(LEADER_ENDPOINT_ANNOTATION) or "")
    text = f"leader {holder}"
    if endpoint:
        text += f" at {endpoint}" + (" (this server)" if endpoint == server.rstrip("/") else "")
    return text


async def follow_leader(client: Client, show: Callable[[str], None]) -> None:
    """Show the header's leader part now and on every change of the Lease,
    until cancelled: a watch on the one Lease, read again after a cut or an
    error. "" without leader election."""
    selector = f"metadata.name={LEADER_LEASE_NAME}"
    while True:
        try:
            listed = await client.list(LEASE, LEADER_LEASE_NAMESPACE, field_selector=selector)
            items = listed.get("items") or []
            show(leader_text(items[0], client.server) if items else "")
            events = client.watch(
                LEASE,
                LEADER_LEASE_NAMESPACE,
                resource_version=str(listed["metadata"]["resourceVersion"]),
                field_selector=selector,
            )
            async for kind, lease in events:
                show("" if kind == "DELETED" else leader_text(lease, client.server))
        except ApiError as e:
            show(f"leader unknown: {e.message}")
        except ClusterUnreachable:
            show("")  # the header shows the server unreachable already
        await asyncio.sleep(RETRY_SECONDS)
