"""Dry run on every write verb: the answer is what would be stored, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from control.client import Client
from control.controlplane import ControlPlane
from control.errors import ApiError
from tests.api.test_rest import CM, DEPLOY, NS, POD, SVC, deployment, pod

DRY = {"dryRun": "All"}
# What `kubectl delete --dry-run=server` sends.
KUBECTL_DRY_DELETE = {
    "kind": "DeleteOptions",
    "apiVersion": "v1",
    "dryRun": ["All"],
    "propagationPolicy": "Background",
}
DEPLOY_PATH = "/apis/apps/v1/namespaces/default/deployments/web"
POD_PATH = "/api/v1/namespaces/default/pods"


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


async def bound_pod(client: Client, name: str) -> dict[str, Any]:
    body = pod(name)
    body["spec"]["nodeName"] = "node-1"
    return await client.create(POD, body)


async def test_dry_run_delete_with_options_in_the_body_deletes_nothing(client: Client) -> None:
    created = await client.create(DEPLOY, deployment("web"))
    answer = await client.request("DELETE", DEPLOY_PATH, body=KUBECTL_DRY_DELETE)
    assert answer["kind"] == "Status" and answer["status"] == "Success"
    assert answer["details"]["name"] == "web"
    still = await client.get(DEPLOY, "web", "default")
    assert still["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_dry_run_delete_of_a_bound_pod_answers_the_would_be_pod(client: Client) -> None:
    created = await bound_pod(client, "p")
    answer = await client.request("DELETE", f"{POD_PATH}/p", body=KUBECTL_DRY_DELETE)
    assert answer["kind"] == "Pod"
    assert answer["metadata"]["deletionTimestamp"]
    assert answer["metadata"]["deletionGracePeriodSeconds"] == 30
    assert answer["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    stored = await client.get(POD, "p", "default")
    assert "deletionTimestamp" not in stored["metadata"]
    assert stored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_dry_run_delete_collection_deletes_nothing(client: Client) -> None:
    for name in ("a", "b", "c"):
        await client.create(CM, configmap(name))
    path = "/api/v1/namespaces/default/configmaps"
    answer = await client.request("DELETE", path, params=DRY)
    assert sorted(i["metadata"]["name"] for i in answer["items"]) == ["a", "b", "c"]
    answer = await client.request("DELETE", path, body=KUBECTL_DRY_DELETE)
    assert len(answer["items"]) == 3
    assert len((await client.list(CM, "default"))["items"]) == 3


async def test_dry_run_binding_binds_nothing(client: Client) -> None:
    await client.create(POD, pod("p"))
    binding = {"apiVersion": "v1", "kind": "Binding", "target": {"name": "node-1"}}
    answer = await client.request("POST", f"{POD_PATH}/p/binding", params=DRY, body=binding)
    assert answer["status"] == "Success"
    assert not (await client.get(POD, "p", "default"))["spec"].get("nodeName")
    await client.request("POST", f"{POD_PATH}/p/binding", body=binding)
    assert (await client.get(POD, "p", "default"))["spec"]["nodeName"] == "node-1"


async def test_dry_run_update_and_patch_answer_what_would_be_stored(client: Client) -> None:
    created = await client.create(DEPLOY, deployment("web", 2))
    rv = created["metadata"]["resourceVersion"]
    patched = await client.request(
        "PATCH",
        DEPLOY_PATH,
        params=DRY,
        body={"spec": {"replicas": 5}},
        content_type="application/merge-patch+json",
    )
    assert patched["spec"]["replicas"] == 5
    assert patched["metadata"]["generation"] == 2
    assert patched["metadata"]["resourceVersion"] == rv

    changed = {**created, "spec": {**created["spec"], "replicas": 7}}
    put = await client.request("PUT", DEPLOY_PATH, params=DRY, body=changed)
    assert put["spec"]["replicas"] == 7 and put["metadata"]["generation"] == 2
    assert put["metadata"]["resourceVersion"] == rv

    status = {**created, "status": {"replicas": 3}}
    put = await client.request("PUT", f"{DEPLOY_PATH}/status", params=DRY, body=status)
    assert put["status"] == {"replicas": 3}

    scale = await client.request(
        "PATCH",
        f"{DEPLOY_PATH}/scale",
        params=DRY,
        body={"spec": {"replicas": 9}},
        content_type="application/merge-patch+json",
    )
    assert scale["spec"]["replicas"] == 9

    stored = await client.get(DEPLOY, "web", "default")
    assert stored["spec"]["replicas"] == 2 and stored["metadata"]["generation"] == 1
    assert stored["metadata"]["resourceVersion"] == rv
    assert "replicas" not in (stored.get("status") or {})


async def test_dry_run_create_stores_and_allocates_nothing(
    plane: ControlPlane, client: Client
) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}]},
    }
    answer = await client.request(
        "POST", "/api/v1/namespaces/default/services", params=DRY, body=svc
    )
    ip = answer["spec"]["clusterIP"]
    assert ip and answer["metadata"]["uid"] and answer["metadata"]["generation"] == 1
    assert (await client.list(SVC, "default"))["items"] == []
    assert await plane.registry.store.get(f"/registry/ipaddresses/{ip}") is None
    # The address is still free for a real Service to ask for.
    real = await client.create(SVC, {**svc, "spec": {**svc["spec"], "clusterIP": ip}})
    assert real["spec"]["clusterIP"] == ip

    await client.request("POST", POD_PATH, params=DRY, body=pod("p"))
    assert (await client.list(POD, "default"))["items"] == []


async def test_dry_run_namespace_delete_keeps_it_and_its_contents(client: Client) -> None:
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}})
    await client.create(CM, configmap("c"), "t")
    answer = await client.request("DELETE", "/api/v1/namespaces/t", params=DRY)
    # The namespace as the delete would leave it: Terminating (control.api.namespaces).
    assert answer["kind"] == "Namespace" and answer["status"]["phase"] == "Terminating"
    await client.get(NS, "t")
    assert len((await client.list(CM, "t"))["items"]) == 1


async def test_dry_run_eviction_evicts_nothing(client: Client) -> None:
    await bound_pod(client, "p")
    eviction: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "p"},
        "deleteOptions": {"dryRun": ["All"]},
    }
    await client.request("POST", f"{POD_PATH}/p/eviction", body=eviction)
    del eviction["deleteOptions"]
    await client.request("POST", f"{POD_PATH}/p/eviction", params=DRY, body=eviction)
    assert "deletionTimestamp" not in (await client.get(POD, "p", "default"))["metadata"]


async def test_unsupported_dry_run_values_are_invalid(client: Client) -> None:
    with pytest.raises(ApiError) as exc:
        await client.request("POST", POD_PATH, params={"dryRun": "Some"}, body=pod("p"))
    assert exc.value.code == 422 and [c.field for c in exc.value.causes] == ["dryRun"]
    await client.create(CM, configmap("c"))
    with pytest.raises(ApiError) as exc:
        await client.request(
            "DELETE", "/api/v1/namespaces/default/configmaps/c", body={"dryRun": ["Some"]}
        )
    assert exc.value.code == 422 and [c.field for c in exc.value.causes] == ["dryRun"]
    assert (await client.list(POD, "default"))["items"] == []
    await client.get(CM, "c", "default")
