"""The rules under the node controllers, without a cluster: graceful pod
deletion in the registry, toleration arithmetic, and Endpoints subsets."""

from __future__ import annotations

from typing import Any

import pytest

from control.api.registry import Registry
from control.client import Client
from control.controllers.endpoints import desired_subsets
from control.controllers.nodelifecycle import tolerates, toleration_seconds
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.objects.kinds import POD
from tests.cluster import make_pod

Obj = dict[str, Any]
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
CUSTOM = {"key": "dedicated", "value": "gpu", "effect": "NoExecute"}


# -- graceful deletion ------------------------------------------------------------


async def set_phase(registry: Registry, name: str, phase: str) -> None:
    """Write the pod's status as its agent would."""
    await registry.patch(
        POD, "default", name, lambda o: {**o, "status": {"phase": phase}}, subresource="status"
    )


async def test_unbound_pod_is_deleted_at_once(plane: ControlPlane) -> None:
    await plane.registry.create(POD, "default", make_pod("loose"))
    await plane.registry.delete(POD, "default", "loose")
    with pytest.raises(ApiError) as e:
        await plane.registry.get(POD, "default", "loose")
    assert e.value.code == 404


async def test_bound_pod_waits_for_its_node(plane: ControlPlane) -> None:
    registry = plane.registry
    await registry.create(
        POD, "default", make_pod("bound", "far-away", terminationGracePeriodSeconds=10)
    )
    marked = (await registry.delete(POD, "default", "bound")).obj["metadata"]
    assert marked["deletionTimestamp"] and marked["deletionGracePeriodSeconds"] == 10
    # Deleting again with a longer (or the same) grace changes nothing...
    again = await registry.delete(POD, "default", "bound", grace_period_seconds=20)
    assert again.obj["metadata"]["deletionTimestamp"] == marked["deletionTimestamp"]
    assert again.obj["metadata"]["deletionGracePeriodSeconds"] == 10
    # ...a shorter one shortens it...
    shorter = await registry.delete(POD, "default", "bound", grace_period_seconds=3)
    assert shorter.obj["metadata"]["deletionGracePeriodSeconds"] == 3
    # ...status writes (the agent reporting) do not finish the delete...
    await set_phase(registry, "bound", "Running")
    assert (await registry.get(POD, "default", "bound")).obj["status"]["phase"] == "Running"
    # ...and zero, the node's confirmation, deletes it.
    await registry.delete(POD, "default", "bound", grace_period_seconds=0)
    with pytest.raises(ApiError):
        await registry.get(POD, "default", "bound")


async def test_finished_pod_is_deleted_at_once(plane: ControlPlane) -> None:
    registry = plane.registry
    await registry.create(POD, "default", make_pod("done", "n1"))
    await set_phase(registry, "done", "Succeeded")
    await registry.delete(POD, "default", "done")
    with pytest.raises(ApiError):
        await registry.get(POD, "default", "done")


async def test_delete_options_and_eviction_over_http(client: Client, plane: ControlPlane) -> None:
    registry = plane.registry
    for name in ("one", "two", "three"):
        await registry.create(POD, "default", make_pod(name, "n1"))
    # DeleteOptions in the body, and as a query parameter.
    await client.request(
        "DELETE", client.path(POD, "default", "one"), body={"gracePeriodSeconds": 0}
    )
    await client.request(
        "DELETE", client.path(POD, "default", "two"), params={"gracePeriodSeconds": "0"}
    )
    names = {kv.obj["metadata"]["name"] for kv in (await registry.list(POD, "default")).items}
    assert names == {"three"}
    # An eviction is a graceful delete.
    path = client.path(POD, "default", "three", "eviction")
    status = await client.request(
        "POST",
        path,
        body={"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "three"}},
    )
    assert status["code"] == 201
    pod = (await registry.get(POD, "default", "three")).obj
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 30
    with pytest.raises(ApiError) as e:
        await client.request("POST", path, body={"kind": "Eviction", "metadata": {"name": "four"}})
    assert e.value.code == 400
    with pytest.raises(ApiError) as e:
        await client.request(
            "POST", client.path(POD, "default", "nobody", "eviction"), body={"kind": "Eviction"}
        )
    assert e.value.code == 404


# -- tolerations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        ({"key": "node.kubernetes.io/unreachable", "operator": "Exists"}, UNREACHABLE, True),
        ({"operator": "Exists"}, CUSTOM, True),  # empty key and Exists: everything
        ({"key": "dedicated", "value": "gpu"}, CUSTOM, True),  # operator defaults to Equal
        ({"key": "dedicated", "value": "cpu"}, CUSTOM, False),
        ({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}, CUSTOM, False),
        ({"key": "other", "operator": "Exists"}, CUSTOM, False),
    ],
)
def test_tolerates(toleration: Obj, taint: Obj, expected: bool) -> None:
    assert tolerates(toleration, taint) is expected


