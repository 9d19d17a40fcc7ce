"""Ingress routes on the links: the ingress node's agent gets `ingress_sync`
with a table routing to the pods' IPs, other nodes get nothing; a broken
Ingress is a Warning Event and the others keep routing; Ingresses get the
ingress node's IP, HTTPRoutes their parents' status; the default classes exist.

Pods run on hollow nodes; the agents that keep tables are RulesAgents, one on
a node labelled pilothouse.io/ingress=true and one on a node without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from control.config import NodeConfig
from control.nodes.ingress import INGRESS_NODE_LABEL, IngressRoutes, IngressTiming
from control.nodes.ingressroutes import CLASS_NAME, GATEWAY_CONTROLLER
from control.nodes.transport import InProcessTransport
from control.objects.kinds import (
    EVENT,
    GATEWAY,
    GATEWAYCLASS,
    HTTPROUTE,
    INGRESS,
    INGRESSCLASS,
    NODE,
    POD,
    SERVICE,
)
from tests.cluster import DEFAULT_TIMEOUT, HollowCluster, hollow_cluster, make_pod
from tests.nodes.rulesagent import RulesAgent
from tests.polling import eventually

Obj = dict[str, Any]
EDGE, PLAIN = "edge", "plain"
EDGE_IP = "192.0.2.50"


@dataclass
class IngressCluster:
    cluster: HollowCluster
    agents: dict[str, RulesAgent]

    @property
    def routes(self) -> IngressRoutes:
        return self.cluster.plane.node_links.ingress_routes


@pytest.fixture
async def ingress_cluster(tmp_path: Path) -> AsyncIterator[IngressCluster]:
    async with hollow_cluster(tmp_path, nodes=1) as cluster:
        links = cluster.plane.node_links
        links.ingress_routes.timing = IngressTiming(
            coalesce=0.01, backoff_initial=0.1, backoff_max=0.2
        )
        agents = {name: RulesAgent(name, ingress=True) for name in (EDGE, PLAIN)}
        links.add(
            EDGE,
            InProcessTransport(agents[EDGE].serve, EDGE),
            NodeConfig(name=EDGE, host=EDGE_IP, labels={INGRESS_NODE_LABEL: "true"}),
        )
        links.add(PLAIN, InProcessTransport(agents[PLAIN].serve, PLAIN))
        await cluster.wait_node_ready("node-1")
        yield IngressCluster(cluster, agents)


def service(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def ingress(name: str, host: str, backend: str, port: int = 80) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": backend, "port": {"number": port}}},
                            }
                        ]
                    },
                }
            ]
        },
    }


async def start_app(ic: IngressCluster, name: str) -> str:
    registry = ic.cluster.registry
    await registry.create(POD, "default", make_pod(f"{name}-1", "node-1", labels={"app": name}))
    await registry.create(SERVICE, "default", service(name))
    return str((await ic.cluster.wait_pod_running(f"{name}-1"))["status"]["podIP"])


def servers(table: Obj | None, host: str) -> list[Obj]:
    for frontend in (table or {}).get("frontends") or []:
        if frontend["port"] != 80:
            continue
        for h in frontend["hosts"]:
            if h["host"] == host:
                return [s for r in h["routes"] for b in r["backends"] for s in b["servers"]]
    return []


async def test_ingress_node_gets_the_table_and_others_nothing(
    ingress_cluster: IngressCluster,
) -> None:
    ic = ingress_cluster
    ip = await start_app(ic, "web")
    await ic.cluster.registry.create(INGRESS, "default", ingress("web", "web.example.com", "web"))
    edge, plain = ic.agents[EDGE], ic.agents[PLAIN]
    want = [{"ip": ip, "port": 8080}]
    await eventually(
        lambda: servers(edge.routes, "web.example.com") == want,
        "the edge node routes web.example.com to the pod",
        within=DEFAULT_TIMEOUT,
    )
    assert edge.routes is not None and edge.routes["generation"] == ic.routes.generation
    assert "ingress_sync" not in plain.methods()

    async def address() -> list[Obj] | None:
        obj = (await ic.cluster.registry.get(INGRESS, "default", "web")).obj
        return ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress")

    await eventually(address, "the Ingress' address", within=DEFAULT_TIMEOUT)
    assert await address() == [{"ip": EDGE_IP}]

    # The label moves at run time: the plain node gets the table, the edge node an empty one.
    def move(labels: dict[str, str], value: str | None) -> dict[str, str]:
        out = {k: v for k, v in labels.items() if k != INGRESS_NODE_LABEL}
        return {**out, INGRESS_NODE_LABEL: value} if value else out

    for node, value in ((PLAIN, "true"), (EDGE, None)):

        def relabel(obj: Obj, value: str | None = value) -> Obj:
            obj["metadata"]["labels"] = move(obj["metadata"].get("labels") or {}, value)
            return obj

        await ic.cluster.registry.patch(NODE, None, node, relabel)
    await eventually(
        lambda: servers(plain.routes, "web.example.com") == want and edge.routes is not None
        and edge.routes["frontends"] == [],
        "the table moved to the plain node",
        within=DEFAULT_TIMEOUT,
    )  # fmt: skip


async def test_broken_ingress_warns_and_others_keep_routing(
    ingress_cluster: IngressCluster,
) -> None:
    ic = ingress_cluster
    ip = await start_app(ic, "web")
    registry = ic.cluster.registry
    await registry.create(INGRESS, "default", ingress("broken", "broken.example.com", "missing"))
    await registry.create(INGRESS, "default", ingress("web", "web.example.com", "web"))
    edge = ic.agents[EDGE]
    await eventually(
        lambda: servers(edge.routes, "web.example.com") == [{"ip": ip, "port": 8080}],
        "web routes despite the broken Ingress",
        within=DEFAULT_TIMEOUT,
    )

    async def warnings() -> list[Obj]:
        events = (await registry.list(EVENT, "default")).items
        return [
            kv.obj
            for kv in events
            if kv.obj.get("type") == "Warning"
            and kv.obj["involvedObject"]["kind"] == "Ingress"
            and kv.obj["involvedObject"]["name"] == "broken"
        ]

    await eventually(warnings, "a Warning Event on the broken Ingress", within=DEFAULT_TIMEOUT)
    assert all("missing" in e["message"] for e in await warnings())
    assert not [e for e in (await registry.list(EVENT, "default")).items if e.obj["involvedObject"]["name"] == "web" and e.obj.get("type") == "Warning"]  # fmt: skip


async def test_httproute_gets_status_and_routes(ingress_cluster: IngressCluster) -> None:
    ic = ingress_cluster
    ip = await start_app(ic, "web")
    registry = ic.cluster.registry
    await registry.create(
        GATEWAY,
        "default",
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw"},
            "spec": {
                "gatewayClassName": CLASS_NAME,
                "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
            },
        },
    )
    await registry.create(
        HTTPROUTE,
        "default",
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "web"},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "hostnames": ["route.example.com"],
                "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
            },
        },
    )
    edge = ic.agents[EDGE]
    await eventually(
        lambda: servers(edge.routes, "route.example.com") == [{"ip": ip, "port": 8080}],
        "the HTTPRoute's table",
        within=DEFAULT_TIMEOUT,
    )

    async def parents() -> list[Obj]:
        obj = (await registry.get(HTTPROUTE, "default", "web")).obj
        return list((obj.get("status") or {}).get("parents") or [])

    await eventually(parents, "the HTTPRoute's status.parents", within=DEFAULT_TIMEOUT)
    [parent] = await parents()
    assert parent["controllerName"] == GATEWAY_CONTROLLER
    assert parent["parentRef"]["name"] == "gw"
    accepted = [c for c in parent["conditions"] if c["type"] == "Accepted"]
    assert accepted and accepted[0]["status"] == "True"


async def test_default_classes_exist(ingress_cluster: IngressCluster) -> None:
    registry = ingress_cluster.cluster.registry
    ingress_class = (await registry.get(INGRESSCLASS, None, CLASS_NAME)).obj
    assert ingress_class["spec"]["controller"] == "pilothouse.io/ingress-controller"
    annotations = ingress_class["metadata"]["annotations"]
    assert annotations["ingressclass.kubernetes.io/is-default-class"] == "true"
    gateway_class = (await registry.get(GATEWAYCLASS, None, CLASS_NAME)).obj
    assert gateway_class["spec"]["controllerName"] == GATEWAY_CONTROLLER
