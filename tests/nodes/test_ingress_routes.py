"""Ingress routes on the links: the ingress node's agent gets `ingress_sync`
with a table routing to the pods' IPs, other nodes get nothing; a broken
Ingress is a Warning Event and the others keep routing; Ingresses get the
ingress node's IP, HTTPRoutes their parents' status; the default classes exist.

Pods run on hollow nodes; the agents that keep tables are RulesAgents, one on
a node labelled pilothouse.io/ingress=true and one on a node without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from control.client import Client
from control.config import NodeConfig
from control.nodes.ingress import FAILED_REASON, IngressTiming
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
from control.objects.routes import INGRESS_NODE_LABEL
from tests.cluster import DEFAULT_TIMEOUT, HollowCluster, hollow_cluster, make_pod
from tests.nodes.rulesagent import RulesAgent
from tests.polling import eventually

Obj = dict[str, Any]
EDGE, PLAIN = "edge", "plain"
EDGE_IP = "192.0.2.50"


@dataclass
class IngressCluster:
    """A hollow cluster with two RulesAgent nodes that keep route tables: the
    ingress node EDGE and the PLAIN one."""

    cluster: HollowCluster
    agents: dict[str, RulesAgent]


@pytest.fixture
async def ingress_cluster(tmp_path: Path) -> AsyncIterator[IngressCluster]:
    async with hollow_cluster(tmp_path, nodes=1) as cluster:
        links = cluster.plane.node_links
        links.ingress_routes.timing = IngressTiming(0.01, backoff_initial=0.1, backoff_max=0.2)
        agents = {name: RulesAgent(name, ingress=True) for name in (EDGE, PLAIN)}
        edge = NodeConfig(name=EDGE, host=EDGE_IP, labels={INGRESS_NODE_LABEL: "true"})
        links.add(EDGE, InProcessTransport(agents[EDGE].serve, EDGE), edge)
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


def gateway_api(kind: str, name: str, spec: Obj) -> Obj:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


async def start_app(ic: IngressCluster, name: str) -> str:
    registry = ic.cluster.registry
    await registry.create(POD, "default", make_pod(f"{name}-1", "node-1", labels={"app": name}))
    await registry.create(SERVICE, "default", service(name))
    return str((await ic.cluster.wait_pod_running(f"{name}-1"))["status"]["podIP"])


async def routed(agent: RulesAgent, host: str, ip: str, what: str) -> None:
    """Wait until `agent`'s table sends `host` to the pod at `ip`, port 8080."""
    want = [{"ip": ip, "port": 8080}]
    await eventually(lambda: servers(agent.routes, host) == want, what, within=DEFAULT_TIMEOUT)


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
    await routed(edge, "web.example.com", ip, "the edge node routes web.example.com to the pod")
    generation = ic.cluster.plane.node_links.ingress_routes.generation
    assert edge.routes is not None and edge.routes["generation"] == generation
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
    await routed(plain, "web.example.com", ip, "the table moved to the plain node")
    await eventually(
        lambda: edge.routes is not None and edge.routes["frontends"] == [],
        "an empty table on the node that lost the label",
        within=DEFAULT_TIMEOUT,
    )


async def test_broken_ingress_warns_and_others_keep_routing(
    ingress_cluster: IngressCluster,
) -> None:
    ic = ingress_cluster
    ip = await start_app(ic, "web")
    registry = ic.cluster.registry
    await registry.create(INGRESS, "default", ingress("broken", "broken.example.com", "missing"))
    await registry.create(INGRESS, "default", ingress("web", "web.example.com", "web"))
    await routed(ic.agents[EDGE], "web.example.com", ip, "web routes despite the broken Ingress")

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
    listener = {"name": "http", "port": 80, "protocol": "HTTP"}
    gateway_spec = {"gatewayClassName": CLASS_NAME, "listeners": [listener]}
    await registry.create(GATEWAY, "default", gateway_api("Gateway", "gw", gateway_spec))
    route_spec = {
        "parentRefs": [{"name": "gw"}],
        "hostnames": ["route.example.com"],
        "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
    }
    await registry.create(HTTPROUTE, "default", gateway_api("HTTPRoute", "web", route_spec))
    await routed(ic.agents[EDGE], "route.example.com", ip, "the HTTPRoute's table")

    async def parents() -> list[Obj]:
        obj = (await registry.get(HTTPROUTE, "default", "web")).obj
        return list((obj.get("status") or {}).get("parents") or [])

    await eventually(parents, "the HTTPRoute's status.parents", within=DEFAULT_TIMEOUT)
    [parent] = await parents()
    assert parent["controllerName"] == GATEWAY_CONTROLLER
    assert parent["parentRef"]["name"] == "gw"
    accepted = [c for c in parent["conditions"] if c["type"] == "Accepted"]
    assert accepted and accepted[0]["status"] == "True"

    # The Gateway and its class get their own status, and it settles: written
    # once, not again on every computation.
    async def programmed() -> Obj | None:
        gw = (await registry.get(GATEWAY, "default", "gw")).obj
        conditions = {
            c["type"]: c["status"] for c in (gw.get("status") or {}).get("conditions") or []
        }
        return gw if conditions == {"Accepted": "True", "Programmed": "True"} else None

    gateway = await eventually(programmed, "the Gateway Programmed", within=DEFAULT_TIMEOUT)
    assert [a["type"] for a in gateway["status"]["addresses"]] == ["IPAddress"]
    gateway_class = (await registry.get(GATEWAYCLASS, None, CLASS_NAME)).obj
    [class_accepted] = gateway_class["status"]["conditions"]
    assert (class_accepted["type"], class_accepted["status"]) == ("Accepted", "True")
    await asyncio.sleep(1)
    again = (await registry.get(GATEWAY, "default", "gw")).obj
    assert again["metadata"]["resourceVersion"] == gateway["metadata"]["resourceVersion"]


