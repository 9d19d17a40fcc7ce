"""The node service table: built from Services and EndpointSlices, and the
changes between two tables, one service at a time."""

from __future__ import annotations

import copy
import json
from typing import Any

from agent.protocol.services import ServiceTableWire
from control.nodes.servicetable import apply, diff, service_table

Obj = dict[str, Any]


def service(name: str, namespace: str = "default", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"}],
            "sessionAffinity": "None",
            **spec,
        },
    }


def endpoint(ip: str, node: str = "node-1", **conditions: bool) -> Obj:
    return {
        "addresses": [ip],
        "conditions": conditions or {"ready": True, "serving": True, "terminating": False},
        "nodeName": node,
        "targetRef": {"kind": "Pod", "name": f"pod-{ip}"},
    }


def slice_(
    name: str, service_name: str, endpoints: list[Obj], ports: list[Obj] | None = None, **extra: Any
) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}] if ports is None else ports,
        **extra,
    }


def by_name(entries: list[Any]) -> dict[str, Any]:
    return {entry["name"]: entry for entry in entries}


def test_table_of_services_and_their_slices() -> None:
    services = [
        service(
            "web",
            type="NodePort",
            ports=[
                {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080},
                {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053},
            ],
            sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}},
        ),
        service("headless", clusterIP="None", ports=[{"port": 9000}]),
        service("db", sessionAffinity="ClientIP"),
        {
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.com"},
        },
    ]
    slices = [
        slice_(
            "web-a",
            "web",
            [
                endpoint("10.244.1.3", ready=True, serving=True, terminating=False),
                endpoint("10.244.2.4", "node-2", ready=False, serving=True, terminating=True),
            ],
            [
                {"name": "http", "port": 8080, "protocol": "TCP"},
                {"name": "dns", "port": 5353, "protocol": "UDP"},
            ],
        ),
        # Unset conditions read as kube-proxy reads them: ready and serving, not terminating.
        slice_("web-b", "web", [{"addresses": ["10.244.1.2"], "hostname": "w0"}]),
        slice_("headless-a", "headless", [endpoint("10.244.3.1")], [{"name": "", "port": 9000}]),
        slice_("web-fqdn", "web", [{"addresses": ["web.example.com"]}], addressType="FQDN"),
        slice_("gone-a", "gone", [endpoint("10.244.9.9")]),  # no such service
    ]
    table = service_table(services, slices)
    assert json.loads(json.dumps(table)) == table  # goes over the node link as it is
    assert [s["name"] for s in table["services"]] == ["db", "ext", "headless", "web"]

    services_ = by_name(table["services"])
    assert services_["web"] == {
        "namespace": "default",
        "name": "web",
        "type": "NodePort",
        "clusterIP": "10.96.0.10",
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30080},
            {"name": "dns", "protocol": "UDP", "port": 53, "nodePort": 30053},
        ],
        "sessionAffinity": "ClientIP",
        "sessionAffinityTimeoutSeconds": 60,
    }
    endpoints = by_name(table["endpoints"])
    assert endpoints["web"] == {
        "namespace": "default",
        "name": "web",
        "endpoints": [
            {
                "ip": "10.244.1.2",
                "ready": True,
                "serving": True,
                "terminating": False,
                "ports": {"http": 8080},
                "hostname": "w0",
            },
            {
                "ip": "10.244.1.3",
                "ready": True,
                "serving": True,
                "terminating": False,
                "ports": {"http": 8080, "dns": 5353},
                "nodeName": "node-1",
            },
            {
                "ip": "10.244.2.4",
                "ready": False,
                "serving": True,
                "terminating": True,
                "ports": {"http": 8080, "dns": 5353},
                "nodeName": "node-2",
            },
        ],
    }
    headless = services_["headless"]
    assert headless["clusterIP"] is None
    assert headless["ports"] == [{"name": "", "protocol": "TCP", "port": 9000}]
    assert [e["ports"] for e in endpoints["headless"]["endpoints"]] == [{"": 9000}]
    db = services_["db"]
    assert (db["sessionAffinity"], db["sessionAffinityTimeoutSeconds"]) == ("ClientIP", 10800)
    ext = services_["ext"]
    assert (ext["type"], ext["clusterIP"], ext["externalName"]) == (
        "ExternalName",
        None,
        "example.com",
    )
    assert "externalName" not in services_["web"]
    # Only services with endpoints have an endpoints entry.
    assert sorted(endpoints) == ["headless", "web"]


