"""The EndpointSlice kind: Kubernetes' defaults, field-path errors, and the
columns `get` shows."""

from __future__ import annotations

from typing import Any

import pytest

from control.errors import ApiError
from control.objects import kinds
from control.objects.admission import admit
from control.objects.columns import rows

Obj = dict[str, Any]


def endpoint_slice(**fields: Any) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-abcde", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        **fields,
    }


def causes(obj: Obj) -> dict[str, str]:
    with pytest.raises(ApiError) as info:
        admit(obj)
    assert info.value.code == 422
    return {c.field: c.message for c in info.value.causes}


def test_kind_and_names() -> None:
    rt = kinds.by_name("endpointslices")
    assert rt is kinds.ENDPOINTSLICE and kinds.by_name("endpointslice") is rt
    assert (rt.group, rt.version, rt.namespaced, rt.short_names) == (
        "discovery.k8s.io",
        "v1",
        True,
        (),
    )
    assert rt.base_path("ns") == "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices"


def test_defaults_as_kubernetes_serves_them() -> None:
    admitted = admit(
        endpoint_slice(
            endpoints=[{"addresses": ["10.0.0.1"], "nodeName": "node-1"}],
            ports=[{"port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}],
        )
    )
    assert admitted["endpoints"] == [
        {"addresses": ["10.0.0.1"], "conditions": {}, "nodeName": "node-1"}
    ]
    assert admitted["ports"] == [
        {"name": "", "protocol": "TCP", "port": 80},
        {"name": "dns", "protocol": "UDP", "port": 53},
    ]
    # `endpoints` is always there, empty or not: clients require it.
    assert admit(endpoint_slice())["endpoints"] == []
    fqdn = admit(endpoint_slice(addressType="FQDN", endpoints=[{"addresses": ["db.example"]}]))
    assert fqdn["endpoints"][0]["addresses"] == ["db.example"]


def test_errors_name_their_fields() -> None:
    assert causes(endpoint_slice(addressType="IPv5")) == {
        "addressType": 'unsupported value "IPv5": supported values: "IPv4", "IPv6", "FQDN"'
    }
    found = causes(
        endpoint_slice(
            endpoints=[
                {"addresses": []},
                {"addresses": ["10.0.0.1"], "hostname": "Web_1", "conditions": {"ready": "maybe"}},
            ],
            ports=[{"name": "HTTP", "port": 0, "protocol": "ICMP"}],
        )
    )
    assert found.keys() == {
        "endpoints[0].addresses",
        "endpoints[1].hostname",
        "endpoints[1].conditions.ready",
        "ports[0].name",
        "ports[0].port",
        "ports[0].protocol",
    }
    assert found["endpoints[0].addresses"] == "required"
    assert found["ports[0].port"] == "must be between 1 and 65535, inclusive"
    # Addresses of the slice's type, and port names once each.
    assert causes(
        endpoint_slice(
            endpoints=[{"addresses": ["10.0.0.1", "fd00::1", "web"]}],
            ports=[{"name": "http", "port": 80}, {"name": "http", "port": 81}],
        )
    ) == {
        "endpoints[0].addresses[1]": 'invalid value "fd00::1": must be a valid IPv4 address',
        "endpoints[0].addresses[2]": 'invalid value "web": must be a valid IPv4 address',
        "ports[1].name": 'duplicate value "http"',
    }
    assert causes(endpoint_slice(addressType="IPv6", endpoints=[{"addresses": ["10.0.0.1"]}])) == {
        "endpoints[0].addresses[0]": 'invalid value "10.0.0.1": must be a valid IPv6 address'
    }
    assert list(causes(endpoint_slice(addressType="FQDN", endpoints=[{"addresses": ["A_b"]}]))) == [
        "endpoints[0].addresses[0]"
    ]
    assert "endpoints" in causes(endpoint_slice(endpoints=[{"addresses": ["10.0.0.1"]}] * 1001))


def test_columns_as_kubectl_prints_them() -> None:
    full = endpoint_slice(
        endpoints=[{"addresses": [f"10.0.0.{i}"]} for i in range(1, 6)],
        ports=[{"port": 80}, {"name": "named"}, {"port": 443}, {"port": 8080}],
    )
    headers, [row] = rows("EndpointSlice", [full])
    assert headers == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert row[:4] == [
        "web-abcde",
        "IPv4",
        "80,named,443 + 1 more...",
        "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...",
    ]
    _, [row] = rows("EndpointSlice", [endpoint_slice(endpoints=[], ports=[{"name": ""}])])
    assert row[1:4] == ["IPv4", "*", "<unset>"]
    _, [row] = rows("EndpointSlice", [endpoint_slice(endpoints=[], ports=[])])
    assert row[2:4] == ["<unset>", "<unset>"]
