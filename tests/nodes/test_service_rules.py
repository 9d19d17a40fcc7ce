"""Service rules on the links: every node and service proxy gets a full
`services_sync` after `network_config`, then `services_update`s with just the
changes; a reconnect or an agent out of sync gets a full sync again; a failure
is a Warning Event on the Node and a retry; Nodes carry "<acked>/<latest>".

Pods run on hollow nodes; the agents that keep rules are RulesAgents (two
standing for nodes, one for a service proxy).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.cli import main as cli
from control.nodes.reconnecting import LinkState
from control.nodes.services import FAILED_REASON, RulesTiming, ServiceRules
from control.nodes.servicetable import service_table
from control.nodes.transport import InProcessTransport
from control.objects.kinds import ENDPOINTSLICE, EVENT, POD, SERVICE
from control.objects.servicestatus import SERVICE_RULES_ANNOTATION
from tests.cluster import DEFAULT_TIMEOUT, HollowCluster, hollow_cluster, make_pod
from tests.nodes.rulesagent import RulesAgent
from tests.polling import eventually

Obj = dict[str, Any]
NODES = ("rules-1", "rules-2")
PROXY = "gw"


@dataclass
class RulesCluster:
    cluster: HollowCluster
    agents: dict[str, RulesAgent]  # by link name: the node ones and the proxy
    transports: dict[str, InProcessTransport]

    @property
    def rules(self) -> ServiceRules:
        return self.cluster.plane.node_links.service_rules


@pytest.fixture
async def rules_cluster(tmp_path: Path) -> AsyncIterator[RulesCluster]:
    async with hollow_cluster(tmp_path, nodes=2) as cluster:
        links = cluster.plane.node_links
        links.service_rules.timing = RulesTiming(backoff_initial=0.2, backoff_max=0.4)
        agents = {name: RulesAgent(name) for name in (*NODES, PROXY)}
        transports = {name: InProcessTransport(a.serve, name) for name, a in agents.items()}
        for name in NODES:
            links.add(name, transports[name])
        links.add_proxy(PROXY, transports[PROXY])
        await cluster.wait_nodes_ready()
        yield RulesCluster(cluster, agents, transports)


def service(name: str, app: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def endpoints_of(agent: RulesAgent, name: str) -> dict[str, bool]:
    """IP -> ready, of one default/ service in the agent's table."""
    for eps in agent.table["endpoints"]:
        if (eps["namespace"], eps["name"]) == ("default", name):
            return {e["ip"]: e["ready"] for e in eps["endpoints"]}
    return {}


async def start_web(rc: RulesCluster) -> dict[str, str]:
    """Service web over pods web-1 and web-2 (one per hollow node); their IPs."""
    registry = rc.cluster.registry
    for name, node in (("web-1", "node-1"), ("web-2", "node-2")):
        await registry.create(POD, "default", make_pod(name, node, labels={"app": "web"}))
    await registry.create(SERVICE, "default", service("web", "web"))
    return {
        n: (await rc.cluster.wait_pod_running(n))["status"]["podIP"] for n in ("web-1", "web-2")
    }


async def in_sync(rc: RulesCluster, *names: str) -> None:
    def synced() -> bool:
        return all(rc.agents[n].generation == rc.rules.generation for n in names or rc.agents)

    await eventually(synced, "the agents at the latest generation", within=DEFAULT_TIMEOUT)


async def annotation(rc: RulesCluster, node: str) -> str | None:
    obj = await rc.cluster.node(node)
    return ((obj or {}).get("metadata", {}).get("annotations") or {}).get(SERVICE_RULES_ANNOTATION)


async def failures(rc: RulesCluster, node: str) -> list[Obj]:
    """The FailedServiceRules events of a node."""
    events = (await rc.cluster.registry.list(EVENT, "default")).items
    return [
        kv.obj
        for kv in events
        if kv.obj.get("reason") == FAILED_REASON and kv.obj["involvedObject"]["name"] == node
    ]


