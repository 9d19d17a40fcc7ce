"""Informer indexes that several components add to the shared pod informer."""

from __future__ import annotations

from typing import Any

NODE_NAME_INDEX = "spec.nodeName"


def pod_node_name(pod: dict[str, Any]) -> list[str]:
    """Index function: the node a pod is bound to."""
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []
