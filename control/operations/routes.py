"""Ingress and HTTPRoute routes from the operator's side: what `describe`
shows of them (each route's match, its backends with their ready endpoints,
its live traffic) and shifting an HTTPRoute rule's traffic between its first
backend (the stable one) and its last (the canary).

A shift moves STEP percentage points of the rule's total weight. The rule's
weights are rewritten as percentages (0..100, summing to 100), the write
carries the resourceVersion it read and is retried on a conflict, so two
quick shifts both count: 90/10, `+`, `+` is 70/30.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from control.client import Client, ClusterUnreachable
from control.errors import ApiError
from control.objects import Obj
from control.objects.discovery import LABEL_SERVICE_NAME
from control.objects.kinds import ENDPOINTSLICE, HTTPROUTE
from control.objects.routes import Route, backend_weights, normalise_weights, routes_of
from control.objects.servicestatus import ready_addresses
from control.operations import OperationError
from control.operations.conflicts import retry_on_conflict
from control.operations.listing import list_all

STEP = 10  # percentage points per shift


# --- describe -------------------------------------------------------------------------


def traffic_text(stats: Obj | None) -> str:
    """One route's merged statistics (a RouteStatsWire) as one line."""
    if not stats:
        return "no traffic seen"
    p99 = stats.get("p99Ms")
    return (
        f"{float(stats.get('requestsPerSecond') or 0):.1f} req/s, "
        f"{int(stats.get('requests') or 0)} requests, {int(stats.get('http5xx') or 0)} 5xx, "
        f"p99 {'-' if p99 is None else f'{float(p99):.0f} ms'}"
    )


def route_lines(
    routes: list[Route],
    endpoints: dict[tuple[str, str], list[str]],
    stats: dict[str, Any] | None,
    stats_error: str = "",
) -> list[str]:
    """`describe`'s lines for routes: endpoints by (namespace, Service), the
    merged statistics by route name (None: unavailable, for `stats_error`)."""
    out = ["Routes:" if routes else "Routes:       <none>"]
    for route in routes:
        out.append(f"  {route.name}")
        match = f"{route.path_type} {route.path}"
        if route.headers:
            match += "  headers " + ",".join(f"{k}={v}" for k, v in route.headers)
        out.append(f"    Host:      {route.host_text}")
        out.append(f"    Match:     {match}")
        out.append("    Backends:" + ("" if route.backends else "  <none>"))
        for b in route.backends:
            ready = endpoints.get((b.namespace, b.service), [])
            eps = f"{len(ready)} ready" + (f": {', '.join(ready)}" if ready else "")
            out.append(f"      {b.label}  endpoints {eps}")
        if stats is None:
            out.append(f"    Traffic:   <unavailable: {stats_error}>")
        else:
            out.append(f"    Traffic:   {traffic_text(stats.get(route.name))}")
    return out


async def route_details_of(client: Client, obj: Obj) -> list[str]:
    """`describe`'s lines for an Ingress' or HTTPRoute's routes, with the ready
    endpoints of their Services and their live traffic."""
    routes = routes_of(obj)
    endpoints: dict[tuple[str, str], list[str]] = {}
    for key in dict.fromkeys((b.namespace, b.service) for r in routes for b in r.backends):
        if key[1]:
            selector = f"{LABEL_SERVICE_NAME}={key[1]}"
            endpoints[key] = ready_addresses(
                await list_all(client, ENDPOINTSLICE, key[0], selector)
            )
    stats: dict[str, Any] | None
    try:
        stats = (await client.ingress_stats()).get("routes") or {}
        error = ""
    except (ApiError, ClusterUnreachable) as e:
        stats, error = None, str(e)
    return route_lines(routes, endpoints, stats, error)


# --- weights --------------------------------------------------------------------------


def shifted(weights: list[int], toward_canary: bool, step: int = STEP) -> list[int]:
    """The weights as percentages, with `step` points moved from the first to
    the last (or back), as far as there is weight to move."""
    percents = normalise_weights(weights, 100)
    if not any(percents):
        raise OperationError(
            "every backendRef of the rule has weight 0: there is no split to shift"
        )
    source, target = (0, -1) if toward_canary else (-1, 0)
    moved = min(step, percents[source])
    percents[source] -= moved
    percents[target] += moved
    return percents


@dataclass(frozen=True)
class Shift:
    name: str
    rule: int
    backends: list[str]  # "svc:port"
    percents: list[int]  # after the shift
    changed: bool  # False: already at the end; nothing was written

    def message(self) -> str:
        split = " / ".join(f"{b} {p}%" for b, p in zip(self.backends, self.percents, strict=True))
        done = "" if self.changed else " (unchanged)"
        return f"httproute/{self.name} rule {self.rule}: {split}{done}"


async def shift_weights(
    client: Client, namespace: str, name: str, rule: int, toward_canary: bool
) -> Shift:
    """Move STEP points of an HTTPRoute rule's weight from its first backendRef
    to its last (`toward_canary`), or back; conditional on the resourceVersion
    read, retried on a conflict."""

    async def attempt() -> Shift:
        obj = await client.get(HTTPROUTE, name, namespace)
        rules = (obj.get("spec") or {}).get("rules") or []
        if not 0 <= rule < len(rules):
            raise OperationError(f'httproute "{name}" has no rule {rule}')
        refs = rules[rule].get("backendRefs") or []
        if len(refs) < 2:
            raise OperationError(
                f'httproute "{name}" rule {rule} has {len(refs)} backendRef(s): it is not weighted'
            )
        weights = backend_weights(refs)
        percents = shifted(weights, toward_canary)
        labels = [f"{r.get('name')}:{r.get('port')}" for r in refs]
        if percents == normalise_weights(weights, 100):
            return Shift(name, rule, labels, percents, changed=False)
        for ref, percent in zip(refs, percents, strict=True):
            ref["weight"] = percent
        await client.replace(HTTPROUTE, obj)
        return Shift(name, rule, labels, percents, changed=True)

    return await retry_on_conflict(attempt)
