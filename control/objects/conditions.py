"""Reading the `status.conditions` of stored objects, and Kubernetes' rule
for a condition's transition time."""

from __future__ import annotations

from control.objects import Obj


def get_condition(status: Obj, type_: str) -> Obj | None:
    """The condition of `type_` in a status, or None."""
    for c in status.get("conditions") or ():
        if c.get("type") == type_:
            return c
    return None


def ready_condition(obj: Obj) -> Obj | None:
    """The Ready condition of a node or a pod, or None."""
    return get_condition(obj.get("status") or {}, "Ready")


def transition_time(current: Obj | None, status: str, now: str) -> str:
    """A condition's `lastTransitionTime` as Kubernetes keeps it: the current
    condition's while its status stays the same, else `now`."""
    if current is not None and current.get("status") == status:
        return str(current.get("lastTransitionTime") or now)
    return now
