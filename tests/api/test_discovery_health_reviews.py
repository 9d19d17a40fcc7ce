"""Aggregated discovery, the health endpoints and the self reviews, over the
unix socket and over TLS with the admin and read-only tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import MagicMock

import aiohttp
import pytest

from control.api.aggregated import negotiated_version
from control.api.apiresources import SERVED
from control.api.server import _routes
from control.controlplane import ControlPlane
from control.kubeconfig import client_ssl_context, read_kubeconfig
from control.objects.kinds import RESOURCES

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v={};as=APIGroupDiscoveryList"
KUBECTL_ACCEPT = (
    "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


@pytest.fixture
async def sock(plane: ControlPlane) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.UnixConnector(path=str(plane.socket_path))
    async with aiohttp.ClientSession("http://localhost", connector=connector) as s:
        yield s


@pytest.fixture
async def tls(plane: ControlPlane) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """The TLS server's URL and a session trusting its CA, with no token."""
    target = read_kubeconfig(plane.kubeconfig_path)
    connector = aiohttp.TCPConnector(ssl=client_ssl_context(target.ca_pem))
    async with aiohttp.ClientSession(connector=connector) as s:
        yield target.server, s


def test_accept_negotiation() -> None:
    assert negotiated_version(KUBECTL_ACCEPT) == "v2"
    assert negotiated_version(AGGREGATED.format("v2beta1") + ",application/json") == "v2beta1"
    assert negotiated_version("application/json") is None
    assert negotiated_version("application/json, " + AGGREGATED.format("v2")) is None
    assert negotiated_version(AGGREGATED.format("v9")) is None
    assert negotiated_version("") is None


