"""Objects for console tests, made through the API as a hollow cluster would make them."""

from __future__ import annotations

from typing import Any

from control.client import Client
from control.objects import kinds
from tests.manifests import workload

Obj = dict[str, Any]


async def make_node(client: Client, name: str, *, ready: bool = True, cpu: str = "4") -> Obj:
    await client.create(
        kinds.NODE,
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"node-role.kubernetes.io/worker": ""}},
        },
    )
    status = {
        "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
    }
    return await client.patch(kinds.NODE, name, {"status": status}, sub="status")


def pod_manifest(name: str, *, ns: str = "default", labels: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "pilothouse/busybox:latest",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ]
        },
    }


async def make_pod(
    client: Client,
    name: str,
    *,
    ns: str = "default",
    node: str | None = None,
    phase: str = "Running",
    waiting: str | None = None,
    labels: dict[str, str] | None = None,
    restarts: int = 0,
) -> Obj:
    manifest = pod_manifest(name, ns=ns, labels=labels)
    if node:
        manifest["spec"]["nodeName"] = node
    await client.create(kinds.POD, manifest)
    state: Obj = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    status = {
        "phase": phase,
        "podIP": "10.244.0.5",
        "containerStatuses": [
            {
                "name": "web",
                "ready": waiting is None and phase == "Running",
                "restartCount": restarts,
                "state": state,
                "image": "pilothouse/busybox:latest",
            }
        ],
    }
    return await client.patch(kinds.POD, name, {"status": status}, ns, sub="status")


async def make_deployment(client: Client, name: str, replicas: int = 2) -> Obj:
    manifest = workload("Deployment", name, replicas, "pilothouse/busybox:latest", container="web")
    return await client.create(kinds.DEPLOYMENT, manifest)


def service_manifest(
    name: str, *, port: int = 80, target: int = 8080, selector: bool = True, ip: str | None = None
) -> Obj:
    """A ClusterIP Service; with `selector`, one for the pods labelled app=`name`."""
    spec: Obj = {"ports": [{"port": port, "targetPort": target}]}
    if selector:
        spec["selector"] = {"app": name}
    if ip:
        spec["clusterIP"] = ip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def endpoints_manifest(name: str, ips: list[str], port: int = 8080) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": "default"},
        "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": [{"port": port}]}],
    }


def slice_manifest(service: str, endpoints: dict[str, bool], port: int = 8080) -> Obj:
    """An EndpointSlice of a Service: address -> ready."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-abcde",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in endpoints.items()
        ],
        "ports": [{"port": port, "protocol": "TCP"}],
    }


def rules_annotation(acked: int, latest: int) -> Obj:
    """A Node patch: its agent has the service rules of generation `acked` of `latest`."""
    return {"metadata": {"annotations": {"pilothouse.io/service-rules": f"{acked}/{latest}"}}}


Route = tuple[str, str, str, int]  # path, pathType, service, port


def ingress_manifest(name: str, rules: dict[str, list[Route]], tls: list[str] | None = None) -> Obj:
    """An Ingress with one rule per host; `tls` lists the hosts it terminates TLS for."""

    def path(route: Route) -> Obj:
        p, kind, svc, port = route
        backend = {"service": {"name": svc, "port": {"number": port}}}
        return {"path": p, "pathType": kind, "backend": backend}

    spec: Obj = {
        "rules": [
            {"host": host, "http": {"paths": [path(r) for r in routes]}}
            for host, routes in rules.items()
        ]
    }
    if tls:
        spec["tls"] = [{"hosts": tls, "secretName": f"{name}-tls"}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def event_manifest(
    name: str,
    about: str,
    reason: str,
    message: str,
    *,
    type_: str = "Normal",
    last: str | None = None,
    count: int = 1,
) -> Obj:
    """An Event about `about`, written `Kind/name` (in the default namespace)."""
    kind, _, involved = about.partition("/")
    event: Obj = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"kind": kind, "name": involved, "namespace": "default"},
        "type": type_,
        "reason": reason,
        "message": message,
        "count": count,
    }
    if last:
        event["lastTimestamp"] = last
    return event
