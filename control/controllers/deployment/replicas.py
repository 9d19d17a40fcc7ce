"""A Deployment's replica arithmetic, as Kubernetes' deployment util computes it.

The maxSurge and maxUnavailable fenceposts, how far a new ReplicaSet may grow,
and proportional scaling: a Deployment resized mid-rollout spreads the change
over its active ReplicaSets by their size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from agent.protocol.primitives import rfc3339_seconds
from control.controllers.objectmeta import Obj, meta
from control.objects.revisions import MAX_REPLICAS


def replicas(obj: Obj) -> int:
    """`spec.replicas` (1 when unset, as the API defaults it)."""
    return int((obj.get("spec") or {}).get("replicas", 1))


def status_int(obj: Obj, name: str) -> int:
    return int((obj.get("status") or {}).get(name) or 0)


def by_creation(obj: Obj) -> tuple[float, str]:
    """Sort key: oldest first, then by name."""
    return (rfc3339_seconds(meta(obj).get("creationTimestamp")) or 0.0, str(meta(obj).get("name")))


def active(rss: Iterable[Obj]) -> list[Obj]:
    """The ReplicaSets with replicas wanted."""
    return [rs for rs in rss if replicas(rs) > 0]


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """An int-or-percent of `total`, rounded as Kubernetes rounds it."""
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(
    max_surge: int | str, max_unavailable: int | str, desired: int
) -> tuple[int, int]:
    """(surge, unavailable): surge rounds up, unavailable down; never both zero."""
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # validation forbids both zero, but rounding down can get there
    return surge, unavailable


def _strategy(d: Obj) -> Obj:
    return (d.get("spec") or {}).get("strategy") or {}


def is_rolling(d: Obj) -> bool:
    return _strategy(d).get("type", "RollingUpdate") == "RollingUpdate"


def _fenceposts(d: Obj) -> tuple[int, int]:
    ru = _strategy(d).get("rollingUpdate") or {}
    return resolve_fenceposts(
        ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), replicas(d)
    )


def max_surge(d: Obj) -> int:
    """How many pods above `spec.replicas` a rollout may run (0 for Recreate)."""
    return _fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    """How many of `spec.replicas` may be unavailable (0 for Recreate or no replicas)."""
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(_fenceposts(d)[1], replicas(d))


def new_rs_replicas(d: Obj, new_replicas: int, current_pods: int) -> int:
    """How far the new ReplicaSet (now at `new_replicas`) may grow while the
    Deployment runs `current_pods` pods in all (NewRSNewReplicas)."""
    want = replicas(d)
    if not is_rolling(d):
        return want
    max_total = want + max_surge(d)
    if current_pods >= max_total:
        return new_replicas
    return new_replicas + min(max_total - current_pods, want - new_replicas)


def proportion(d: Obj, rs: Obj, to_add: int, added: int) -> int:
    """A ReplicaSet's share of `to_add` replicas when `added` are already given
    out (GetProportion): its size scaled by the Deployment's new maximum over the
    maximum it was sized for (the max-replicas annotation)."""
    size = replicas(rs)
    if size == 0 or to_add == added:
        return 0
    want = replicas(d)
    if want == 0:
        fraction = -size
    else:
        try:
            annotated = int((meta(rs).get("annotations") or {}).get(MAX_REPLICAS, ""))
        except ValueError:
            annotated = status_int(d, "replicas")
        if annotated <= 0:
            fraction = 0
        else:
            # Go's math.Round: halves away from zero (sizes are never negative).
            fraction = math.floor(size * (want + max_surge(d)) / annotated + 0.5) - size
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Obj, active_rss: list[Obj]) -> list[tuple[Obj, int]]:
    """The new size of each active ReplicaSet when the Deployment is resized
    mid-rollout, in the order to scale them. Larger ReplicaSets come first (the
    newer on a tie when growing, the older when shrinking); the first takes what
    rounding left over."""
    want = replicas(d)
    allowed = want + max_surge(d) if want > 0 else 0
    to_add = allowed - sum(replicas(rs) for rs in active_rss)
    order = list(active_rss)
    if to_add > 0:
        order.sort(key=lambda rs: (-replicas(rs), -by_creation(rs)[0]))
    elif to_add < 0:
        order.sort(key=lambda rs: (-replicas(rs), by_creation(rs)[0]))
    sizes: list[int] = []
    added = 0
    for rs in order:
        share = proportion(d, rs, to_add, added) if to_add else 0
        sizes.append(replicas(rs) + share)
        added += share
    if to_add and order:
        sizes[0] = max(0, sizes[0] + to_add - added)
    return list(zip(order, sizes, strict=True))
