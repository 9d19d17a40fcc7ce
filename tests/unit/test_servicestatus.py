"""What operators see of a Service: endpoint counts and rows from its
EndpointSlices, the nodes' service rules annotation, and `get svc`'s columns."""

from __future__ import annotations

from typing import Any

import pytest

from control.objects.columns import rows
from control.objects.servicestatus import (
    SERVICE_RULES_ANNOTATION,
    parse_rules,
    rules_summary,
    rules_value,
    service_details,
    slice_counts,
    slice_service,
)

Obj = dict[str, Any]


def node(name: str, rules: str | None = None) -> Obj:
    annotations = {SERVICE_RULES_ANNOTATION: rules} if rules is not None else {}
    return {"metadata": {"name": name, "annotations": annotations}}


def endpoint_slice(service: str, endpoints: list[Obj], ports: list[Obj]) -> Obj:
    return {
        "metadata": {
            "namespace": "shop",
            "name": f"{service}-x1",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }


WEB = endpoint_slice(
    "web",
    [
        {"addresses": ["10.244.1.3"], "conditions": {"ready": False}, "nodeName": "node-2"},
        {"addresses": ["10.244.1.2"], "conditions": {"ready": True}, "nodeName": "node-1"},
        {"addresses": ["10.244.1.9"]},  # unset ready means ready
    ],
    [{"name": "http", "port": 8080, "protocol": "TCP"}, {"port": 9090, "protocol": "UDP"}],
)


def test_rules_annotation_round_trips() -> None:
    assert rules_value(3, 5) == "3/5"
    assert parse_rules("3/5") == (3, 5)
    for bad in (None, "", "3", "3/", "a/5", "3/5/7", 7):
        assert parse_rules(bad) is None, bad


def test_rules_summary_counts_nodes_whose_agent_has_the_latest() -> None:
    nodes = [node("a", "5/5"), node("b", "4/5"), node("c"), node("d", "junk")]
    assert rules_summary(nodes) == (1, 4)
    assert rules_summary([]) == (0, 0)


def test_slice_counts_and_owner() -> None:
    assert slice_counts(WEB) == (2, 3)
    assert slice_service(WEB) == "shop/web"
    assert slice_service({"metadata": {"namespace": "shop", "name": "x"}}) is None


def test_service_details_list_endpoints_and_nodes_behind() -> None:
    nodes = [node("node-2", "4/5"), node("node-1", "5/5"), node("node-3")]
    assert service_details([WEB], nodes) == [
        "Endpoints:    2 ready, 1 not ready",
        "  ADDRESS     READY      PORTS                   NODE",
        "  10.244.1.2  ready      http:8080/TCP,9090/UDP  node-1",
        "  10.244.1.3  not ready  http:8080/TCP,9090/UDP  node-2",
        "  10.244.1.9  ready      http:8080/TCP,9090/UDP  <none>",
        "Rules:        1/3 nodes in sync",
        "  NODE    RULES",
        "  node-2  at 4 of 5",
        "  node-3  no rules reported",
    ]
    assert service_details([], [node("node-1", "5/5")]) == [
        "Endpoints:    <none>",
        "Rules:        1/1 nodes in sync",
    ]


def service(kind: str, **spec: Any) -> Obj:
    status = spec.pop("status", {})
    return {
        "metadata": {"name": "s", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"type": kind, "ports": [{"port": 80, "protocol": "TCP"}], **spec},
        "status": status,
    }


@pytest.mark.parametrize(
    ("svc", "external"),
    [
        (service("ClusterIP", clusterIP="10.96.0.5"), "<none>"),
        (service("ClusterIP", externalIPs=["192.0.2.1", "192.0.2.2"]), "192.0.2.1,192.0.2.2"),
        (service("NodePort"), "<none>"),
        (service("LoadBalancer"), "<pending>"),
        (
            service(
                "LoadBalancer",
                externalIPs=["192.0.2.9"],
                status={
                    "loadBalancer": {"ingress": [{"ip": "203.0.113.4"}, {"hostname": "lb.test"}]}
                },
            ),
            "203.0.113.4,lb.test,192.0.2.9",
        ),
        (service("ExternalName", externalName="db.example.test"), "db.example.test"),
    ],
)
def test_get_svc_external_ip_as_kubectl(svc: Obj, external: str) -> None:
    headers, [row] = rows("Service", [svc])
    assert headers == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert row[3] == external


def test_get_svc_columns_and_wide_selector() -> None:
    svc = service("NodePort", clusterIP="10.96.0.7", selector={"app": "web"})
    svc["spec"]["ports"] = [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]
    headers, [row] = rows("Service", [svc], wide=True)
    assert headers[-1] == "SELECTOR"
    assert row[:5] == ["s", "NodePort", "10.96.0.7", "<none>", "80:30080/TCP"]
    assert row[-1] == "app=web"
    _, [row] = rows("Service", [service("ExternalName", externalName="x.test")])
    assert row[2] == "<none>"  # no ClusterIP
