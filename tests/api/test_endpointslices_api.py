"""EndpointSlices over the API: served under discovery.k8s.io/v1 like every
kind, to pilothouse's client and to the official `kubernetes` client."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from control.client import Client
from control.errors import ApiError
from control.objects.kinds import ENDPOINTSLICE
from tests.conftest import Served

Obj = dict[str, Any]
PATH = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


def endpoint_slice(name: str, service: str, *addresses: str) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [a], "conditions": {"ready": True, "serving": True, "terminating": False}}
            for a in addresses
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


async def test_crud_list_by_service_and_errors(client: Client) -> None:
    made = await client.request("POST", PATH, body=endpoint_slice("web-1", "web", "10.0.0.1"))
    assert made["metadata"]["uid"] and made["endpoints"][0]["addresses"] == ["10.0.0.1"]
    await client.create(ENDPOINTSLICE, endpoint_slice("db-1", "db", "10.0.0.2"))
    listed = await client.request("GET", PATH)
    assert listed["kind"] == "EndpointSliceList" and listed["apiVersion"] == "discovery.k8s.io/v1"
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["db-1", "web-1"]
    web = await client.list(
        ENDPOINTSLICE, "default", label_selector="kubernetes.io/service-name=web"
    )
    assert [i["metadata"]["name"] for i in web["items"]] == ["web-1"]
    assert (await client.request("GET", f"{PATH}/web-1"))["addressType"] == "IPv4"

    bad = endpoint_slice("web-2", "web", "not-an-ip")
    with pytest.raises(ApiError) as exc:
        await client.create(ENDPOINTSLICE, bad)
    assert exc.value.code == 422
    assert [(c.field, c.message) for c in exc.value.causes] == [
        ("endpoints[0].addresses[0]", 'invalid value "not-an-ip": must be a valid IPv4 address')
    ]

    await client.delete(ENDPOINTSLICE, "web-1", "default")
    listed = await client.request("GET", PATH)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["db-1"]


def test_kubernetes_client_reads_controller_slices_and_node_ports(served: Served) -> None:
    api = k8s_config.new_client_from_config(config_file=str(served.kubeconfig))
    core = k8s_client.CoreV1Api(api)
    discovery = k8s_client.DiscoveryV1Api(api)
    svc = core.create_namespaced_service(
        "default",
        k8s_client.V1Service(
            metadata=k8s_client.V1ObjectMeta(name="web"),
            spec=k8s_client.V1ServiceSpec(
                type="NodePort",
                selector={"app": "web"},
                ports=[k8s_client.V1ServicePort(name="http", port=80, target_port="http")],
            ),
        ),
    )
    assert 30000 <= svc.spec.ports[0].node_port <= 32767
    deadline = time.monotonic() + 15
    while True:
        slices = discovery.list_namespaced_endpoint_slice(
            "default", label_selector="kubernetes.io/service-name=web"
        ).items
        if slices or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    # No pod yet: the controller's empty placeholder slice.
    (placeholder,) = slices
    assert placeholder.address_type == "IPv4" and placeholder.endpoints == []
    assert placeholder.metadata.owner_references[0].uid == svc.metadata.uid
    assert placeholder.metadata.labels["endpointslice.kubernetes.io/managed-by"] == (
        "endpointslice-controller.k8s.io"
    )
