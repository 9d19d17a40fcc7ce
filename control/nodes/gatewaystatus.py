"""The status this controller gives its GatewayClasses and their Gateways, as
the Gateway API defines it (pure; `ingress.py` writes it).

A GatewayClass whose `controllerName` is this controller's is `Accepted`. A
Gateway of such a class is `Accepted`, lists the ingress nodes' IPs in
`status.addresses`, and is `Programmed` once at least one ingress node serves
it (`AddressNotAssigned` while there is none). A condition keeps its
`lastTransitionTime` while its status stays the same.
"""

from __future__ import annotations

from typing import Any

from agent.protocol.primitives import now_rfc3339
from control.nodes.ingressroutes import condition
from control.objects import Obj
from control.objects.conditions import transition_time


def _generation(obj: Obj) -> Any:
    return (obj.get("metadata") or {}).get("generation")


def merged_conditions(current: list[Obj], wanted: list[Obj]) -> list[Obj]:
    """`wanted` (without times), each with the `lastTransitionTime` of the same
    condition in `current` when its status is unchanged, else now."""
    before = {c.get("type"): c for c in current if isinstance(c, dict)}
    now = now_rfc3339()
    return [
        {**c, "lastTransitionTime": transition_time(before.get(c["type"]), c["status"], now)}
        for c in wanted
    ]


def _without_times(conditions: list[Obj]) -> list[Obj]:
    return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conditions]


def gateway_class_status(gateway_class: Obj) -> Obj | None:
    """The status to write on one of this controller's GatewayClasses, or None
    when the stored one already says it."""
    current = gateway_class.get("status") or {}
    wanted = [condition("Accepted", None, "Accepted", _generation(gateway_class))]
    old = current.get("conditions") or []
    if _without_times(old) == wanted:
        return None
    return {**current, "conditions": merged_conditions(old, wanted)}


def gateway_status(gateway: Obj, addresses: list[str]) -> Obj | None:
    """The status to write on a Gateway of one of this controller's classes,
    served by the ingress nodes at `addresses`; None when it is current."""
    current = gateway.get("status") or {}
    generation = _generation(gateway)
    unserved = None if addresses else ("AddressNotAssigned", "no ingress node serves it")
    wanted = [
        condition("Accepted", None, "Accepted", generation),
        condition("Programmed", unserved, "Programmed", generation),
    ]
    wanted_addresses = [{"type": "IPAddress", "value": ip} for ip in addresses]
    old = current.get("conditions") or []
    if _without_times(old) == wanted and current.get("addresses") == wanted_addresses:
        return None
    return {
        **current,
        "addresses": wanted_addresses,
        "conditions": merged_conditions(old, wanted),
    }
