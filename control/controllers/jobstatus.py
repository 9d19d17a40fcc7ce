"""The pure parts of the Job controller: what a pod counts as, completion
indexes and their interval strings, the conditions Kubernetes writes, the
failure back-off and the finish checks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from control.controllers.objectmeta import Obj, is_deleting, meta
from control.objects.batch import COMPLETION_INDEX
from control.objects.conditions import transition_time

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"

# Conditions (batch/v1, 1.31+: the interim SuccessCriteriaMet and
# FailureTarget come first; Complete and Failed once no pod is left running).
COMPLETE, FAILED, SUSPENDED = "Complete", "Failed", "Suspended"

# Pod failures delay the next pod: 10s, doubling, at most 6 minutes (Kubernetes' defaults).
BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_succeeded(pod: Obj) -> bool:
    return phase(pod) == "Succeeded"


def is_failed(pod: Obj, replace_terminating: bool) -> bool:
    """Kubernetes' isPodFailed: Failed, or (with podReplacementPolicy
    TerminatingOrFailed) being deleted without having succeeded."""
    if phase(pod) == "Failed":
        return True
    return replace_terminating and is_deleting(pod) and not is_succeeded(pod)


def is_active(pod: Obj) -> bool:
    return phase(pod) not in ("Succeeded", "Failed") and not is_deleting(pod)


def is_terminating(pod: Obj) -> bool:
    return phase(pod) not in ("Succeeded", "Failed") and is_deleting(pod)


def has_tracking_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (meta(pod).get("finalizers") or ())


def completion_index(pod: Obj) -> int | None:
    value = (meta(pod).get("annotations") or {}).get(COMPLETION_INDEX)
    if value is None or not str(value).isdigit():
        return None
    return int(value)


def restarts(pod: Obj) -> int:
    status = pod.get("status") or {}
    statuses = [
        *(status.get("initContainerStatuses") or ()),
        *(status.get("containerStatuses") or ()),
    ]
    return sum(int(s.get("restartCount") or 0) for s in statuses)


# -- completion indexes --------------------------------------------------------


def parse_indexes(text: str | None) -> set[int]:
    """`1,3-5` -> {1, 3, 4, 5}."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            out.update(range(int(low), int(high or low) + 1))
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    """{1, 3, 4, 5} -> `1,3-5`, as Kubernetes writes completedIndexes."""
    parts: list[str] = []
    ordered = sorted(set(indexes))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


# -- conditions ----------------------------------------------------------------


def condition(status: Obj, kind: str) -> Obj | None:
    for c in status.get("conditions") or ():
        if c.get("type") == kind:
            return dict(c)
    return None


def is_true(status: Obj, kind: str) -> bool:
    c = condition(status, kind)
    return c is not None and c.get("status") == "True"


def finished(status: Obj) -> bool:
    return is_true(status, COMPLETE) or is_true(status, FAILED)


def set_condition(status: Obj, kind: str, value: str, reason: str, message: str, now: str) -> bool:
    """Set a condition as Kubernetes does (the transition time moves only on a
    change of status); whether anything changed."""
    conditions = list(status.get("conditions") or ())
    for i, c in enumerate(conditions):
        if c.get("type") != kind:
            continue
        if c.get("status") == value and c.get("reason") == reason and c.get("message") == message:
            return False
        conditions[i] = {
            **c,
            "status": value,
            "reason": reason,
            "message": message,
            "lastProbeTime": now,
            "lastTransitionTime": transition_time(c, value, now),
        }
        status["conditions"] = conditions
        return True
    conditions.append(
        {
            "type": kind,
            "status": value,
            "reason": reason,
            "message": message,
            "lastProbeTime": now,
            "lastTransitionTime": now,
        }
    )
    status["conditions"] = conditions
    return True


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a Job is done: the interim condition, then the final one."""

    interim: str  # SuccessCriteriaMet or FailureTarget
    final: str  # Complete or Failed
    reason: str
    message: str


SUCCESS = Verdict(
    "SuccessCriteriaMet",
    COMPLETE,
    "CompletionsReached",
    "Reached expected number of succeeded pods",
)
BACKOFF = Verdict(
    "FailureTarget", FAILED, "BackoffLimitExceeded", "Job has reached the specified backoff limit"
)
DEADLINE = Verdict(
    "FailureTarget", FAILED, "DeadlineExceeded", "Job was active longer than specified deadline"
)


def past_backoff_limit(spec: Obj, failed: int, active_pods: list[Obj]) -> bool:
    """Kubernetes' rule: more failed pods than backoffLimit; with restartPolicy
    OnFailure, container restarts in the pods still running count too."""
    limit = int(spec.get("backoffLimit", 6))
    if failed > limit:
        return True
    template_spec = (spec.get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    total = sum(restarts(p) for p in active_pods) + failed
    return total > 0 if limit == 0 else total >= limit


def backoff_delay(failures: int, base: float = BACKOFF_BASE) -> float:
    """Seconds to wait before a new pod after `failures` consecutive failures."""
    if failures <= 0:
        return 0.0
    return min(base * 2 ** (failures - 1), BACKOFF_MAX)