async def test_default_classes_exist(ingress_cluster: IngressCluster) -> None:
    registry = ingress_cluster.cluster.registry
    ingress_class = (await registry.get(INGRESSCLASS, None, CLASS_NAME)).obj
    assert ingress_class["spec"]["controller"] == "pilothouse.io/ingress-controller"
    annotations = ingress_class["metadata"]["annotations"]
    assert annotations["ingressclass.kubernetes.io/is-default-class"] == "true"
    gateway_class = (await registry.get(GATEWAYCLASS, None, CLASS_NAME)).obj
    assert gateway_class["spec"]["controllerName"] == GATEWAY_CONTROLLER


async def test_failed_sync_is_a_node_event_and_retried(ingress_cluster: IngressCluster) -> None:
    ic = ingress_cluster
    edge = ic.agents[EDGE]
    edge.fail = "haproxy: config check failed"
    ip = await start_app(ic, "web")
    await ic.cluster.registry.create(INGRESS, "default", ingress("web", "web.example.com", "web"))

    async def failures() -> list[Obj]:
        events = (await ic.cluster.registry.list(EVENT, "default")).items
        return [
            kv.obj
            for kv in events
            if kv.obj.get("reason") == FAILED_REASON and kv.obj["involvedObject"]["name"] == EDGE
        ]

    await eventually(failures, "a FailedIngressRoutes event on the node", within=DEFAULT_TIMEOUT)
    assert "haproxy: config check failed" in (await failures())[0]["message"]
    edge.fail = None
    await routed(edge, "web.example.com", ip, "the table after the retry")


async def test_agent_without_ingress_is_left_alone(tmp_path: Path) -> None:
    async with hollow_cluster(tmp_path, nodes=0) as cluster:
        links = cluster.plane.node_links
        old = RulesAgent(EDGE)  # answers METHOD_NOT_FOUND to ingress_sync
        edge = NodeConfig(name=EDGE, host=EDGE_IP, labels={INGRESS_NODE_LABEL: "true"})
        links.add(EDGE, InProcessTransport(old.serve, EDGE), edge)
        await eventually(
            lambda: "services_sync" in old.methods(), "the node link up", within=DEFAULT_TIMEOUT
        )
        await cluster.registry.create(INGRESS, "default", ingress("web", "a.example.com", "web"))
        routes = links.ingress_routes
        await eventually(lambda: routes.generation >= 2, "a new table", within=DEFAULT_TIMEOUT)
        events = (await cluster.registry.list(EVENT, "default")).items
        assert not [kv for kv in events if kv.obj.get("reason") == FAILED_REASON]
        assert routes.acked(EDGE) == 0 and old.connections == 1


async def test_live_traffic_is_asked_of_the_ingress_nodes_only(
    ingress_cluster: IngressCluster,
) -> None:
    """Through the real node links: the labelled node's agent answers; the
    plain node, an ingress agent too, is not asked."""
    route = "ing/default/site/0/0"
    stats = {"requests": 12, "requestsPerSecond": 3.0, "http5xx": 1, "p99Ms": 8.5}
    ingress_cluster.agents[EDGE].traffic = {route: stats}
    ingress_cluster.agents[PLAIN].traffic = {route: {**stats, "requests": 1000}}
    async with ingress_cluster.cluster.client() as client:
        answer = await eventually(lambda: _answered(client), "the edge node's agent to answer")
    assert answer["routes"] == {route: stats}
    assert "ingress_stats" not in ingress_cluster.agents[PLAIN].methods()


async def _answered(client: Client) -> Obj | None:
    answer = await client.ingress_stats()
    return answer if answer["nodes"] == [EDGE] else None
