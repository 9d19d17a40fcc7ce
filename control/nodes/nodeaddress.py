"""A Node's address as the agents reach it: its first InternalIP."""

from __future__ import annotations

from control.objects import Obj


def internal_ip(node: Obj) -> str:
    """The Node's first InternalIP address ("" when it has none)."""
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP":
            return str(addr.get("address") or "")
    return ""
