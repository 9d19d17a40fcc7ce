"""The taints Kubernetes itself puts on nodes, and the tolerations every pod
gets for two of them at create (Kubernetes' DefaultTolerationSeconds admission)."""

from __future__ import annotations

from typing import Any

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
# On a cordoned node (spec.unschedulable), NoSchedule.
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"
DEFAULT_TOLERATION_SECONDS = 300


def add_default_tolerations(pod: dict[str, Any], seconds: int) -> None:
    """Let `pod` stay `seconds` on a node that goes not-ready or unreachable,
    unless it already tolerates that taint's NoExecute (a toleration with
    that key or none, and that effect or none)."""
    spec = pod.setdefault("spec", {})
    tolerations = list(spec.get("tolerations") or [])
    for key in (NOT_READY, UNREACHABLE):
        if not any(
            t.get("key") in (key, None, "") and t.get("effect") in (NO_EXECUTE, None, "")
            for t in tolerations
        ):
            tolerations.append(
                {
                    "key": key,
                    "operator": "Exists",
                    "effect": NO_EXECUTE,
                    "tolerationSeconds": seconds,
                }
            )
    spec["tolerations"] = tolerations