async def aggregated(sock: aiohttp.ClientSession, path: str, version: str) -> dict[str, Any]:
    async with sock.get(path, headers={"Accept": AGGREGATED.format(version)}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == AGGREGATED.format(version)
        doc: dict[str, Any] = await resp.json(content_type=None)
        return doc


@pytest.mark.parametrize("version", ["v2", "v2beta1"])
async def test_aggregated_discovery_lists_every_resource(
    sock: aiohttp.ClientSession, version: str
) -> None:
    core = await aggregated(sock, "/api", version)
    assert core["kind"] == "APIGroupDiscoveryList"
    assert core["apiVersion"] == f"apidiscovery.k8s.io/{version}"
    ((v1,),) = [g["versions"] for g in core["items"]]
    assert v1["version"] == "v1"
    pods = next(r for r in v1["resources"] if r["resource"] == "pods")
    assert pods["scope"] == "Namespaced" and pods["singularResource"] == "pod"
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["shortNames"] == ["po"] and "watch" in pods["verbs"]
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert set(subs) == {"attach", "binding", "eviction", "exec", "log", "status"}
    assert subs["eviction"]["responseKind"] == {
        "group": "policy",
        "version": "v1",
        "kind": "Eviction",
    }
    assert subs["log"]["verbs"] == ["get"]
    assert subs["attach"]["responseKind"]["kind"] == "PodAttachOptions"
    nodes = next(r for r in v1["resources"] if r["resource"] == "nodes")
    assert nodes["scope"] == "Cluster"
    namespaces = next(r for r in v1["resources"] if r["resource"] == "namespaces")
    assert {s["subresource"]: s["verbs"] for s in namespaces["subresources"]}["finalize"] == [
        "update"
    ]

    groups = await aggregated(sock, "/apis", version)
    served = {
        (g["metadata"]["name"], v["version"], r["resource"])
        for g in groups["items"]
        for v in g["versions"]
        for r in v["resources"]
    }
    # Every kind of the kind table, with nothing else to do when one is added.
    assert {(rt.group, rt.version, rt.plural) for rt in RESOURCES if rt.group} <= served
    assert {
        ("metrics.k8s.io", "v1beta1", "pods"),
        ("metrics.k8s.io", "v1beta1", "nodes"),
        ("authorization.k8s.io", "v1", "selfsubjectaccessreviews"),
        ("authentication.k8s.io", "v1", "selfsubjectreviews"),
    } <= served
    # policy/v1 is listed (kubectl drain looks for it) with no resources of its own.
    (policy,) = [g for g in groups["items"] if g["metadata"]["name"] == "policy"]
    assert policy["versions"] == [{"version": "v1", "resources": [], "freshness": "Current"}]
    apps = next(g for g in groups["items"] if g["metadata"]["name"] == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert [s["subresource"] for s in deploy["subresources"]] == ["scale", "status"]
    # A plain Accept still gets the plain documents.
    async with sock.get("/apis", headers={"Accept": "application/json"}) as resp:
        assert (await resp.json())["kind"] == "APIGroupList"


def test_every_listed_subresource_is_routed() -> None:
    router = _routes(MagicMock(), MagicMock())
    for r in SERVED:
        for sub in r.subresources:
            assert router.serves(sub.name, r.kind), (r.kind, sub.name)


async def test_plain_discovery_lists_metrics_and_pod_subresources(
    sock: aiohttp.ClientSession,
) -> None:
    async with sock.get("/apis") as resp:
        groups = {g["name"]: g for g in (await resp.json())["groups"]}
    assert groups["metrics.k8s.io"]["preferredVersion"]["groupVersion"] == "metrics.k8s.io/v1beta1"
    async with sock.get("/apis/metrics.k8s.io/v1beta1") as resp:
        metrics = {r["name"]: r for r in (await resp.json())["resources"]}
    assert metrics["pods"]["kind"] == "PodMetrics" and metrics["pods"]["namespaced"]
    assert metrics["nodes"]["verbs"] == ["get", "list"]
    async with sock.get("/api/v1") as resp:
        core = {r["name"]: r for r in (await resp.json())["resources"]}
    assert core["pods/eviction"]["group"] == "policy"
    assert core["pods/exec"]["kind"] == "PodExecOptions"
    assert core["pods/log"]["verbs"] == ["get"]
    assert core["pods/attach"]["kind"] == "PodAttachOptions"
    assert core["pods/attach"]["verbs"] == ["create", "get"]
    assert core["namespaces/finalize"] == {
        "name": "namespaces/finalize",
        "singularName": "",
        "namespaced": False,
        "kind": "Namespace",
        "verbs": ["update"],
    }
    assert groups["policy"]["preferredVersion"]["groupVersion"] == "policy/v1"
    async with sock.get("/apis/policy/v1") as resp:
        assert resp.status == 200
        policy = await resp.json()
    assert policy["groupVersion"] == "policy/v1" and policy["resources"] == []


async def test_health_endpoints_answer_without_credentials(
    tls: tuple[str, aiohttp.ClientSession],
) -> None:
    server, s = tls
    for endpoint in ("healthz", "livez", "readyz"):
        async with s.get(f"{server}/{endpoint}") as resp:
            assert (resp.status, await resp.text()) == (200, "ok")
        async with s.get(f"{server}/{endpoint}?verbose") as resp:
            lines = (await resp.text()).splitlines()
        assert lines[0] == "[+]ping ok" and "[+]store ok" in lines
        assert lines[-1] == f"{endpoint} check passed"
    async with s.get(f"{server}/readyz?verbose&exclude=store") as resp:
        assert "[+]store excluded: ok" in (await resp.text()).splitlines()
    async with s.get(f"{server}/livez/ping") as resp:
        assert (resp.status, await resp.text()) == (200, "ok")
    async with s.get(f"{server}/livez/nothing") as resp:
        assert resp.status == 404
    # Nothing else answers without a token, nor health with a wrong one.
    async with s.get(f"{server}/api/v1/namespaces") as resp:
        assert resp.status == 401
    async with s.get(f"{server}/healthz/../api/v1/namespaces") as resp:
        assert resp.status in (401, 404)
    async with s.get(f"{server}/healthz", headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401


async def test_readyz_fails_once_stopping(plane: ControlPlane, sock: aiohttp.ClientSession) -> None:
    assert plane.api is not None
    plane.api._stopping.set()
    async with sock.get("/readyz?verbose") as resp:
        assert resp.status == 500
        text = await resp.text()
    assert "[-]shutdown failed: reason withheld" in text and text.endswith("readyz check failed\n")
    async with sock.get("/livez") as resp:
        assert resp.status == 200


def ssar(verb: str, resource: str, subresource: str = "", group: str = "") -> dict[str, Any]:
    attrs = {"verb": verb, "resource": resource, "group": group, "namespace": "default"}
    if subresource:
        attrs["subresource"] = subresource
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attrs},
    }


async def test_self_reviews_for_both_roles(
    plane: ControlPlane, tls: tuple[str, aiohttp.ClientSession]
) -> None:
    server, s = tls
    admin = read_kubeconfig(plane.kubeconfig_path).token
    viewer = read_kubeconfig(plane.config.data_dir / "kubeconfig-readonly").token
    cases = [
        (ssar("create", "pods"), True, False),
        (ssar("list", "secrets"), True, False),
        (ssar("list", "configmaps"), True, True),
        (ssar("watch", "deployments", group="apps"), True, True),
        (ssar("delete", "pods"), True, False),
        (ssar("get", "pods", "log"), True, True),
        (ssar("get", "pods", "exec"), True, False),
        (ssar("create", "selfsubjectaccessreviews", group="authorization.k8s.io"), True, True),
        (
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}},
            },
            True,
            True,
        ),
    ]
    url = f"{server}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    for token, column in ((admin, 1), (viewer, 2)):
        headers = {"Authorization": f"Bearer {token}"}
        for case in cases:
            async with s.post(url, json=case[0], headers=headers) as resp:
                assert resp.status == 201
                review = await resp.json()
            assert review["status"]["allowed"] is case[column], (column, case[0])
            assert review["spec"] == case[0]["spec"]
        async with s.post(url, json={"spec": {}}, headers=headers) as resp:
            assert resp.status == 422
        async with s.post(
            f"{server}/apis/authentication.k8s.io/v1/selfsubjectreviews",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            headers=headers,
        ) as resp:
            assert resp.status == 201
            info = (await resp.json())["status"]["userInfo"]
        if token == admin:
            assert info == {
                "username": "admin",
                "groups": ["system:masters", "system:authenticated"],
            }
        else:
            assert info["username"] == "viewer"
            assert info["groups"] == ["pilothouse:readonly", "system:authenticated"]
    # The read-only role still may not write anything else.
    async with s.post(
        f"{server}/api/v1/namespaces/default/configmaps",
        json={"metadata": {"name": "x"}},
        headers={"Authorization": f"Bearer {viewer}"},
    ) as resp:
        assert resp.status == 403
