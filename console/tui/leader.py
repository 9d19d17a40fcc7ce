"""Which control plane leads, for the console's header: the holder of the
leader election's Lease and the endpoint it advertises. Nothing when there is
no such Lease (one control plane, without leader election)."""

from __future__ import annotations

from typing import Any

from control.client import Client, ClusterUnreachable
from control.errors import ApiError
from control.objects.coordination import lease_holder
from control.objects.kinds import LEASE
from control.wire import LEADER_ENDPOINT_ANNOTATION, LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE


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


async def fetch_leader_text(client: Client) -> str:
    """The header's leader part, read now; "" without leader election."""
    try:
        lease = await client.get(LEASE, LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE)
    except ApiError as e:
        return "" if e.code == 404 else f"leader unknown: {e.message}"
    except ClusterUnreachable:
        return ""  # the header shows the server unreachable already
    return leader_text(lease, client.server)
