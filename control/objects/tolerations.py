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


DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"

# What the DaemonSet controller adds to its pods, none with tolerationSeconds:
# a daemon pod stays on its node whatever the node's state.
DAEMON_TOLERATIONS: tuple[tuple[str, str], ...] = (
    (NOT_READY, NO_EXECUTE),
    (UNREACHABLE, NO_EXECUTE),
    (DISK_PRESSURE, NO_SCHEDULE),
    (MEMORY_PRESSURE, NO_SCHEDULE),
    (PID_PRESSURE, NO_SCHEDULE),
    (UNSCHEDULABLE, NO_SCHEDULE),
)


def add_daemon_tolerations(spec: dict[str, Any]) -> None:
    """Kubernetes' AddOrUpdateDaemonPodTolerations: each toleration replaces
    one with the same key and effect; host-network pods also tolerate an
    unavailable network."""
    wanted = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        wanted.append((NETWORK_UNAVAILABLE, NO_SCHEDULE))
    tolerations = list(spec.get("tolerations") or [])
    for key, effect in wanted:
        tolerations = [
            t for t in tolerations if not (t.get("key") == key and t.get("effect") == effect)
        ]
        tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    spec["tolerations"] = tolerations
