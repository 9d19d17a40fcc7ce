"""IngressClass and the Gateway API kinds over the API: CRUD, validation with
field paths, the status subresource, short names and `get` columns; and the
default classes the control plane makes at start."""

from __future__ import annotations

from typing import Any

import pytest

from control.client import Client
from control.errors import ApiError
from control.objects.columns import rows
from control.objects.kinds import GATEWAY, GATEWAYCLASS, HTTPROUTE, INGRESSCLASS, by_name

Obj = dict[str, Any]
GROUP = "gateway.networking.k8s.io/v1"


def gateway(name: str, listeners: list[Obj] | None = None) -> Obj:
    return {
        "apiVersion": GROUP,
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {
            "gatewayClassName": "pilothouse",
            "listeners": listeners
            if listeners is not None
            else [{"name": "http", "port": 80, "protocol": "HTTP"}],
            "infrastructure": {"labels": {"kept": "yes"}},
        },
    }


def httproute(name: str, parent: Obj, backend: Obj) -> Obj:
    return {
        "apiVersion": GROUP,
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [parent],
            "hostnames": ["a.example.com", "b.example.com"],
            "rules": [{"backendRefs": [backend]}],
        },
    }


async def test_default_classes_and_ingress_class_crud(client: Client) -> None:
    classes = await client.list(INGRESSCLASS, None)
    assert [c["metadata"]["name"] for c in classes["items"]] == ["pilothouse"]
    gateway_classes = await client.list(GATEWAYCLASS, None)
    [default] = gateway_classes["items"]
    assert default["spec"]["controllerName"] == "pilothouse.io/gateway-controller"
    made = await client.create(
        INGRESSCLASS,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "other"},
            "spec": {
                "controller": "example.com/other",
                "parameters": {"apiGroup": "k8s.example.com", "kind": "Params", "name": "p"},
            },
        },
    )
    assert made["metadata"]["uid"]
    headers, cells = rows("IngressClass", [made])
    assert headers == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
    assert cells[0][:3] == ["other", "example.com/other", "Params.k8s.example.com/p"]
    headers, cells = rows("GatewayClass", [default])
    assert headers == ["NAME", "CONTROLLER", "ACCEPTED", "AGE"]
    assert cells[0][:3] == ["pilothouse", "pilothouse.io/gateway-controller", ""]
    await client.delete(INGRESSCLASS, "other", None)
    assert len((await client.list(INGRESSCLASS, None))["items"]) == 1


async def test_gateway_and_httproute_crud_status_and_columns(client: Client) -> None:
    made = await client.create(GATEWAY, gateway("gw"), "default")
    assert made["spec"]["infrastructure"] == {"labels": {"kept": "yes"}}  # unknown fields kept
    status = {
        "addresses": [{"type": "IPAddress", "value": "192.0.2.5"}],
        "conditions": [{"type": "Programmed", "status": "True"}],
    }
    path = f"/apis/{GROUP}/namespaces/default/gateways/gw/status"
    await client.request("PUT", path, body={**made, "status": status})
    got = await client.get(GATEWAY, "gw", "default")
    assert got["status"]["addresses"][0]["value"] == "192.0.2.5"
    headers, cells = rows("Gateway", [got])
    assert headers == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]
    assert cells[0][:4] == ["gw", "pilothouse", "192.0.2.5", "True"]

    route = await client.create(
        HTTPROUTE, httproute("web", {"name": "gw"}, {"name": "web", "port": 80}), "default"
    )
    headers, cells = rows("HTTPRoute", [route])
    assert headers == ["NAME", "HOSTNAMES", "AGE"]
    assert cells[0][:2] == ["web", '["a.example.com","b.example.com"]']
    await client.delete(HTTPROUTE, "web", "default")
    await client.delete(GATEWAY, "gw", "default")
    assert (await client.list(GATEWAY, "default"))["items"] == []


@pytest.mark.parametrize(
    ("rt", "body", "fields"),
    [
        (
            HTTPROUTE,
            httproute("r", {"sectionName": "http"}, {"port": 80}),
            ["spec.parentRefs[0].name", "spec.rules[0].backendRefs[0].name"],
        ),
        (
            HTTPROUTE,
            httproute("r", {"name": "gw"}, {"name": "web"}),
            ["spec.rules[0].backendRefs[0].port"],
        ),
        (
            GATEWAY,
            gateway("g", [{"port": 80}]),
            ["spec.listeners[0].name", "spec.listeners[0].protocol"],
        ),
        (
            GATEWAY,
            gateway("g", [{"name": "x", "port": 0, "protocol": "HTTP"}]),
            ["spec.listeners[0].port"],
        ),
        (GATEWAY, gateway("g", []), ["spec.listeners"]),
    ],
)
async def test_validation_names_the_field(
    client: Client, rt: Any, body: Obj, fields: list[str]
) -> None:
    with pytest.raises(ApiError) as exc:
        await client.create(rt, body, "default")
    assert exc.value.code == 422
    assert [c.field for c in exc.value.causes] == fields


def test_short_names() -> None:
    assert by_name("gc") is GATEWAYCLASS
    assert by_name("gtw") is GATEWAY
    assert by_name("httproute") is HTTPROUTE
    assert by_name("ingressclass") is INGRESSCLASS
    assert by_name("gateways.gateway.networking.k8s.io") is GATEWAY
    assert GATEWAY.status and HTTPROUTE.status and GATEWAYCLASS.status
    assert not INGRESSCLASS.namespaced and not GATEWAYCLASS.namespaced