async def test_full_sync_then_updates_for_one_endpoint(rules_cluster: RulesCluster) -> None:
    rc = rules_cluster
    ips = await start_web(rc)
    both_ready = {ips["web-1"]: True, ips["web-2"]: True}

    def every_agent(want: dict[str, bool]) -> bool:
        return all(endpoints_of(a, "web") == want for a in rc.agents.values())

    await eventually(lambda: every_agent(both_ready), "web's endpoints everywhere", within=DEFAULT_TIMEOUT)  # fmt: skip
    for agent in rc.agents.values():
        methods = agent.methods(connection=1)
        first = next(m for m in methods if m.startswith("services_"))
        assert first == "services_sync"
        assert methods.index("network_config") < methods.index("services_sync")
    seen = {name: len(a.received) for name, a in rc.agents.items()}

    await rc.cluster.agents["node-2"].set_pod_ready("default", "web-2", False)
    one_not_ready = {ips["web-1"]: True, ips["web-2"]: False}
    await eventually(lambda: every_agent(one_not_ready), "web-2 not ready everywhere", within=DEFAULT_TIMEOUT)  # fmt: skip
    for name, agent in rc.agents.items():
        later = agent.received[seen[name] :]
        assert later and {r.method for r in later} == {"services_update"}, name
        for r in later:
            assert r.params["base"] < r.params["generation"]
            for change in r.params["changes"]:
                assert change["op"] == "setEndpoints"
                assert change["endpoints"]["name"] == "web"
    # What the agents hold is the table of everything in the API.
    await in_sync(rc)
    services = [kv.obj for kv in (await rc.cluster.registry.list(SERVICE, None)).items]
    slices = [kv.obj for kv in (await rc.cluster.registry.list(ENDPOINTSLICE, None)).items]
    want = service_table(services, slices)
    assert rc.rules.table() == want
    for agent in rc.agents.values():
        assert agent.table == want


@pytest.mark.parametrize("name", [NODES[0], PROXY])
async def test_a_reconnect_gets_a_full_sync(rules_cluster: RulesCluster, name: str) -> None:
    rc = rules_cluster
    await start_web(rc)
    await in_sync(rc, name)
    agent = rc.agents[name]
    await rc.transports[name].cut()
    await eventually(
        lambda: agent.connections == 2 and "services_sync" in agent.methods(connection=2),
        "a full sync on the new connection",
        within=DEFAULT_TIMEOUT,
    )
    methods = agent.methods(connection=2)
    assert methods.index("network_config") < methods.index("services_sync")
    assert "services_update" not in methods[: methods.index("services_sync")]
    await in_sync(rc, name)
    assert endpoints_of(agent, "web")


async def test_proxy_is_no_node_and_gets_the_cluster_network(rules_cluster: RulesCluster) -> None:
    rc = rules_cluster
    await in_sync(rc, PROXY)
    (network,) = [r.params for r in rc.agents[PROXY].received if r.method == "network_config"]
    assert network == {
        "clusterCIDR": "10.244.0.0/16",
        "serviceCIDR": "10.96.0.0/12",
        "clusterDNS": "10.96.0.10",
        "clusterDNSTTL": 5,
        "clusterDomain": "cluster.local",
    }
    assert "sync_pods" not in rc.agents[PROXY].methods()
    assert await rc.cluster.node(PROXY) is None
    assert rc.cluster.plane.node_links.proxies[PROXY].state is LinkState.CONNECTED


async def test_nodes_are_annotated_with_acked_and_latest(rules_cluster: RulesCluster) -> None:
    rc = rules_cluster
    ips = await start_web(rc)
    ready = {ip: True for ip in ips.values()}
    await eventually(lambda: all(endpoints_of(rc.agents[n], "web") == ready for n in NODES))

    async def annotated(node: str, value: str | None = None) -> bool:
        g = rc.rules.generation
        return await annotation(rc, node) == (value or f"{g}/{g}")

    for node in NODES:
        await eventually(lambda n=node: annotated(n), f"{node} in sync")  # type: ignore[misc]
    g = rc.rules.generation

    # rules-1 stops applying rules: it falls behind, the other one does not.
    rc.agents["rules-1"].fail = "nft: Error: syntax error"
    await rc.cluster.registry.create(SERVICE, "default", service("other", "other"))
    await eventually(lambda: rc.rules.generation > g, "a new generation")
    await in_sync(rc, "rules-2")
    latest = rc.rules.generation
    await eventually(lambda: annotated("rules-2", f"{latest}/{latest}"), "rules-2 in sync")
    await eventually(lambda: annotated("rules-1", f"{g}/{latest}"), "rules-1 behind")

    (event,) = await eventually(lambda: failures(rc, "rules-1"), "a FailedServiceRules event")
    assert event["type"] == "Warning" and event["involvedObject"]["kind"] == "Node"
    assert "nft: Error: syntax error" in event["message"]

    # Once it works again, a full sync (after the backoff) brings it up to date.
    seen = len(rc.agents["rules-1"].received)
    rc.agents["rules-1"].fail = None
    await in_sync(rc, "rules-1")
    recovered = [r for r in rc.agents["rules-1"].received[seen:] if r.method != "sync_pods"]
    assert recovered[0].method == "services_sync"
    await eventually(lambda: annotated("rules-1", f"{latest}/{latest}"), "rules-1 in sync again")


