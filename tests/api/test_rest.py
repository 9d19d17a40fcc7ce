"""The API server's REST behaviour, against an in-process control plane over its unix socket."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import stat
from typing import Any

import aiohttp
import pytest

from control.client import Client
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.kubeconfig import client_ssl_context
from control.objects.kinds import by_name

POD = by_name("pods")
DEPLOY = by_name("deployments")
SVC = by_name("services")
CM = by_name("configmaps")
NS = by_name("namespaces")
assert POD and DEPLOY and SVC and CM and NS


def pod(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "pilothouse/busybox"}]},
    }


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "pilothouse/busybox"}]},
            },
        },
    }


async def test_discovery(client: Client) -> None:
    assert (await client.request("GET", "/api"))["versions"] == ["v1"]
    core = await client.request("GET", "/api/v1")
    names = {r["name"] for r in core["resources"]}
    assert {
        "pods",
        "pods/status",
        "services",
        "nodes",
        "namespaces",
        "events",
        "endpoints",
    } <= names
    groups = {g["name"] for g in (await client.request("GET", "/apis"))["groups"]}
    assert groups == {
        "apps",
        "discovery.k8s.io",
        "networking.k8s.io",
        "gateway.networking.k8s.io",
        "coordination.k8s.io",
        "batch",
        "metrics.k8s.io",
        "authorization.k8s.io",
        "authentication.k8s.io",
        "policy",
    }
    apps = await client.request("GET", "/apis/apps/v1")
    assert "deployments/scale" in {r["name"] for r in apps["resources"]}
    net = await client.request("GET", "/apis/networking.k8s.io/v1")
    assert [r["kind"] for r in net["resources"] if r["name"] == "ingresses"] == ["Ingress"]
    disc = await client.request("GET", "/apis/discovery.k8s.io/v1")
    (slices,) = [r for r in disc["resources"] if r["name"] == "endpointslices"]
    assert slices["kind"] == "EndpointSlice" and slices["namespaced"]
    assert "shortNames" not in slices
    assert (await client.request("GET", "/version"))["major"] == "1"


async def test_create_get_delete_and_errors(client: Client) -> None:
    created = await client.create(POD, pod("a"))
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    assert created["spec"]["restartPolicy"] == "Always"
    assert created["status"] == {"phase": "Pending"}
    assert (await client.get(POD, "a", "default"))["metadata"]["uid"] == meta["uid"]

    with pytest.raises(ApiError) as exc:
        await client.create(POD, pod("a"))
    assert (exc.value.code, exc.value.reason) == (409, "AlreadyExists")
    assert exc.value.message == 'pods "a" already exists'

    await client.delete(POD, "a", "default")
    with pytest.raises(ApiError) as exc:
        await client.get(POD, "a", "default")
    assert (exc.value.code, exc.value.reason) == (404, "NotFound")

    with pytest.raises(ApiError) as exc:
        await client.create(POD, pod("b"), "nowhere")
    assert exc.value.code == 404 and 'namespaces "nowhere" not found' in exc.value.message


async def test_invalid_object_names_fields_and_stores_nothing(client: Client) -> None:
    before = (await client.list(POD, "default"))["metadata"]["resourceVersion"]
    bad = deployment("web")
    bad["spec"]["replicas"] = -1
    del bad["spec"]["template"]["spec"]["containers"][0]["image"]
    with pytest.raises(ApiError) as exc:
        await client.create(DEPLOY, bad)
    err = exc.value
    assert err.code == 422 and err.reason == "Invalid"
    fields = {c.field: c.message for c in err.causes}
    assert fields["spec.replicas"] == "must be >= 0"
    assert fields["spec.template.spec.containers[0].image"] == "required"
    after = (await client.list(POD, "default"))["metadata"]["resourceVersion"]
    assert after == before
    assert (await client.list(DEPLOY, "default"))["items"] == []


async def test_concurrent_updates_with_same_resource_version(client: Client) -> None:
    cm = await client.create(
        CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "0"}}
    )

    async def put(value: str) -> str:
        body = {**cm, "data": {"k": value}}
        try:
            await client.replace(CM, body)
        except ApiError as e:
            return f"{e.code} {e.reason}"
        return "ok"

    results = await asyncio.gather(*(put(str(i)) for i in range(1, 9)))
    assert results.count("ok") == 1
    assert sorted(set(results) - {"ok"}) == ["409 Conflict"]


async def test_update_keeps_server_fields_and_bumps_generation(client: Client) -> None:
    d = await client.create(DEPLOY, deployment("web"))
    assert d["metadata"]["generation"] == 1
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "pilothouse/busybox:v2"
    # A forged uid is refused, as Kubernetes' ObjectMeta update validation does.
    with pytest.raises(ApiError) as forged:
        await client.replace(DEPLOY, {**d, "metadata": {**d["metadata"], "uid": "forged"}})
    assert (forged.value.code, forged.value.causes[0].field) == (422, "metadata.uid")
    d["status"] = {"replicas": 99}
    updated = await client.replace(DEPLOY, d)
    assert updated["metadata"]["generation"] == 2
    assert updated["metadata"]["uid"] != "forged"
    assert "replicas" not in (updated.get("status") or {})  # status changes only through /status

    status = {**updated, "status": {"replicas": 2, "readyReplicas": 1}}
    status["spec"] = {**updated["spec"], "replicas": 7}
    after = await client.replace(DEPLOY, status, sub="status")
    assert after["status"] == {"replicas": 2, "readyReplicas": 1}
    assert after["spec"]["replicas"] == 2 and after["metadata"]["generation"] == 2


async def test_patches(client: Client) -> None:
    await client.create(DEPLOY, deployment("web"))
    merged = await client.patch(DEPLOY, "web", {"metadata": {"labels": {"team": "a"}}}, "default")
    assert merged["metadata"]["labels"] == {"team": "a"}
    ops = [
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
    ]
    patched = await client.patch(DEPLOY, "web", ops, "default", patch_type="json")
    assert patched["spec"]["replicas"] == 5 and patched["metadata"]["labels"]["tier"] == "web"
    smp = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "busybox:2"}]}}}}
    strategic = await client.patch(DEPLOY, "web", smp, "default", patch_type="strategic")
    containers = strategic["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("web", "busybox:2")]
    with pytest.raises(ApiError) as exc:
        await client.patch(
            DEPLOY,
            "web",
            [{"op": "test", "path": "/spec/replicas", "value": 1}],
            "default",
            patch_type="json",
        )
    assert exc.value.code == 422
    with pytest.raises(ApiError) as exc:
        await client.patch(DEPLOY, "web", {"spec": {"replicas": -3}}, "default")
    assert exc.value.code == 422 and exc.value.causes[0].field == "spec.replicas"


async def test_scale_subresource(client: Client) -> None:
    await client.create(DEPLOY, deployment("web", 2))
    scale = await client.request("GET", "/apis/apps/v1/namespaces/default/deployments/web/scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    assert scale["status"]["selector"] == "app=web"
    await client.scale(DEPLOY, "web", 4, "default")
    assert (await client.get(DEPLOY, "web", "default"))["spec"]["replicas"] == 4
    put = {**scale, "spec": {"replicas": 6}}
    with pytest.raises(ApiError) as exc:  # stale resourceVersion
        await client.request(
            "PUT", "/apis/apps/v1/namespaces/default/deployments/web/scale", body=put
        )
    assert exc.value.reason == "Conflict"
    del put["metadata"]["resourceVersion"]
    await client.request("PUT", "/apis/apps/v1/namespaces/default/deployments/web/scale", body=put)
    assert (await client.get(DEPLOY, "web", "default"))["spec"]["replicas"] == 6
    with pytest.raises(ApiError) as exc:
        await client.scale(DEPLOY, "web", -1, "default")
    assert exc.value.code == 422


async def test_cluster_ips_are_unique_and_freed(plane: ControlPlane, client: Client) -> None:
    cidr = ipaddress.ip_network(plane.config.network.service_cidr)

    def svc(name: str, ip: str | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"selector": {"app": name}, "ports": [{"port": 80}]}
        if ip:
            spec["clusterIP"] = ip
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}

    made = await asyncio.gather(*(client.create(SVC, svc(f"s{i}")) for i in range(30)))
    ips = [m["spec"]["clusterIP"] for m in made]
    assert len(set(ips)) == 30 and all(ipaddress.ip_address(ip) in cidr for ip in ips)
    assert made[0]["spec"]["ports"][0]["targetPort"] == 80

    fixed = str(cidr.network_address + 10)
    await client.create(SVC, svc("dns", fixed))
    with pytest.raises(ApiError) as exc:
        await client.create(SVC, svc("dns2", fixed))
    assert exc.value.code == 422 and "already allocated" in exc.value.message
    await client.delete(SVC, "dns", "default")
    again = await client.create(SVC, svc("dns2", fixed))
    assert again["spec"]["clusterIP"] == fixed

    taken = ips[0]
    await client.delete(SVC, "s0", "default")
    reuse = await client.create(SVC, svc("reuse", taken))
    assert reuse["spec"]["clusterIP"] == taken


async def test_selectors_and_paging(client: Client) -> None:
    for i in range(25):
        await client.create(POD, pod(f"p{i:02d}", {"app": "web", "shard": str(i % 3)}))
    await client.create(POD, pod("other", {"app": "db"}))
    assert len((await client.list(POD, "default", label_selector="app=web"))["items"]) == 25
    shard = await client.list(POD, "default", label_selector="app=web,shard in (0,1)")
    assert len(shard["items"]) == 17
    named = await client.list(POD, "default", field_selector="metadata.name=p03")
    assert [p["metadata"]["name"] for p in named["items"]] == ["p03"]

    seen: list[str] = []
    token = None
    while True:
        page = await client.list(
            POD, "default", label_selector="app=web", limit=10, continue_token=token
        )
        assert len(page["items"]) <= 10
        seen += [p["metadata"]["name"] for p in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert seen == [f"p{i:02d}" for i in range(25)]
    with pytest.raises(ApiError) as exc:
        await client.list(POD, "default", label_selector="app in (")
    assert exc.value.code == 400


async def test_watch_replays_from_old_revision_in_order(client: Client) -> None:
    first = await client.create(
        CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w0"}}
    )
    start = first["metadata"]["resourceVersion"]
    for i in range(1, 6):
        await client.create(
            CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"w{i}"}}
        )
    await client.patch(CM, "w1", {"data": {"x": "1"}}, "default")
    await client.delete(CM, "w2", "default")

    events: list[tuple[str, str]] = []
    revisions: list[int] = []

    async def collect() -> None:
        async for kind, obj in client.watch(CM, "default", resource_version=start):
            events.append((kind, obj["metadata"]["name"]))
            revisions.append(int(obj["metadata"]["resourceVersion"]))
            if len(events) == 8:
                return

    task = asyncio.create_task(collect())
    await asyncio.sleep(0.1)
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "live"}})
    await asyncio.wait_for(task, 10)
    assert events == [("ADDED", f"w{i}") for i in range(1, 6)] + [
        ("MODIFIED", "w1"),
        ("DELETED", "w2"),
        ("ADDED", "live"),
    ]
    assert revisions == sorted(revisions) and len(set(revisions)) == 8


async def test_watch_from_compacted_revision_is_gone(plane: ControlPlane, client: Client) -> None:
    first = await client.create(
        CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    )
    for i in range(5):
        await client.patch(CM, "a", {"data": {"i": str(i)}}, "default")
    await plane.store.compact(await plane.store.revision() - 1)
    with pytest.raises(ApiError) as exc:
        async for _ in client.watch(
            CM, "default", resource_version=first["metadata"]["resourceVersion"]
        ):
            pass
    assert exc.value.code == 410 and exc.value.reason == "Expired"


async def test_watch_with_selector_reports_objects_leaving_it(client: Client) -> None:
    await client.create(POD, pod("keep", {"app": "web"}))
    await client.create(POD, pod("move", {"app": "web"}))
    events: list[tuple[str, str]] = []

    async def collect() -> None:
        async for kind, obj in client.watch(POD, "default", label_selector="app=web"):
            events.append((kind, obj["metadata"]["name"]))
            if len(events) == 3:
                return

    task = asyncio.create_task(collect())
    await asyncio.sleep(0.1)
    await client.patch(POD, "move", {"metadata": {"labels": {"app": "db"}}}, "default")
    await asyncio.wait_for(task, 10)
    assert events == [("ADDED", "keep"), ("ADDED", "move"), ("DELETED", "move")]


async def test_unix_socket_is_private(plane: ControlPlane) -> None:
    mode = stat.S_IMODE(os.stat(plane.socket_path).st_mode)
    assert mode == 0o600


async def test_tls_tokens_and_roles(plane: ControlPlane) -> None:
    from control.kubeconfig import read_kubeconfig

    target = read_kubeconfig(plane.kubeconfig_path)
    ro = read_kubeconfig(plane.config.data_dir / "kubeconfig-readonly")
    assert target.server.startswith("https://127.0.0.1:")
    async with Client(target.server, ca_pem=target.ca_pem, token=target.token) as admin:
        await admin.create(POD, pod("tls"))
    async with Client(ro.server, ca_pem=ro.ca_pem, token=ro.token) as reader:
        assert [p["metadata"]["name"] for p in (await reader.list(POD, "default"))["items"]] == [
            "tls"
        ]
        with pytest.raises(ApiError) as exc:
            await reader.create(POD, pod("nope"))
        assert exc.value.code == 403
    async with Client(target.server, ca_pem=target.ca_pem, token="wrong") as stranger:
        with pytest.raises(ApiError) as exc:
            await stranger.list(POD, "default")
        assert exc.value.code == 401
    # Without the CA, the server's certificate is not trusted.
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await s.get(target.server + "/version", ssl=client_ssl_context(None))


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
async def test_immutable_data_cannot_change(client: Client, kind: str) -> None:
    rt = by_name(kind.lower())
    assert rt is not None
    obj = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": "frozen", "namespace": "default"},
        "data": {"k": "dg==" if kind == "Secret" else "v"},
        "immutable": True,
    }
    created = await client.create(rt, obj)
    changed = {**created, "data": {"k": "dzI=" if kind == "Secret" else "w2"}}
    with pytest.raises(ApiError) as exc:
        await client.replace(rt, changed)
    assert exc.value.code == 422
    assert "data: field is immutable when `immutable` is set" in exc.value.message
    with pytest.raises(ApiError) as exc:
        await client.replace(rt, {**created, "immutable": False})
    assert "immutable: field is immutable" in exc.value.message
    # Labels may still change; the data is what was stored.
    relabelled = {**created, "metadata": {**created["metadata"], "labels": {"a": "b"}}}
    after = await client.replace(rt, relabelled)
    assert after["data"] == obj["data"] and after["metadata"]["labels"] == {"a": "b"}
