"""What a pod's state means to the controllers: active, ready, available."""

from __future__ import annotations

from agent.protocol.primitives import rfc3339_seconds
from control.controllers.objectmeta import Obj, is_deleting
from control.objects.conditions import ready_condition

TERMINAL_PHASES = ("Succeeded", "Failed")


def is_pod_active(pod: Obj) -> bool:
    """Counts toward replicas: not terminating, not Succeeded or Failed."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in TERMINAL_PHASES and not is_deleting(pod)


def is_pod_ready(pod: Obj) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def available_in(pod: Obj, min_ready_seconds: int, now: float) -> float | None:
    """Seconds until a ready pod counts as available (0: it is), or None if it is not ready."""
    c = ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = rfc3339_seconds(c.get("lastTransitionTime"))
    if since is None:
        return 0.0
    return max(0.0, since + min_ready_seconds - now)


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    return available_in(pod, min_ready_seconds, now) == 0.0