async def test_an_agent_out_of_sync_gets_a_full_sync(rules_cluster: RulesCluster) -> None:
    rc = rules_cluster
    await in_sync(rc)
    agent = rc.agents["rules-2"]
    agent.generation = 10_000  # it lost track, say it restarted behind a proxy
    seen, g = len(agent.received), rc.rules.generation
    await rc.cluster.registry.create(SERVICE, "default", service("other", "other"))
    await eventually(lambda: rc.rules.generation > g, "a new generation")
    await in_sync(rc, "rules-2")
    methods = [r.method for r in agent.received[seen:] if r.method.startswith("services_")]
    assert methods[:2] == ["services_update", "services_sync"]
    assert ("default", "other") in {(s["namespace"], s["name"]) for s in agent.table["services"]}
    assert agent.table == rc.rules.table()
    assert await failures(rc, "rules-2") == []  # out of sync is no failure


async def test_service_proxies_from_the_config_run_their_command(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "tests.nodes.rulesagent", "--name", "host"]
    proxies = f'[[service_proxies]]\nname = "host"\ncommand = {json.dumps(argv)}\n'
    async with hollow_cluster(tmp_path, nodes=0, extra_config=proxies) as cluster:
        rules = cluster.plane.node_links.service_rules
        assert list(cluster.plane.node_links.proxies) == ["host"]

        def acked() -> bool:
            return rules.generation > 0 and rules.acked("host", node=False) == rules.generation

        await eventually(acked, "the proxy command acknowledges the table", within=20)
        await cluster.registry.create(SERVICE, "default", service("web", "web"))
        before = rules.generation
        await eventually(lambda: rules.generation > before and acked(), "and the next one")


async def test_describe_and_get_svc(
    rules_cluster: RulesCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = rules_cluster
    ips = await start_web(rc)
    ready = {ip: True for ip in ips.values()}
    await eventually(lambda: all(endpoints_of(rc.agents[n], "web") == ready for n in NODES))

    async def run(*argv: str) -> str:
        args = cli.build_parser().parse_args([*argv, "--server", rc.cluster.socket])
        assert await args.func(args) == 0
        return capsys.readouterr().out

    async def rules_nodes_in_sync() -> str | None:
        out = await run("describe", "svc", "web")
        behind = out.split("Rules:", 1)[1].split("Events:", 1)[0]
        return out if not any(n in behind for n in NODES) else None

    out = await eventually(rules_nodes_in_sync, "the rules nodes in sync", within=DEFAULT_TIMEOUT)
    assert "Endpoints:    2 ready, 0 not ready\n" in out
    for pod, ip in ips.items():
        node = "node-1" if pod == "web-1" else "node-2"
        assert re.search(rf"^  {re.escape(ip)} +ready +8080/TCP +{node}$", out, re.M), out
    assert re.search(r"^Rules: +\d/4 nodes in sync$", out, re.M), out

    header, row = (await run("get", "svc", "web", "-o", "wide")).splitlines()
    assert header.split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]  # fmt: skip
    name, kind, ip, external, ports, _age, selector = row.split()
    assert (name, kind, external, ports, selector) == ("web", "ClusterIP", "<none>", "80/TCP", "app=web")  # fmt: skip
