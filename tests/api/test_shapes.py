"""Objects and answers shaped as Kubernetes shapes them: Status bodies byte
for byte, /version, generated names, Service IP families, the default
tolerations of a new pod, the default IngressClass of a new Ingress."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest

from control.client import Client
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.objects.kinds import CONFIGMAP, INGRESS, INGRESSCLASS, POD, SERVICE
from control.objects.names import SAFE_ALPHABET, generated_name
from tests.api.test_rest import pod

Obj = dict[str, Any]


async def _raw(plane: ControlPlane, method: str, path: str, body: Obj | None = None) -> bytes:
    connector = aiohttp.UnixConnector(path=str(plane.socket_path))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.request(method, f"http://localhost{path}", json=body) as r:
            return await r.read()


async def test_status_bodies_are_kube_apiservers_bytes(plane: ControlPlane, client: Client) -> None:
    cm = await client.create(CONFIGMAP, {"metadata": {"name": "c"}})
    deleted = await _raw(plane, "DELETE", "/api/v1/namespaces/default/configmaps/c")
    assert deleted == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",'
        b'"details":{"name":"c","kind":"configmaps","uid":"'
        + cm["metadata"]["uid"].encode()
        + b'"}}\n'
    )
    missing = await _raw(plane, "GET", "/api/v1/namespaces/default/configmaps/c")
    assert missing == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"configmaps \\"c\\" not found","reason":"NotFound",'
        b'"details":{"name":"c","kind":"configmaps"},"code":404}\n'
    )
    await client.create(POD, pod("p"))
    bound = await _raw(
        plane,
        "POST",
        "/api/v1/namespaces/default/pods/p/binding",
        {"apiVersion": "v1", "kind": "Binding", "target": {"name": "n1"}},
    )
    assert (
        bound
        == b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}\n'
    )


async def test_version_is_the_served_api_level(client: Client) -> None:
    v = await client.request("GET", "/version")
    assert (v["major"], v["minor"]) == ("1", "37")
    assert re.fullmatch(r"v1\.37\.\d+-pilothouse.*", v["gitVersion"])


def test_generated_names_use_kubernetes_alphabet() -> None:
    names = {generated_name("web-") for _ in range(200)}
    assert len(names) > 190
    for name in names:
        assert name.startswith("web-") and len(name) == 9
        assert set(name[4:]) <= set(SAFE_ALPHABET)
    long = generated_name("x" * 80)
    assert len(long) == 63 and long.startswith("x" * 58)


async def test_generate_name_through_the_api(client: Client) -> None:
    created = await client.create(CONFIGMAP, {"metadata": {"generateName": "cfg-"}})
    assert re.fullmatch(f"cfg-[{SAFE_ALPHABET}]{{5}}", created["metadata"]["name"])


def _svc(name: str, **spec: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}], **spec}}


async def test_services_default_their_ip_families(client: Client) -> None:
    svc = await client.create(SERVICE, _svc("a"))
    assert svc["spec"]["ipFamilies"] == ["IPv4"]
    assert svc["spec"]["ipFamilyPolicy"] == "SingleStack"
    headless = await client.create(SERVICE, _svc("h", clusterIP="None"))
    assert (headless["spec"]["ipFamilies"], headless["spec"]["ipFamilyPolicy"]) == (
        ["IPv4"],
        "SingleStack",
    )
    prefer = await client.create(
        SERVICE, _svc("p", ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv4", "IPv6"])
    )
    assert prefer["spec"]["ipFamilies"] == ["IPv4"]
    external = await client.create(
        SERVICE,
        {"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "x.io"}},
    )
    assert "ipFamilies" not in external["spec"] and "ipFamilyPolicy" not in external["spec"]
    # An update that leaves them out keeps them.
    svc["spec"].pop("ipFamilies")
    svc["spec"].pop("ipFamilyPolicy")
    updated = await client.request("PUT", "/api/v1/namespaces/default/services/a", body=svc)
    assert (updated["spec"]["ipFamilies"], updated["spec"]["ipFamilyPolicy"]) == (
        ["IPv4"],
        "SingleStack",
    )
    for bad, field in (
        ({"ipFamilies": ["IPv6"]}, "spec.ipFamilies[0]"),
        ({"ipFamilyPolicy": "RequireDualStack"}, "spec.ipFamilyPolicy"),
        ({"ipFamilies": ["IPv4", "IPv6"]}, "spec.ipFamilies"),
    ):
        with pytest.raises(ApiError) as exc:
            await client.create(SERVICE, _svc("bad", **bad))
        assert exc.value.code == 422 and exc.value.causes[0].field == field


async def test_new_pods_tolerate_not_ready_and_unreachable_nodes(client: Client) -> None:
    created = await client.create(POD, pod("p"))
    assert created["spec"]["tolerations"] == [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]
    # A pod that tolerates them already keeps its own.
    own = pod("q")
    own["spec"]["tolerations"] = [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {"operator": "Exists"},
    ]
    assert (await client.create(POD, own))["spec"]["tolerations"] == own["spec"]["tolerations"]
    partial = pod("r")
    partial["spec"]["tolerations"] = [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 5}
    ]
    keys = [t["key"] for t in (await client.create(POD, partial))["spec"]["tolerations"]]
    assert keys == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]


def _ingress(name: str, **meta: Any) -> Obj:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {"metadata": {"name": name, **meta}, "spec": {"defaultBackend": backend}}


async def test_new_ingresses_get_the_default_class(client: Client) -> None:
    async def class_of(ingress: Obj) -> str | None:
        return (await client.create(INGRESS, ingress))["spec"].get("ingressClassName")

    assert await class_of(_ingress("a")) == "pilothouse"  # the control plane's default
    assert await class_of(_ingress("b", annotations={"kubernetes.io/ingress.class": "x"})) is None
    await client.create(INGRESSCLASS, {"metadata": {"name": "other"}})
    named = _ingress("c")
    named["spec"]["ingressClassName"] = "other"
    assert await class_of(named) == "other"
    await asyncio.sleep(1.1)  # creationTimestamp has whole seconds: the newest default wins
    default = {"ingressclass.kubernetes.io/is-default-class": "true"}
    await client.create(INGRESSCLASS, {"metadata": {"name": "mine", "annotations": default}})
    assert await class_of(_ingress("d")) == "mine"
