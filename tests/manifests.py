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


def weighted_httproute(
    name: str,
    backends: list[tuple[str, int, int]],
    *,
    hostnames: list[str] | None = None,
    namespace: str = "default",
) -> Obj:
    """An HTTPRoute with one rule (every path) split over (Service, port, weight)
    backends, attached to the Gateway "web"."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "web"}],
            "hostnames": hostnames or [f"{name}.test"],
            "rules": [
                {
                    "backendRefs": [
                        {"name": svc, "port": port, "weight": weight}
                        for svc, port, weight in backends
                    ]
                }
            ],
        },
    }
