"""Manifests the tests create: workloads whose pods are labelled app=<name>."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def workload(
    kind: str,
    name: str,
    replicas: int,
    image: str,
    *,
    container: str = "main",
    namespace: str = "default",
    **spec: Any,
) -> Obj:
    """A Deployment or ReplicaSet of `replicas` one-container pods labelled app=`name`;
    `spec` adds to (or replaces) its spec's fields."""
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": container, "image": image}]},
            },
            **spec,
        },
    }
