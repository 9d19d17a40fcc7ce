"""The service table a node agent routes by, and the changes between two tables.

`service_table` turns Services and their EndpointSlices into what one node
needs to route service traffic: per service its type, virtual IP, ports and
session affinity, and the endpoints behind it with their readiness. `diff`
gives the few changes that turn one table into another, so that a change to one
Service or one endpoint sends only that service's change to the node; `apply`
makes them, as the agent does. Everything is plain JSON, in the wire shapes the
agent parses (agent.protocol.services: ServiceWire, EndpointsWire,
ServiceTableWire, Change); optional fields are left out rather than null.

Slices are read as kube-proxy reads them: every slice labelled with the
service's name counts, whoever keeps it; FQDN slices are not routable; an
endpoint is its first address; unset `ready` and `serving` mean true, unset
`terminating` false. An address in several slices keeps its first entry and
gains the other slices' ports.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.protocol.services import (
    DEFAULT_AFFINITY_TIMEOUT,
    Change,
    EndpointsWire,
    EndpointWire,
    ServicePortWire,
    ServiceTableWire,
    ServiceWire,
)
from control.objects import Obj
from control.objects.discovery import LABEL_SERVICE_NAME

Key = tuple[str, str]  # (namespace, name)


def service_wire(service: Obj) -> ServiceWire:
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    kind = str(spec.get("type") or "ClusterIP")
    cluster_ip = spec.get("clusterIP")
    config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    ports: list[ServicePortWire] = []
    for p in spec.get("ports") or []:
        port: ServicePortWire = {
            "name": str(p.get("name") or ""),
            "protocol": str(p.get("protocol") or "TCP"),
            "port": int(p["port"]),
        }
        if p.get("nodePort"):
            port["nodePort"] = int(p["nodePort"])
        ports.append(port)
    out: ServiceWire = {
        "namespace": str(meta.get("namespace") or ""),
        "name": str(meta.get("name") or ""),
        "type": kind,
        "clusterIP": None
        if kind == "ExternalName" or cluster_ip in (None, "", "None")
        else str(cluster_ip),
        "ports": ports,
        "sessionAffinity": str(spec.get("sessionAffinity") or "None"),
        "sessionAffinityTimeoutSeconds": int(
            config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT
        ),
    }
    if kind == "ExternalName" and spec.get("externalName"):
        out["externalName"] = str(spec["externalName"])
    return out


def slice_endpoints(slices: Iterable[Obj]) -> list[EndpointWire]:
    """The routable endpoints of one service's slices, ordered by IP."""
    by_ip: dict[str, EndpointWire] = {}
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
            entry: EndpointWire = {
                "ip": ip,
                "ready": conditions.get("ready") is not False,
                "serving": conditions.get("serving") is not False,
                "terminating": conditions.get("terminating") is True,
                "ports": dict(ports),
            }
            if endpoint.get("nodeName"):
                entry["nodeName"] = str(endpoint["nodeName"])
            if endpoint.get("hostname"):
                entry["hostname"] = str(endpoint["hostname"])
            by_ip[ip] = entry
    return [by_ip[ip] for ip in sorted(by_ip)]


def _key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def service_table(services: Iterable[Obj], slices: Iterable[Obj]) -> ServiceTableWire:
    """The table of `services`, with the endpoints of `slices` that belong to them."""
    wires = sorted((service_wire(svc) for svc in services), key=_wire_key)
    grouped: dict[Key, list[Obj]] = {_wire_key(w): [] for w in wires}
    for eps in slices:
        namespace, _ = _key(eps)
        owner = ((eps.get("metadata") or {}).get("labels") or {}).get(LABEL_SERVICE_NAME)
        if owner and (namespace, owner) in grouped:
            grouped[(namespace, owner)].append(eps)
    endpoints: list[EndpointsWire] = []
    for (namespace, name), of_service in grouped.items():
        found = slice_endpoints(of_service)
        if found:
            endpoints.append({"namespace": namespace, "name": name, "endpoints": found})
    return {"services": wires, "endpoints": endpoints}


def _wire_key(wire: ServiceWire | EndpointsWire) -> Key:
    return wire["namespace"], wire["name"]


def diff(old: ServiceTableWire, new: ServiceTableWire) -> list[Change]:
    """The changes that turn `old` into `new`: deletions, then services added
    or changed, then endpoint lists set; each in namespace/name order."""
    old_services = {_wire_key(s): s for s in old["services"]}
    new_services = {_wire_key(s): s for s in new["services"]}
    old_endpoints = {_wire_key(e): e["endpoints"] for e in old["endpoints"]}
    new_endpoints = {_wire_key(e): e["endpoints"] for e in new["endpoints"]}
    changes: list[Change] = []
    for namespace, name in sorted(old_services.keys() - new_services.keys()):
        changes.append({"op": "deleteService", "namespace": namespace, "name": name})
    for key in sorted(new_services):
        if old_services.get(key) != new_services[key]:
            changes.append({"op": "upsertService", "service": new_services[key]})
    for key in sorted(new_services):
        endpoints = new_endpoints.get(key, [])
        if old_endpoints.get(key, []) != endpoints:
            namespace, name = key
            wire: EndpointsWire = {"namespace": namespace, "name": name, "endpoints": endpoints}
            changes.append({"op": "setEndpoints", "endpoints": wire})
    return changes


def apply(table: ServiceTableWire, changes: Iterable[Change]) -> ServiceTableWire:
    """A new table: `table` with `changes` made, as the node agent makes them."""
    services = {_wire_key(s): s for s in table["services"]}
    endpoints = {_wire_key(e): e for e in table["endpoints"]}
    for change in changes:
        if change["op"] == "deleteService":
            key = (change["namespace"], change["name"])
            services.pop(key, None)
            endpoints.pop(key, None)
        elif change["op"] == "upsertService":
            services[_wire_key(change["service"])] = change["service"]
        else:
            wire = change["endpoints"]
            if wire["endpoints"]:
                endpoints[_wire_key(wire)] = wire
            else:
                endpoints.pop(_wire_key(wire), None)
    return {
        "services": [services[k] for k in sorted(services)],
        "endpoints": [endpoints[k] for k in sorted(endpoints)],
    }