def _pod(*tolerations: Obj) -> Obj:
    return {"spec": {"tolerations": list(tolerations)}}


def test_toleration_seconds() -> None:
    # No toleration for the condition taints: the configured default.
    assert toleration_seconds(_pod(), [UNREACHABLE], 300) == 300
    # A taint the pod does not tolerate at all: now.
    assert toleration_seconds(_pod(), [UNREACHABLE, CUSTOM], 300) == 0
    # Its own tolerationSeconds win over the default, the smallest of all counts.
    short = {"key": UNREACHABLE["key"], "operator": "Exists", "tolerationSeconds": 5}
    assert toleration_seconds(_pod(short), [UNREACHABLE], 300) == 5
    assert toleration_seconds(_pod(short), [UNREACHABLE, NOT_READY], 300) == 5
    assert toleration_seconds(_pod(short), [UNREACHABLE, NOT_READY], 2) == 2
    # Tolerated without a limit: stays for good.
    forever = {"operator": "Exists", "effect": "NoExecute"}
    assert toleration_seconds(_pod(forever), [UNREACHABLE, CUSTOM], 300) is None
    negative = {"operator": "Exists", "tolerationSeconds": -4}
    assert toleration_seconds(_pod(negative), [CUSTOM], 300) == 0


# -- endpoints --------------------------------------------------------------------


def _svc(*ports: Obj, **spec: Any) -> Obj:
    return {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": list(ports), **spec},
    }


def _running(
    name: str, ip: str | None, ready: bool = True, ports: list[Obj] | None = None, **meta: Any
) -> Obj:
    pod = make_pod(name, "n1", ports=ports)
    pod["metadata"].update(uid=f"uid-{name}", **meta)
    pod["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        **({"podIP": ip} if ip else {}),
    }
    return pod


def test_endpoint_subsets() -> None:
    http = [{"name": "http", "containerPort": 8080}]
    alt = [{"name": "http", "containerPort": 9090}]
    pods = [
        _running("a", "10.0.0.2", ports=http),
        _running("b", "10.0.0.1", ports=http),
        _running("c", "10.0.0.3", ready=False, ports=http),
        _running("d", "10.0.0.4", ports=alt),  # the same name on another port
        _running("e", None, ports=http),  # no IP yet
        _running("f", "10.0.0.6", ports=http, deletionTimestamp="2030-01-01T00:00:00Z"),
        _running("g", "10.0.0.7", ports=[]),  # no such port: left out
    ]
    subsets = desired_subsets(
        _svc({"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}), pods
    )
    assert len(subsets) == 2
    first, second = subsets
    assert [a["ip"] for a in first["addresses"]] == ["10.0.0.1", "10.0.0.2"]
    assert [a["ip"] for a in first["notReadyAddresses"]] == ["10.0.0.3"]
    assert first["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
    assert [a["ip"] for a in second["addresses"]] == ["10.0.0.4"]
    assert second["ports"][0]["port"] == 9090
    address = first["addresses"][0]
    assert address["nodeName"] == "n1"
    assert address["targetRef"] == {
        "kind": "Pod",
        "namespace": "default",
        "name": "b",
        "uid": "uid-b",
    }


def test_endpoint_subsets_numeric_ports_and_publish_not_ready() -> None:
    pods = [_running("a", "10.0.0.2"), _running("b", "10.0.0.3", ready=False)]
    svc = _svc({"port": 80, "targetPort": 8080, "protocol": "TCP"}, publishNotReadyAddresses=True)
    (subset,) = desired_subsets(svc, pods)
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.2", "10.0.0.3"]
    assert "notReadyAddresses" not in subset
    assert subset["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert desired_subsets(_svc({"port": 80, "targetPort": 8080}), []) == []
