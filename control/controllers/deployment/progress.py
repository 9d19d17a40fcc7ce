"""A rollout's progress: the Progressing and ReplicaFailure conditions, and the
progress deadline (Kubernetes' progress.go and its condition helpers)."""

from __future__ import annotations

import time

from agent.protocol.primitives import now_rfc3339, rfc3339_seconds
from control.controllers.deployment.replicas import replicas
from control.controllers.objectmeta import Obj, meta
from control.objects.conditions import get_condition, transition_time

NO_PROGRESS_DEADLINE = 2**31 - 1

# Condition reasons, as Kubernetes names them.
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


# -- conditions --------------------------------------------------------------------


def new_condition(type_: str, status: str, reason: str, message: str) -> Obj:
    now = now_rfc3339()
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(status: Obj, cond: Obj) -> None:
    """Put `cond` in `status`; the same status and reason leaves the current one
    as it is, the same status keeps its lastTransitionTime."""
    current = get_condition(status, cond["type"])
    if current is not None:
        if current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
            return
        cond["lastTransitionTime"] = transition_time(
            current, cond["status"], cond["lastTransitionTime"]
        )
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: Obj, type_: str) -> None:
    kept = [c for c in status.get("conditions") or () if c.get("type") != type_]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


# -- progress ----------------------------------------------------------------------


def has_progress_deadline(d: Obj) -> bool:
    deadline = (d.get("spec") or {}).get("progressDeadlineSeconds", 600)
    return deadline is not None and deadline != NO_PROGRESS_DEADLINE


def deployment_complete(d: Obj, status: Obj) -> bool:
    """All replicas updated and available, and the latest spec observed."""
    want = replicas(d)
    return (
        int(status.get("updatedReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
        and int(status.get("observedGeneration") or 0) >= int(meta(d).get("generation") or 1)
    )


def deployment_progressing(d: Obj, new: Obj) -> bool:
    """Whether the `new` status shows progress over the Deployment's current one."""
    old = d.get("status") or {}

    def n(s: Obj, k: str) -> int:
        return int(s.get(k) or 0)

    old_old = n(old, "replicas") - n(old, "updatedReplicas")
    new_old = n(new, "replicas") - n(new, "updatedReplicas")
    return (
        n(new, "updatedReplicas") > n(old, "updatedReplicas")
        or new_old < old_old
        or n(new, "readyReplicas") > n(old, "readyReplicas")
        or n(new, "availableReplicas") > n(old, "availableReplicas")
    )


def deadline_left(d: Obj, status: Obj, now: float) -> float | None:
    """Seconds until the progress deadline of a rollout in progress, else None."""
    if not has_progress_deadline(d):
        return None
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT, PAUSED):
        return None
    since = rfc3339_seconds(cond.get("lastUpdateTime"))
    if since is None:
        return None
    return since + int((d.get("spec") or {}).get("progressDeadlineSeconds", 600)) - now


def deployment_timed_out(d: Obj, status: Obj) -> bool:
    cond = get_condition(status, "Progressing")
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return True
    left = deadline_left(d, status, time.time())
    return left is not None and left < 0


def update_rollout_conditions(d: Obj, status: Obj, new: Obj | None, olds: list[Obj]) -> None:
    """Set the Progressing and ReplicaFailure conditions of a rollout's new
    `status` (syncRolloutStatus)."""
    if not has_progress_deadline(d):
        remove_condition(status, "Progressing")
    cond = get_condition(status, "Progressing")
    name = meta(new).get("name") if new is not None else None
    subject = f'ReplicaSet "{name}"' if name else "Deployment"
    complete = (
        status.get("replicas") == status.get("updatedReplicas")
        and cond is not None
        and cond.get("reason") == NEW_RS_AVAILABLE
    )
    if has_progress_deadline(d) and not complete:
        if deployment_complete(d, status):
            msg = f"{subject} has successfully progressed."
            set_condition(status, new_condition("Progressing", "True", NEW_RS_AVAILABLE, msg))
        elif deployment_progressing(d, status):
            msg = f"{subject} is progressing."
            progressing = new_condition("Progressing", "True", RS_UPDATED, msg)
            if cond is not None and cond.get("status") == "True":
                progressing["lastTransitionTime"] = cond.get("lastTransitionTime")
            remove_condition(status, "Progressing")
            set_condition(status, progressing)
        elif deployment_timed_out(d, status):
            msg = f"{subject} has timed out progressing."
            set_condition(status, new_condition("Progressing", "False", TIMED_OUT, msg))
    failure = next(
        (
            c
            for rs in ([new] if new is not None else []) + olds
            for c in (rs.get("status") or {}).get("conditions") or ()
            if c.get("type") == "ReplicaFailure"
        ),
        None,
    )
    if failure is not None:
        set_condition(
            status,
            new_condition(
                "ReplicaFailure",
                str(failure.get("status")),
                str(failure.get("reason")),
                str(failure.get("message")),
            ),
        )
    else:
        remove_condition(status, "ReplicaFailure")


def recheck_after(d: Obj, status: Obj) -> float | None:
    """When to look at an unfinished rollout again: a rollout that stops making
    progress has no event to say so, so just past its progress deadline."""
    if deployment_complete(d, status):
        return None
    left = deadline_left(d, status, time.time())
    return None if left is None else max(left, 0.0) + 1.0
