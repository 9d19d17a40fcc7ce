"""What the read-only role may not see or do, said in Kubernetes' words; the
self reviews agree with what is enforced; Secret values reach no log."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest

from control.api.apiresources import SERVED
from control.client import PATCH_TYPES, Client
from control.controlplane import ControlPlane
from control.kubeconfig import client_ssl_context, read_kubeconfig
from control.objects.kinds import EVENT, POD, RESOURCES, SECRET
from control.wire import IMAGE_IMPORT_PATH, MESSAGE_HEADER, V5
from tests.cluster import hollow_cluster, make_pod


@pytest.fixture
async def viewer(plane: ControlPlane) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """The TLS server's URL and a session with the read-only token."""
    ro = read_kubeconfig(plane.config.data_dir / "kubeconfig-readonly")
    connector = aiohttp.TCPConnector(ssl=client_ssl_context(ro.ca_pem))
    headers = {"Authorization": f"Bearer {ro.token}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as s:
        yield ro.server, s


def forbidden(message: str, kind: str, name: str = "", group: str = "") -> dict[str, Any]:
    """kube-apiserver's Status for an authorizer's denial."""
    details: dict[str, Any] = {"group": group, "kind": kind}
    if name:
        details["name"] = name
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


async def _answer(s: aiohttp.ClientSession, method: str, url: str) -> tuple[int, Any]:
    async with s.request(method, url, json={} if method in ("POST", "PUT") else None) as resp:
        return resp.status, await resp.json(content_type=None)


def _without_empty(status: dict[str, Any]) -> dict[str, Any]:
    details = {k: v for k, v in (status.get("details") or {}).items() if v}
    return {**status, "details": {"group": "", **details}}


async def test_the_readonly_role_reads_no_secrets(
    plane: ControlPlane, viewer: tuple[str, aiohttp.ClientSession]
) -> None:
    async with Client(str(plane.socket_path)) as admin:
        await admin.create(SECRET, {"metadata": {"name": "db"}, "stringData": {"pw": "hunter2"}})
    server, s = viewer
    user = 'User "viewer"'
    cases = [
        (
            "/api/v1/namespaces/default/secrets",
            f'secrets is forbidden: {user} cannot list resource "secrets" in API group "" '
            'in the namespace "default"',
            "",
        ),
        (
            "/api/v1/namespaces/default/secrets?watch=1",
            f'secrets is forbidden: {user} cannot watch resource "secrets" in API group "" '
            'in the namespace "default"',
            "",
        ),
        (
            "/api/v1/namespaces/default/secrets/db",
            f'secrets "db" is forbidden: {user} cannot get resource "secrets" in API group "" '
            'in the namespace "default"',
            "db",
        ),
        (
            "/api/v1/secrets",
            f'secrets is forbidden: {user} cannot list resource "secrets" in API group "" '
            "at the cluster scope",
            "",
        ),
    ]
    for path, message, name in cases:
        status, body = await _answer(s, "GET", server + path)
        assert (status, _without_empty(body)) == (403, forbidden(message, "secrets", name)), path
        assert "hunter2" not in str(body)
    # Everything else stays readable.
    for path in ("/api/v1/namespaces/default/configmaps", "/api/v1/namespaces/default"):
        assert (await _answer(s, "GET", server + path))[0] == 200, path


# Refused requests of the read-only role: "METHOD PATH | kind,name,group | message".
REFUSALS = """\
POST /api/v1/namespaces/default/pods | pods,, | pods is forbidden: User "viewer" cannot create resource "pods" in API group "" in the namespace "default"
DELETE /api/v1/nodes/n1 | nodes,n1, | nodes "n1" is forbidden: User "viewer" cannot delete resource "nodes" in API group "" at the cluster scope
PUT /api/v1/namespaces/default/pods/web/status | pods,web, | pods "web" is forbidden: User "viewer" cannot update resource "pods/status" in API group "" in the namespace "default"
PATCH /apis/apps/v1/namespaces/team/deployments/web/scale | deployments,web,apps | deployments.apps "web" is forbidden: User "viewer" cannot patch resource "deployments/scale" in API group "apps" in the namespace "team"
POST /api/v1/namespaces/default/pods/web/exec | pods,web, | pods "web" is forbidden: User "viewer" cannot create resource "pods/exec" in API group "" in the namespace "default"
DELETE /api/v1/namespaces/default/configmaps | configmaps,, | configmaps is forbidden: User "viewer" cannot deletecollection resource "configmaps" in API group "" in the namespace "default"
"""


async def test_refusals_in_kubernetes_words(viewer: tuple[str, aiohttp.ClientSession]) -> None:
    server, s = viewer
    for line in REFUSALS.splitlines():
        request, details, message = line.split(" | ")
        method, path = request.split()
        kind, name, group = details.split(",")
        status, body = await _answer(s, method, server + path)
        assert (status, _without_empty(body)) == (403, forbidden(message, kind, name, group))
    status, body = await _answer(s, "POST", server + IMAGE_IMPORT_PATH)
    assert status == 403
    assert body["message"] == f'forbidden: User "viewer" cannot post path "{IMAGE_IMPORT_PATH}"'


async def test_exec_refusal_in_kubernetes_words(
    viewer: tuple[str, aiohttp.ClientSession],
) -> None:
    server, s = viewer
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await s.ws_connect(
            f"{server}/api/v1/namespaces/default/pods/web/exec?command=sh&stdout=true",
            protocols=(V5,),
        )
    assert e.value.status == 403
    assert unquote((e.value.headers or {}).get(MESSAGE_HEADER, "")) == (
        'pods "web" is forbidden: User "viewer" cannot create resource "pods/exec" '
        'in API group "" in the namespace "default"'
    )


async def _reviews(
    s: aiohttp.ClientSession, server: str, attributes: dict[str, str]
) -> tuple[bool, list[dict[str, Any]]]:
    async with s.post(
        f"{server}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        json={"spec": {"resourceAttributes": attributes}},
    ) as resp:
        allowed = (await resp.json())["status"]["allowed"]
    async with s.post(
        f"{server}/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        json={"spec": {"namespace": "default"}},
    ) as resp:
        rules = (await resp.json())["status"]["resourceRules"]
    return allowed, rules


def _covered(rules: list[dict[str, Any]], verb: str, group: str, resource: str) -> bool:
    return any(
        verb in r["verbs"]
        and (group in r["apiGroups"] or "*" in r["apiGroups"])
        and (resource in r["resources"] or "*" in r["resources"])
        for r in rules
    )


async def test_self_reviews_agree_with_what_is_enforced(
    viewer: tuple[str, aiohttp.ClientSession],
) -> None:
    server, s = viewer
    for rt in RESOURCES:
        path = rt.base_path("default" if rt.namespaced else None)
        for verb, query in (("list", ""), ("watch", "?watch=1")):
            async with s.get(server + path + query) as resp:
                enforced = resp.status != 403  # a watch's stream is left unread
            attributes = {"verb": verb, "group": rt.group, "resource": rt.plural}
            allowed, rules = await _reviews(s, server, attributes)
            assert allowed is enforced, (verb, rt.plural)
            assert _covered(rules, verb, rt.group, rt.plural) is enforced, (verb, rt.plural)
            assert enforced is (rt.plural != "secrets")
    # The rules name every readable resource and subresource, and no Secret.
    _, rules = await _reviews(s, server, {"verb": "get", "resource": "pods"})
    named = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert ("", "pods/log") in named and ("apps", "deployments/scale") in named
    assert ("metrics.k8s.io", "pods") in named
    assert not {("", "secrets"), ("", "pods/exec"), ("", "pods/attach"), ("*", "*")} & named
    assert {r.group for r in SERVED} <= {g for g, _ in named}


MARKER = "marker-7f3a9c-never-logged"


async def test_secret_values_reach_no_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A Secret used by a pod's env, envFrom and a volume on a hollow node,
    then writes of it that fail: the value is in no log line, Event or status."""
    caplog.set_level(logging.DEBUG)
    encoded = base64.b64encode(MARKER.encode()).decode()
    secret = {"metadata": {"name": "db"}, "stringData": {"pw": MARKER}}
    async with hollow_cluster(tmp_path, nodes=1, listen="127.0.0.1:0") as cluster:
        await cluster.wait_nodes_ready()
        async with cluster.client() as c:
            await c.create(SECRET, secret)
            pod = make_pod("web", "node-1")
            ref = {"name": "db", "key": "pw"}
            pod["spec"]["containers"][0]["env"] = [
                {"name": "PW", "valueFrom": {"secretKeyRef": ref}}
            ]
            pod["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "db"}}]
            pod["spec"]["volumes"] = [{"name": "s", "secret": {"secretName": "db"}}]
            await c.create(POD, pod)
            await cluster.wait_pod_running("web")
            stored = await c.get(SECRET, "db", "default")
            failing: list[tuple[str, dict[str, Any]]] = [
                ("PUT", {**stored, "data": {"pw": MARKER + "!"}}),  # not base64
                ("PUT", {**stored, "data": {"bad key": encoded}}),  # an invalid key
                ("PUT", {**stored, "metadata": {**stored["metadata"], "resourceVersion": "1"}}),
                ("PATCH", {"data": {"pw": 7}, "stringData": {"x": MARKER}}),  # data not a string
            ]
            path = c.path(SECRET, "default", "db")
            for method, body in failing:
                status, answer = await c.request_raw(
                    method,
                    path,
                    body=body,
                    **({"content_type": PATCH_TYPES["merge"]} if method == "PATCH" else {}),
                )
                assert status in (409, 422), (status, answer)
                assert MARKER.encode() not in answer and encoded.encode() not in answer
            status, answer = await c.request_raw("POST", "/api/v1/namespaces/default/secrets")
            assert status == 400 and MARKER.encode() not in answer
            events = await c.list(EVENT, "default")
            pods = await c.list(POD, "default")
    seen = json.dumps([events, pods]) + caplog.text
    assert caplog.text and MARKER not in seen and encoded not in seen
