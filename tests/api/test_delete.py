"""DELETE as Kubernetes does it: DeleteOptions from the body or the query,
propagation policies, where delete collection is served, and the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from control.client import Client
from control.errors import ApiError
from control.objects.kinds import REPLICASET
from tests.api.test_dry_run import configmap
from tests.api.test_rest import CM, DEPLOY, NS, POD, SVC, deployment, pod
from tests.conftest import running_plane
from tests.polling import eventually

CM_PATH = "/api/v1/namespaces/default/configmaps"


async def test_delete_answers_a_status_or_the_object_as_kubernetes_does(client: Client) -> None:
    cm = await client.create(CM, configmap("c"))
    assert await client.request("DELETE", f"{CM_PATH}/c") == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "c", "kind": "configmaps", "uid": cm["metadata"]["uid"]},
    }
    d = await client.create(DEPLOY, deployment("web"))
    answer = await client.delete(DEPLOY, "web", "default")
    assert answer["details"] == {
        "name": "web",
        "group": "apps",
        "kind": "deployments",
        "uid": d["metadata"]["uid"],
    }
    # Pods and Services answer with the deleted object.
    await client.create(POD, pod("p"))
    assert (await client.delete(POD, "p", "default"))["kind"] == "Pod"
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}]},
    }
    await client.create(SVC, svc)
    assert (await client.delete(SVC, "s", "default"))["kind"] == "Service"
    # A deletion that is pending answers with the object as it stays.
    held = configmap("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await client.create(CM, held)
    pending = await client.delete(CM, "held", "default")
    assert pending["kind"] == "ConfigMap" and pending["metadata"]["deletionTimestamp"]


async def test_delete_collection_only_where_kubernetes_serves_it(client: Client) -> None:
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"}})
    await client.create(CM, configmap("a"))
    await client.create(CM, configmap("b"), "t")
    for path in ("/api/v1/configmaps", "/api/v1/namespaces", "/apis/apps/v1/deployments"):
        with pytest.raises(ApiError) as exc:
            await client.request("DELETE", path)
        assert (exc.value.code, exc.value.reason) == (405, "MethodNotAllowed"), path
    assert len((await client.list(CM))["items"]) == 2
    await client.get(NS, "t")
    verbs = {r["name"]: r["verbs"] for r in (await client.request("GET", "/api/v1"))["resources"]}
    assert "deletecollection" not in verbs["namespaces"]
    assert "deletecollection" in verbs["configmaps"]

    answer = await client.request("DELETE", CM_PATH)
    assert [i["metadata"]["name"] for i in answer["items"]] == ["a"]
    assert [c["metadata"]["name"] for c in (await client.list(CM))["items"]] == ["b"]
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    await client.request("POST", "/api/v1/nodes", body=node)
    await client.request("DELETE", "/api/v1/nodes")  # cluster-scoped: served at the root
    assert (await client.request("GET", "/api/v1/nodes"))["items"] == []


async def test_preconditions_and_bad_delete_options(client: Client) -> None:
    cm = await client.create(CM, configmap("c"))
    for pre in ({"uid": "other"}, {"resourceVersion": "1"}):
        with pytest.raises(ApiError) as exc:
            await client.request("DELETE", f"{CM_PATH}/c", body={"preconditions": pre})
        assert exc.value.code == 409
    bad: list[tuple[dict[str, Any], dict[str, str] | None, int, str]] = [
        ({"preconditions": "x"}, None, 400, "preconditions"),
        ({"gracePeriodSeconds": "soon"}, None, 400, "gracePeriodSeconds"),
        ({"dryRun": "All"}, None, 400, "dryRun"),
        ({"orphanDependents": "yes"}, None, 400, "orphanDependents"),
        ({"kind": "Pod"}, None, 400, "kind"),
        ({}, {"gracePeriodSeconds": "soon"}, 400, "gracePeriodSeconds"),
        ({"propagationPolicy": "Sideways"}, None, 422, "propagationPolicy"),
        ({"propagationPolicy": "Orphan", "orphanDependents": True}, None, 422, "propagationPolicy"),
    ]
    for body, params, code, field in bad:
        with pytest.raises(ApiError) as exc:
            await client.request("DELETE", f"{CM_PATH}/c", body=body or None, params=params)
        assert exc.value.code == code, body
        assert field in exc.value.message, (body, exc.value.message)
    uid = cm["metadata"]["uid"]
    await client.request("DELETE", f"{CM_PATH}/c", body={"preconditions": {"uid": uid}})


async def test_foreground_delete_waits_in_an_api_server_alone(client: Client) -> None:
    """Without a garbage collector, the finalizer stays, as in Kubernetes."""
    await client.create(DEPLOY, deployment("web"))
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    answer = await client.request("DELETE", path, params={"propagationPolicy": "Foreground"})
    assert answer["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert answer["metadata"]["deletionTimestamp"]
    # Deleting again with another policy changes the finalizer.
    again = await client.request("DELETE", path, body={"propagationPolicy": "Orphan"})
    assert again["metadata"]["finalizers"] == ["orphan"]
    # And Background lets it go.
    gone = await client.request("DELETE", path, body={"propagationPolicy": "Background"})
    assert gone["kind"] == "Status"


async def _replicasets(client: Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.list(REPLICASET, "default"))["items"]
    return items


async def _pods(client: Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.list(POD, "default"))["items"]
    return items


async def _exists(client: Client, name: str) -> bool:
    try:
        await client.get(DEPLOY, name, "default")
    except ApiError as e:
        if e.code == 404:
            return False
        raise
    return True


async def test_orphan_and_foreground_with_the_garbage_collector(tmp_path: Path) -> None:
    async with running_plane(tmp_path) as plane, Client(str(plane.socket_path)) as client:
        await client.create(DEPLOY, deployment("web", 2))

        async def started() -> bool:
            rss = await _replicasets(client)
            return len(rss) == 1 and len(await _pods(client)) == 2

        await eventually(started, "the deployment's ReplicaSet and pods", within=10.0)
        rs = (await _replicasets(client))[0]
        path = "/apis/apps/v1/namespaces/default/deployments/web"
        answer = await client.request(
            "DELETE", path, body={"kind": "DeleteOptions", "propagationPolicy": "Orphan"}
        )
        assert answer["kind"] == "Deployment"

        async def orphaned() -> bool:
            if await _exists(client, "web"):
                return False
            return not (await client.get(REPLICASET, rs["metadata"]["name"], "default"))[
                "metadata"
            ].get("ownerReferences")

        await eventually(
            orphaned, "the deployment to go and its ReplicaSet to be orphaned", within=10.0
        )
        kept = await client.get(REPLICASET, rs["metadata"]["name"], "default")
        assert kept["metadata"]["uid"] == rs["metadata"]["uid"]
        assert len(await _pods(client)) == 2

        # Foreground: the owner goes only after its dependents.
        await client.create(DEPLOY, deployment("fg", 1))

        async def fg_started() -> bool:
            return len(await _pods(client)) == 3

        await eventually(fg_started, "the second deployment's pod", within=10.0)
        answer = await client.request(
            "DELETE",
            "/apis/apps/v1/namespaces/default/deployments/fg",
            params={"propagationPolicy": "Foreground"},
        )
        assert answer["metadata"]["finalizers"] == ["foregroundDeletion"]

        async def fg_gone() -> bool:
            owned = [
                r
                for r in await _replicasets(client)
                if (r["metadata"].get("labels") or {}).get("app") == "fg"
            ]
            if await _exists(client, "fg"):
                return False
            assert not owned, "the deployment went before its ReplicaSet"
            return True

        await eventually(fg_gone, "the foreground deletion to finish", within=10.0)
        assert len(await _pods(client)) == 2  # the orphans stay
