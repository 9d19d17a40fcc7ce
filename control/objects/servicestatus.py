"""What operators see of a Service beyond its spec: the endpoints its
EndpointSlices list, and whether the nodes' service rules are current.

The control plane keeps, on each Node, the annotation `pilothouse.io/service-rules`
= "<acked>/<latest>": the service table generation the node's agent confirmed
and the latest one. A node is in sync when the two are equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from control.objects import Obj
from control.objects.discovery import LABEL_SERVICE_NAME

SERVICE_RULES_ANNOTATION = "pilothouse.io/service-rules"


def rules_value(acked: int, latest: int) -> str:
    return f"{acked}/{latest}"


def parse_rules(value: Any) -> tuple[int, int] | None:
    """(acked, latest) from the annotation's value; None when absent or malformed."""
    if not isinstance(value, str):
        return None
    acked, sep, latest = value.partition("/")
    if not sep or not acked.isdigit() or not latest.isdigit():
        return None
    return int(acked), int(latest)


def node_rules(node: Obj) -> tuple[int, int] | None:
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return parse_rules(annotations.get(SERVICE_RULES_ANNOTATION))


def node_in_sync(node: Obj) -> bool:
    rules = node_rules(node)
    return rules is not None and rules[0] == rules[1]


def rules_summary(nodes: Iterable[Obj]) -> tuple[int, int]:
    """(nodes in sync, nodes)."""
    synced = total = 0
    for node in nodes:
        total += 1
        synced += node_in_sync(node)
    return synced, total


def slice_service(eps: Obj) -> str | None:
    """`namespace/service` of the Service a slice belongs to, whoever keeps it."""
    meta = eps.get("metadata") or {}
    service = (meta.get("labels") or {}).get(LABEL_SERVICE_NAME)
    return f"{meta.get('namespace')}/{service}" if service else None


def _ready(endpoint: Obj) -> bool:
    return (endpoint.get("conditions") or {}).get("ready") is not False


def slice_counts(eps: Obj) -> tuple[int, int]:
    """(ready, total) endpoints of one slice (unset `ready` means ready)."""
    endpoints = eps.get("endpoints") or []
    return sum(1 for e in endpoints if _ready(e)), len(endpoints)


@dataclass(frozen=True)
class EndpointRow:
    address: str
    ready: bool
    ports: str  # "http:8080/TCP,9090/TCP"
    node: str


def endpoint_rows(slices: Iterable[Obj]) -> list[EndpointRow]:
    """Every endpoint of a Service's slices, by address."""
    rows = []
    for eps in slices:
        ports = ",".join(
            f"{p['name'] + ':' if p.get('name') else ''}{p.get('port', '*')}/{p.get('protocol') or 'TCP'}"
            for p in eps.get("ports") or []
        )
        for e in eps.get("endpoints") or []:
            rows.append(
                EndpointRow(
                    ",".join(str(a) for a in e.get("addresses") or []),
                    _ready(e),
                    ports or "<none>",
                    str(e.get("nodeName") or "<none>"),
                )
            )
    rows.sort(key=lambda r: r.address)
    return rows


def ready_addresses(slices: Iterable[Obj]) -> list[str]:
    """The addresses of a Service's ready endpoints, sorted."""
    return [r.address for r in endpoint_rows(slices) if r.ready]


def service_details(slices: Iterable[Obj], nodes: Iterable[Obj]) -> list[str]:
    """`describe svc`'s lines for the endpoints and the nodes' rules."""
    rows = endpoint_rows(slices)
    out: list[str] = []
    if not rows:
        out.append("Endpoints:    <none>")
    else:
        ready = sum(r.ready for r in rows)
        out.append(f"Endpoints:    {ready} ready, {len(rows) - ready} not ready")
        table = [("ADDRESS", "READY", "PORTS", "NODE")] + [
            (r.address, "ready" if r.ready else "not ready", r.ports, r.node) for r in rows
        ]
        out += _aligned(table)
    nodes = sorted(nodes, key=lambda n: str((n.get("metadata") or {}).get("name")))
    synced, total = rules_summary(nodes)
    out.append(f"Rules:        {synced}/{total} nodes in sync")
    behind = []
    for node in nodes:
        rules = node_rules(node)
        if rules is None or rules[0] != rules[1]:
            state = "no rules reported" if rules is None else f"at {rules[0]} of {rules[1]}"
            behind.append((str((node.get("metadata") or {}).get("name")), state))
    if behind:
        out += _aligned([("NODE", "RULES"), *behind])
    return out


def _aligned(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
