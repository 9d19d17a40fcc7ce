"""Pods and nodes for the scheduler tests."""

from __future__ import annotations

from typing import Any

from console.bench.nodes import ready_node
from control.scheduler.cache import NodeInfo
from control.scheduler.podinfo import PodInfo, pod_info

Obj = dict[str, Any]


def node_obj(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
    extra: dict[str, str] | None = None,
) -> Obj:
    resources = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return ready_node(name, resources, {"kubernetes.io/hostname": name, **(labels or {})}, spec)


def pod_obj(
    name: str,
    *,
    cpu: str | None = None,
    memory: str | None = None,
    limits: dict[str, str] | None = None,
    host_port: int | None = None,
    node_selector: dict[str, str] | None = None,
    affinity: Obj | None = None,
    tolerations: list[Obj] | None = None,
    owner_uid: str | None = None,
    priority: int | None = None,
    scheduler_name: str | None = None,
    namespace: str = "default",
) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    resources: Obj = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    container: Obj = {"name": "c", "image": "busybox", "resources": resources}
    if host_port is not None:
        container["ports"] = [{"containerPort": 80, "hostPort": host_port}]
    spec: Obj = {"containers": [container]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if affinity:
        spec["affinity"] = affinity
    if tolerations:
        spec["tolerations"] = tolerations
    if priority is not None:
        spec["priority"] = priority
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    meta: Obj = {"name": name, "namespace": namespace}
    if owner_uid:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "rs",
                "uid": owner_uid,
                "controller": True,
            }
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def pod(name: str = "p", **kw: Any) -> PodInfo:
    return pod_info(pod_obj(name, **kw))


def node(name: str = "n", **kw: Any) -> NodeInfo:
    info = NodeInfo(name)
    info.set_node(node_obj(name, **kw))
    return info