def test_an_address_in_two_slices_is_one_endpoint_with_both_ports() -> None:
    web = service("web", ports=[{"name": "http", "port": 80}, {"name": "admin", "port": 81}])
    slices = [
        slice_("a", "web", [endpoint("10.0.0.1")], [{"name": "http", "port": 8080}]),
        slice_(
            "b",
            "web",
            [endpoint("10.0.0.1", ready=False, serving=False, terminating=False)],
            [{"name": "admin", "port": 9090}, {"name": "http", "port": 1}],
        ),
    ]
    ((only,),) = [e["endpoints"] for e in service_table([web], slices)["endpoints"]]
    assert only["ports"] == {"http": 8080, "admin": 9090}
    assert only["ready"] is True  # the first slice's entry


def build(services: list[Obj], slices: list[Obj]) -> ServiceTableWire:
    return service_table(copy.deepcopy(services), copy.deepcopy(slices))


def test_diff_is_one_change_per_service_touched() -> None:
    services = [service("a"), service("b"), service("c")]
    slices = [
        slice_("a-1", "a", [endpoint("10.0.0.1"), endpoint("10.0.0.2")]),
        slice_("b-1", "b", [endpoint("10.0.1.1")]),
    ]
    before = build(services, slices)
    assert diff(before, before) == []

    # One endpoint of one service goes not ready: that service's endpoints only.
    slices[0]["endpoints"][1]["conditions"] = {"ready": False, "serving": False}
    after = build(services, slices)
    assert diff(before, after) == [
        {"op": "setEndpoints", "endpoints": by_name(after["endpoints"])["a"]}
    ]
    assert apply(before, diff(before, after)) == after

    # One service changes: that service only, its endpoints untouched.
    services[1]["spec"]["ports"][0]["port"] = 8000
    changed = build(services, slices)
    assert diff(after, changed) == [
        {"op": "upsertService", "service": by_name(changed["services"])["b"]}
    ]

    # A service goes: one delete, which takes its endpoints along.
    gone = build([services[0], services[2]], slices)
    assert diff(changed, gone) == [{"op": "deleteService", "namespace": "default", "name": "b"}]
    assert apply(changed, diff(changed, gone)) == gone

    # A new service with endpoints: the service, then its endpoints.
    services.append(service("d"))
    slices.append(slice_("d-1", "d", [endpoint("10.0.2.1")]))
    grown = build([services[0], services[2], services[3]], slices)
    assert [c["op"] for c in diff(gone, grown)] == ["upsertService", "setEndpoints"]
    assert apply(gone, diff(gone, grown)) == grown
    # A new service without endpoints: the service alone.
    services.append(service("e"))
    more = build([services[0], services[2], services[3], services[4]], slices)
    assert diff(grown, more) == [{"op": "upsertService", "service": by_name(more["services"])["e"]}]
    # Its last endpoint gone: the service's endpoints set to none.
    del slices[-1]
    emptied = build([services[0], services[2], services[3], services[4]], slices)
    assert diff(more, emptied) == [
        {
            "op": "setEndpoints",
            "endpoints": {"namespace": "default", "name": "d", "endpoints": []},
        }
    ]
    assert apply(more, diff(more, emptied)) == emptied
    assert json.loads(json.dumps(diff(gone, grown))) == diff(gone, grown)


def test_diff_and_apply_round_trip_from_empty_and_back() -> None:
    services = [service("a"), service("b", namespace="other")]
    slices = [slice_("a-1", "a", [endpoint("10.0.0.1")])]
    empty: ServiceTableWire = {"services": [], "endpoints": []}
    full = build(services, slices)
    assert apply(empty, diff(empty, full)) == full
    assert apply(full, diff(full, empty)) == empty
    assert [c["op"] for c in diff(full, empty)] == ["deleteService", "deleteService"]
