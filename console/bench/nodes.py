"""Node objects with nothing behind them, reporting Ready: room for a benchmark's
(or a test's) pods without agents."""

from __future__ import annotations

from agent.protocol.primitives import now_rfc3339
from control.objects import Obj


def ready_node(
    name: str,
    resources: dict[str, str],
    labels: dict[str, str],
    spec: Obj | None = None,
    addresses: list[Obj] | None = None,
) -> Obj:
    """A Node with `resources` as its capacity and allocatable, Ready as of now."""
    now = now_rfc3339()
    status: Obj = {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        ],
    }
    if addresses is not None:
        status["addresses"] = addresses
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec or {},
        "status": status,
    }
