"""kubectl compatibility over HTTP: Table answers, discovery categories,
OpenAPI v3, body content types and fieldValidation (aiohttp's test client
on the API server's app)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from control.api.negotiation import Answer, negotiate, parse_accept
from control.controlplane import ControlPlane
from control.objects.columns import columns_for
from control.objects.kinds import RESOURCES
from tests.manifests import workload

KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
TABLE = {"Accept": KUBECTL_ACCEPT}
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"


def deployment(name: str, **spec: Any) -> dict[str, Any]:
    return workload("Deployment", name, 2, "pilothouse/busybox", container="web", **spec)


@pytest.fixture
async def http(plane: ControlPlane) -> AsyncIterator[TestClient[Any, Any]]:
    assert plane.api is not None
    async with TestClient(TestServer(plane.api.make_app(trusted=True))) as client:
        yield client


def test_accept_header_order_and_q() -> None:
    assert [m.mime for m in parse_accept("a/b;q=0.5, c/d, e/f;q=0")] == ["c/d", "a/b"]
    assert negotiate(KUBECTL_ACCEPT) is Answer.TABLE
    assert negotiate("application/json;as=Table;v=v1beta1;g=meta.k8s.io,*/*") is Answer.JSON
    assert negotiate(None) is Answer.JSON
    assert negotiate("application/json;q=0.1,application/json;as=Table;v=v1;g=meta.k8s.io") is (
        Answer.TABLE
    )


async def test_pod_table_columns_and_wide(http: TestClient[Any, Any]) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "pilothouse/busybox"}]},
    }
    assert (await http.post("/api/v1/namespaces/default/pods", json=pod)).status == 201
    resp = await http.get("/api/v1/namespaces/default/pods", headers=TABLE)
    assert resp.status == 200
    table = await resp.json()
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert table["metadata"]["resourceVersion"]
    defs = table["columnDefinitions"]
    assert [d["name"] for d in defs if d["priority"] == 0] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert [d["name"] for d in defs if d["priority"] == 1] == [
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ]
    assert defs[0]["format"] == "name"
    [row] = table["rows"]
    assert row["cells"][:4] == ["p", "0/1", "Pending", "0"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "p"
    assert "spec" not in row["object"]


async def test_include_object_and_single_get(http: TestClient[Any, Any]) -> None:
    assert (await http.post(DEPLOY, json=deployment("web"))).status == 201
    full = await (await http.get(f"{DEPLOY}?includeObject=Object", headers=TABLE)).json()
    [row] = full["rows"]
    assert row["object"]["spec"]["replicas"] == 2
    assert row["cells"][2] == 0  # UP-TO-DATE is an integer column
    none = await (await http.get(f"{DEPLOY}?includeObject=None", headers=TABLE)).json()
    assert "object" not in none["rows"][0]
    bad = await http.get(f"{DEPLOY}?includeObject=All", headers=TABLE)
    assert bad.status == 400
    one = await (await http.get(f"{DEPLOY}/web", headers=TABLE)).json()
    assert one["kind"] == "Table" and one["rows"][0]["cells"][0] == "web"
    plain = await (await http.get(f"{DEPLOY}/web")).json()
    assert plain["kind"] == "Deployment"


async def test_unacceptable_accept_is_406(http: TestClient[Any, Any]) -> None:
    resp = await http.get(DEPLOY, headers={"Accept": "text/html"})
    assert resp.status == 406
    assert (await resp.json())["reason"] == "NotAcceptable"


async def test_every_kind_has_a_table_with_name_and_age(http: TestClient[Any, Any]) -> None:
    for rt in RESOURCES:
        resp = await http.get(rt.base_path(), headers=TABLE)
        assert resp.status == 200, rt.kind
        names = [d["name"] for d in (await resp.json())["columnDefinitions"]]
        assert "Name" in names, rt.kind
        assert len(names) == len(columns_for(rt.kind, wide=True))


async def test_watch_events_are_tables(http: TestClient[Any, Any]) -> None:
    assert (await http.post(DEPLOY, json=deployment("a"))).status == 201
    assert (await http.post(DEPLOY, json=deployment("b"))).status == 201
    resp = await http.get(f"{DEPLOY}?watch=1&timeoutSeconds=1", headers=TABLE)
    lines = [orjson.loads(line) for line in (await resp.read()).splitlines() if line]
    assert [e["type"] for e in lines] == ["ADDED", "ADDED"]
    first, second = (e["object"] for e in lines)
    assert first["kind"] == "Table" and first["columnDefinitions"]
    assert second["columnDefinitions"] == []  # sent once; kubectl keeps the last ones
    assert [e["object"]["rows"][0]["cells"][0] for e in lines] == ["a", "b"]


async def test_discovery_categories_and_short_names(http: TestClient[Any, Any]) -> None:
    core = await (await http.get("/api/v1")).json()
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["categories"] == ["all"]
    assert by_name["services"]["shortNames"] == ["svc"]
    assert "categories" not in by_name["configmaps"]
    apps = await (await http.get("/apis/apps/v1")).json()
    cats = {r["name"]: r.get("categories") for r in apps["resources"]}
    assert cats["deployments"] == cats["replicasets"] == ["all"]


async def test_openapi_v3_index_and_documents(http: TestClient[Any, Any]) -> None:
    index = await (await http.get("/openapi/v3")).json()
    assert {"api/v1", "apis/apps/v1", "apis/networking.k8s.io/v1"} <= index["paths"].keys()
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    doc = await (await http.get(url)).json()
    schemas = doc["components"]["schemas"]
    deploy = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deploy["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "Deployment"}
    ]
    assert deploy["description"]
    spec = schemas["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["properties"]["replicas"]["type"] == "integer"
    assert set(spec["required"]) == {"selector", "template"}
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert (await http.get("/openapi/v3/apis/nothing/v1")).status == 404


async def test_yaml_body_and_unsupported_content_type(http: TestClient[Any, Any]) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\ndata: {a: b}\n"
    resp = await http.post(
        "/api/v1/namespaces/default/configmaps",
        data=body,
        headers={"Content-Type": "application/yaml"},
    )
    assert resp.status == 201
    assert (await resp.json())["data"] == {"a": "b"}
    for content_type in ("application/cbor", "text/plain"):
        resp = await http.post(
            "/api/v1/namespaces/default/configmaps",
            data=b"{}",
            headers={"Content-Type": content_type},
        )
        assert resp.status == 415, content_type
        assert (await resp.json())["reason"] == "UnsupportedMediaType"


async def test_field_validation_strict_warn_ignore(http: TestClient[Any, Any]) -> None:
    bad = deployment("x", foo=1)
    bad["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    # Kubernetes fields the models keep without modelling them are not unknown.
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"runAsUser": 1}
    resp = await http.post(f"{DEPLOY}?fieldValidation=Strict", json=bad)
    assert resp.status == 400
    message = (await resp.json())["message"]
    assert 'unknown field "spec.foo"' in message
    assert 'unknown field "spec.template.spec.containers[0].imagee"' in message
    assert "securityContext" not in message
    resp = await http.post(f"{DEPLOY}?fieldValidation=Warn", json=bad)
    assert resp.status == 201
    assert sorted(resp.headers.getall("Warning")) == [
        '299 - "unknown field \\"spec.foo\\""',
        '299 - "unknown field \\"spec.template.spec.containers[0].imagee\\""',
    ]
    bad["metadata"]["name"] = "y"
    resp = await http.post(f"{DEPLOY}?fieldValidation=Ignore", json=bad)
    assert resp.status == 201 and "Warning" not in resp.headers
    resp = await http.post(f"{DEPLOY}?fieldValidation=Loud", json=bad)
    assert resp.status == 400


async def test_field_validation_duplicates_and_patches(http: TestClient[Any, Any]) -> None:
    raw = orjson.dumps(deployment("d")).replace(b'"replicas":2', b'"replicas":2,"replicas":3')
    resp = await http.post(
        f"{DEPLOY}?fieldValidation=Strict",
        data=raw,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 400
    assert 'duplicate field "spec.replicas"' in (await resp.json())["message"]
    assert (await http.post(DEPLOY, json=deployment("d"))).status == 201
    smp = {"application/strategic-merge-patch+json": {"spec": {"replicaz": 1}}}
    for content_type, patch in smp.items():
        resp = await http.patch(
            f"{DEPLOY}/d?fieldValidation=Strict",
            data=orjson.dumps(patch),
            headers={"Content-Type": content_type},
        )
        assert resp.status == 400
        assert 'unknown field "spec.replicaz"' in (await resp.json())["message"]
    # Patch directives are not fields.
    directive = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "web"}]}}}}
    resp = await http.patch(
        f"{DEPLOY}/d?fieldValidation=Strict",
        data=orjson.dumps(directive),
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert resp.status == 200
