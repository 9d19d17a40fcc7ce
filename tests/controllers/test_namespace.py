"""A namespace's deletion as Kubernetes does it: Terminating with the
`kubernetes` finalizer, its contents deleted by the namespace controller,
then gone; and the kube-root-ca.crt ConfigMap in every namespace."""

from __future__ import annotations

from typing import Any

import pytest

from control.client import Client
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.objects.kinds import CONFIGMAP, NAMESPACE, POD, SERVICE
from tests.api.test_nodeports import port, svc
from tests.api.test_rest import pod
from tests.polling import eventually

Obj = dict[str, Any]


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def configmap(name: str, **meta: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}}


async def gone(client: Client, name: str) -> bool:
    try:
        await client.get(NAMESPACE, name)
    except ApiError as e:
        assert e.code == 404
        return True
    return False


async def test_namespace_delete_removes_contents(client: Client) -> None:
    await client.create(NAMESPACE, namespace("team"))
    await client.create(POD, pod("p"), "team")
    await client.delete(NAMESPACE, "team")
    await eventually(lambda: gone(client, "team"), within=10)
    assert (await client.list(POD, "team"))["items"] == []


async def test_deleting_a_namespace_frees_its_node_ports(client: Client) -> None:
    await client.create(NAMESPACE, namespace("tmp"))
    await client.create(SERVICE, svc("a", port(80, nodePort=30200)), "tmp")
    await client.delete(NAMESPACE, "tmp")

    async def free() -> bool:
        try:
            await client.create(SERVICE, svc("b", port(80, nodePort=30200)))
        except ApiError as e:
            if "already allocated" not in e.message:
                raise
            return False
        return True

    await eventually(free, "node port 30200 freed with its namespace", within=10)


async def test_terminating_until_its_content_is_gone(client: Client) -> None:
    created = await client.create(NAMESPACE, namespace("team"))
    assert created["spec"] == {"finalizers": ["kubernetes"]}
    assert created["status"] == {"phase": "Active"}
    # A finalizer of someone else's holds one object, and so the namespace.
    await client.create(CONFIGMAP, configmap("held", finalizers=["example.com/hold"]), "team")
    answer = await client.delete(NAMESPACE, "team")
    assert answer["kind"] == "Namespace" and answer["metadata"]["deletionTimestamp"]
    assert answer["status"]["phase"] == "Terminating"

    with pytest.raises(ApiError) as exc:
        await client.create(CONFIGMAP, configmap("new"), "team")
    assert (exc.value.code, exc.value.reason) == (403, "Forbidden")
    assert exc.value.message == (
        'configmaps "new" is forbidden: unable to create new content in namespace team '
        "because it is being terminated"
    )

    async def held() -> Obj | None:
        ns = await client.get(NAMESPACE, "team")
        conditions = {c["type"]: c for c in ns["status"].get("conditions") or []}
        remaining = conditions.get("NamespaceFinalizersRemaining", {})
        return ns if remaining.get("status") == "True" else None

    ns = await eventually(held, within=10)
    conditions = {c["type"]: c for c in ns["status"]["conditions"]}
    assert conditions["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps has 1 resource instances"
    )
    assert conditions["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: "
        "example.com/hold in 1 resource instances"
    )
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    # An update cannot take the finalizer away; only the finalize subresource can.
    ns["spec"] = {}
    updated = await client.request("PUT", "/api/v1/namespaces/team", body=ns)
    assert updated["spec"] == {"finalizers": ["kubernetes"]}

    await client.patch(CONFIGMAP, "held", {"metadata": {"finalizers": None}}, "team")
    await eventually(lambda: gone(client, "team"), within=10)


async def test_finalize_subresource(plane: ControlPlane, client: Client) -> None:
    """`PUT namespaces/NAME/finalize` changes spec.finalizers alone; a
    Terminating namespace with none left goes."""
    await plane.controllers.wait_synced()
    await client.create(NAMESPACE, namespace("fin"))
    body = namespace("fin")
    body["spec"] = {"finalizers": ["kubernetes", "example.com/x"]}
    body["metadata"]["labels"] = {"ignored": "yes"}
    out = await client.request("PUT", "/api/v1/namespaces/fin/finalize", body=body)
    assert out["spec"]["finalizers"] == ["kubernetes", "example.com/x"]
    assert "labels" not in out["metadata"]
    await client.delete(NAMESPACE, "fin")
    # The controller takes its own finalizer away; the other one holds.
    ns = await eventually(lambda: _spec_finalizers_are(client, "fin", ["example.com/x"]), within=10)
    assert ns["status"]["phase"] == "Terminating"
    ns["spec"]["finalizers"] = []
    await client.request("PUT", "/api/v1/namespaces/fin/finalize", body=ns)
    assert await gone(client, "fin")


async def _spec_finalizers_are(client: Client, name: str, wanted: list[str]) -> Obj | None:
    ns = await client.get(NAMESPACE, name)
    return ns if (ns.get("spec") or {}).get("finalizers") == wanted else None


async def test_every_namespace_has_the_root_ca(plane: ControlPlane, client: Client) -> None:
    ca = (plane.config.api.pki_dir / "ca.crt").read_text()
    assert ca.startswith("-----BEGIN CERTIFICATE-----")

    async def root_ca(namespace: str) -> Obj | None:
        try:
            cm = await client.get(CONFIGMAP, "kube-root-ca.crt", namespace)
        except ApiError:
            return None
        return cm if cm.get("data") == {"ca.crt": ca} else None

    for ns in ("default", "kube-system"):
        await eventually(lambda ns=ns: root_ca(ns), within=10)
    await client.create(NAMESPACE, namespace("team"))
    cm = await eventually(lambda: root_ca("team"), within=10)
    assert cm["metadata"]["annotations"]["kubernetes.io/description"].startswith(
        "Contains a CA bundle"
    )
    # Changed or deleted, it comes back.
    await client.patch(CONFIGMAP, "kube-root-ca.crt", {"data": {"ca.crt": "x"}}, "team")
    await eventually(lambda: root_ca("team"), within=10)
    uid = cm["metadata"]["uid"]
    await client.delete(CONFIGMAP, "kube-root-ca.crt", "team")

    async def recreated() -> Obj | None:
        again = await root_ca("team")
        return again if again and again["metadata"]["uid"] != uid else None

    await eventually(recreated, within=10)
