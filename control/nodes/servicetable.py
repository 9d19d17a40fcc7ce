"""The service table a node agent routes by, and the changes between two tables.

`service_table` turns Services and their EndpointSlices into what one node
needs to route service traffic: per service its type, virtual IP, ports and
session affinity, and the endpoints behind it with their readiness. `diff`
gives the few changes that turn one table into another, so that a change to one
Service or one endpoint sends only that service's change to the node; `apply`
makes them. Everything is plain JSON (dicts, lists, strings, numbers, None).

Slices are read as kube-proxy reads them: every slice labelled with the
service's name counts, whoever keeps it; FQDN slices are not routable; an
endpoint is its first address; unset `ready` and `serving` mean true, unset
`terminating` false. An address in several slices keeps its first entry and
gains the other slices' ports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, TypedDict

from control.objects.discovery import LABEL_SERVICE_NAME
from control.objects.kinds import object_key

Obj = dict[str, Any]

# Kubernetes' default for ClientIP affinity without sessionAffinityConfig.
DEFAULT_AFFINITY_TIMEOUT = 10800


class ServicePortEntry(TypedDict):
    name: str  # "" when the service has one unnamed port; endpoints' ports are keyed by it
    protocol: str  # TCP, UDP or SCTP
    port: int
    nodePort: int | None


class ServiceEntry(TypedDict):
    namespace: str
    name: str
    type: str  # ClusterIP, NodePort, LoadBalancer or ExternalName
    clusterIP: str | None  # None: headless, or ExternalName
    ports: list[ServicePortEntry]
    sessionAffinity: str  # None or ClientIP
    sessionAffinityTimeout: int | None  # seconds, with ClientIP
    externalName: str | None


class EndpointEntry(TypedDict):
    ip: str
    ports: dict[str, int]  # service port name -> the port on this endpoint
    ready: bool
    serving: bool
    terminating: bool
    nodeName: str | None
    hostname: str | None


class ServiceTable(TypedDict):
    services: dict[str, ServiceEntry]  # by "namespace/name"
    endpoints: dict[str, list[EndpointEntry]]  # by the same key, one list per service, by IP


class UpsertService(TypedDict):
    op: Literal["upsertService"]
    key: str
    service: ServiceEntry


class DeleteService(TypedDict):
    op: Literal["deleteService"]  # the service and its endpoints
    key: str


class ReplaceEndpoints(TypedDict):
    op: Literal["replaceEndpoints"]
    key: str
    endpoints: list[EndpointEntry]


Change = UpsertService | DeleteService | ReplaceEndpoints


def service_entry(service: Obj) -> ServiceEntry:
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    kind = str(spec.get("type") or "ClusterIP")
    cluster_ip = spec.get("clusterIP")
    affinity = str(spec.get("sessionAffinity") or "None")
    timeout = None
    if affinity == "ClientIP":
        config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        timeout = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    return {
        "namespace": str(meta.get("namespace") or ""),
        "name": str(meta.get("name") or ""),
        "type": kind,
        "clusterIP": None
        if kind == "ExternalName" or cluster_ip in (None, "", "None")
        else cluster_ip,
        "ports": [
            {
                "name": str(p.get("name") or ""),
                "protocol": str(p.get("protocol") or "TCP"),
                "port": int(p["port"]),
                "nodePort": p.get("nodePort") or None,
            }
            for p in spec.get("ports") or []
        ],
        "sessionAffinity": affinity,
        "sessionAffinityTimeout": timeout,
        "externalName": spec.get("externalName") if kind == "ExternalName" else None,
    }


def slice_endpoints(slices: Iterable[Obj]) -> list[EndpointEntry]:
    """The routable endpoints of one service's slices, ordered by IP."""
    by_ip: dict[str, EndpointEntry] = {}
    for eps in slices:
        if eps.get("addressType") not in ("IPv4", "IPv6"):
            continue
        ports = {
            str(p.get("name") or ""): int(p["port"])
            for p in eps.get("ports") or []
            if p.get("port") is not None
        }
        for endpoint in eps.get("endpoints") or []:
            addresses = endpoint.get("addresses") or []
            if not addresses:
                continue
            ip = str(addresses[0])
            known = by_ip.get(ip)
            if known is not None:
                known["ports"] = {**ports, **known["ports"]}
                continue
            conditions = endpoint.get("conditions") or {}
            ready = conditions.get("ready") is not False
            by_ip[ip] = {
                "ip": ip,
                "ports": dict(ports),
                "ready": ready,
                "serving": conditions.get("serving") is not False,
                "terminating": conditions.get("terminating") is True,
                "nodeName": endpoint.get("nodeName"),
                "hostname": endpoint.get("hostname"),
            }
    return [by_ip[ip] for ip in sorted(by_ip)]


def service_table(services: Iterable[Obj], slices: Iterable[Obj]) -> ServiceTable:
    """The table of `services`, with the endpoints of `slices` that belong to them."""
    entries = {object_key(svc): service_entry(svc) for svc in services}
    grouped: dict[str, list[Obj]] = {key: [] for key in entries}
    for eps in slices:
        meta = eps.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(LABEL_SERVICE_NAME)
        key = f"{meta.get('namespace')}/{owner}"
        if owner and key in grouped:
            grouped[key].append(eps)
    endpoints = {key: slice_endpoints(of_service) for key, of_service in grouped.items()}
    return {"services": entries, "endpoints": endpoints}


def diff(old: ServiceTable, new: ServiceTable) -> list[Change]:
    """The changes that turn `old` into `new`: deletions, then services added
    or changed, then endpoint lists replaced; each in key order."""
    changes: list[Change] = []
    for key in sorted(old["services"].keys() - new["services"].keys()):
        changes.append({"op": "deleteService", "key": key})
    for key in sorted(new["services"]):
        service = new["services"][key]
        if old["services"].get(key) != service:
            changes.append({"op": "upsertService", "key": key, "service": service})
    for key in sorted(new["endpoints"]):
        endpoints = new["endpoints"][key]
        if old["endpoints"].get(key, []) != endpoints:
            changes.append({"op": "replaceEndpoints", "key": key, "endpoints": endpoints})
    return changes


def apply(table: ServiceTable, changes: Iterable[Change]) -> ServiceTable:
    """A new table: `table` with `changes` made (as a node agent would make them)."""
    services = dict(table["services"])
    endpoints = dict(table["endpoints"])
    for change in changes:
        key = change["key"]
        if change["op"] == "deleteService":
            services.pop(key, None)
            endpoints.pop(key, None)
        elif change["op"] == "upsertService":
            services[key] = change["service"]
            endpoints.setdefault(key, [])
        else:
            endpoints[key] = change["endpoints"]
    return {"services": services, "endpoints": endpoints}
