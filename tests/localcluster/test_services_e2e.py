"""Services end to end (issue 11): `pilothouse up --nodes 3`, a Deployment of
three busybox httpd replicas that each serve their own hostname, Services of
every kind in front of them, and what a client sees: from a pod, from the
nodes' addresses, from the host, and through the cluster DNS.

One cluster serves the whole module (tests.localcluster.clicluster); the tests
run in order and the last takes it down and looks for what Services leave on
a machine (nftables tables, conntrack flows, ph-dns, routes). Traffic that
must be timed is sent from inside the client pod's network namespace by
console.bench.netprobe; names are looked up with the pod's own tools, which
read the resolv.conf the agent gave it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from control.config import load_config
from control.localcluster.network import SERVICE_ROUTE_TABLE
from control.localcluster.proc import capture, run
from control.localcluster.runcstate import container_netns
from control.localcluster.state import read_state
from control.objects.kinds import POD, SERVICE
from tests.localcluster.clicluster import (
    Cluster,
    cli_cluster,
    container,
    down_leaves_nothing,
    http_get,
    ok,
    poll,
    running_ready,
)
from tests.localcluster.names import SHARED_CLUSTER_MODULE, unique
from tests.localcluster.traces import service_flows

pytestmark = SHARED_CLUSTER_MODULE

NAMES = unique("svc")
REPLICAS = 3
REQUESTS = 60
PROPAGATION_S = 5.0  # an endpoint change reaches every node's rules within this
REFUSED_MS = 1000.0  # a Service without endpoints refuses a connection within this
DNS_ANSWER_MS = 3000.0  # the cluster DNS answers within this, whatever its upstreams do

SELECTOR = "{app: web}"
PORTS = "[{port: 80, targetPort: 80}]"
MANIFESTS = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, labels: {SELECTOR}}}
spec:
  replicas: {REPLICAS}
  selector: {{matchLabels: {SELECTOR}}}
  template:
    metadata: {{labels: {SELECTOR}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: httpd
        image: pilothouse/busybox:latest
        command:
        - sh
        - -c
        - mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www
        ports: [{{containerPort: 80}}]
        readinessProbe:
          httpGet: {{path: /, port: 80}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{selector: {SELECTOR}, ports: {PORTS}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-np}}
spec: {{type: NodePort, selector: {SELECTOR}, ports: {PORTS}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-headless}}
spec: {{clusterIP: None, selector: {SELECTOR}, ports: {PORTS}}}
---
apiVersion: v1
kind: Service
metadata: {{name: empty}}
spec: {{selector: {{app: nothing}}, ports: {PORTS}}}
---
apiVersion: v1
kind: Service
metadata: {{name: ext}}
spec: {{type: ExternalName, externalName: nowhere.invalid}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: pilothouse/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
"""


@dataclass
class Services:
    """What the tests talk to, once everything is Ready."""

    web: list[dict[str, Any]]  # the web pods
    client: dict[str, Any]
    cluster_ip: dict[str, str]  # Service name -> its ClusterIP
    node_port: int  # web-np's
    cluster_dns: str
    node_ips: dict[str, str]
    node_netns: dict[str, str]

    @property
    def web_names(self) -> set[str]:
        return {p["metadata"]["name"] for p in self.web}

    @property
    def web_ips(self) -> set[str]:
        return {p["status"]["podIP"] for p in self.web}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with cli_cluster(tmp_path_factory.mktemp("svc") / "home", NAMES, 3) as c:
        yield c


async def ready_web(cluster: Cluster, replicas: int = REPLICAS) -> list[dict[str, Any]] | None:
    pods = (await cluster.api.list(POD, "default", label_selector="app=web"))["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    good = [p for p in live if running_ready(p)]
    return good if len(good) == replicas == len(live) else None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(cluster: Cluster) -> Services:
    path = cluster.data_dir.parent / "services.yaml"
    path.write_text(MANIFESTS)
    await ok(cluster.data_dir, "apply", "-f", str(path))
    web = await poll(lambda: ready_web(cluster), f"{REPLICAS} web pods Ready", within=120)

    async def client_running() -> dict[str, Any] | None:
        pod = await cluster.api.get(POD, "client", "default")
        return pod if running_ready(pod) else None

    client = await poll(client_running, "the client pod Running", within=60)
    ips = {}
    for name in ("web", "web-np", "empty"):
        svc = await cluster.api.get(SERVICE, name, "default")
        ips[name] = svc["spec"]["clusterIP"]
        assert ipaddress.ip_address(ips[name]) in ipaddress.ip_network(NAMES.service_cidr)
    np = await cluster.api.get(SERVICE, "web-np", "default")
    state = read_state(cluster.data_dir)
    assert state is not None
    return Services(
        web=web,
        client=client,
        cluster_ip=ips,
        node_port=int(np["spec"]["ports"][0]["nodePort"]),
        cluster_dns=load_config(None, data_dir=cluster.data_dir).network.cluster_dns,
        node_ips={n.name: n.ip for n in state.nodes.values()},
        node_netns={n.name: n.netns for n in state.nodes.values()},
    )


# -- helpers -------------------------------------------------------------------------------


def client_netns(cluster: Cluster, s: Services) -> Path:
    return container_netns(
        cluster.lay, s.client["spec"]["nodeName"], container(s.client)["containerID"]
    )


async def probe(netns: Path, *args: str, within: float = 60.0) -> dict[str, Any]:
    """console.bench.netprobe inside a network namespace: its JSON result."""
    argv = ["nsenter", f"--net={netns}", "--", sys.executable, "-m", "console.bench.netprobe"]
    code, out, err = await capture([*argv, *args], within=within)
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


async def in_client(cluster: Cluster, script: str, within: float = 60.0) -> str:
    """A shell script in the client pod, through `pilothouse exec`."""
    return await ok(cluster.data_dir, "exec", "client", "--", "sh", "-c", script, within=within)


def nslookup_addresses(out: str) -> set[str]:
    """The answer's addresses in busybox nslookup's output (after the server's)."""
    _, _, answer = out.partition("Name:")
    return {
        line.split()[-1]
        for line in answer.splitlines()
        if line.startswith("Address") and line.split()[-1].count(".") == 3
    }


async def service_rules(netns: str) -> str:
    """The service proxy's nftables table in a node's namespace ("" when it has none)."""
    argv = ["ip", "netns", "exec", netns, "nft", "list", "table", "ip", "pilothouse"]
    code, out, _ = await capture(argv)
    return out if code == 0 else ""


def mentions(rules: str, ip: str) -> bool:
    """The address itself (10.1.2.3, not 10.1.2.30) is in the rules."""
    return re.search(rf"(?<![\d.]){re.escape(ip)}(?![\d])", rules) is not None


# -- the tests, in order ---------------------------------------------------------------------


async def test_the_service_cidr_is_unreachable_and_bridges_pass_netfilter(
    cluster: Cluster,
) -> None:
    """What `up` prepares for Services on the host and in every node."""
    state = read_state(cluster.data_dir)
    assert state is not None and state.service_cidr == NAMES.service_cidr
    table = str(SERVICE_ROUTE_TABLE)
    for netns in [None, *(n.netns for n in state.nodes.values())]:
        ip = ["ip", *(["-n", netns] if netns else [])]
        route = await run([*ip, "route", "show", "table", table, NAMES.service_cidr])
        assert route.split()[:2] == ["unreachable", NAMES.service_cidr], (netns, route)
        rules = await run([*ip, "rule", "show", "to", NAMES.service_cidr])
        assert "iif lo lookup main" in rules and f"lookup {table}" in rules, (netns, rules)
    for n in state.nodes.values():
        bridged = ["sysctl", "-n", "net.bridge.bridge-nf-call-iptables"]
        assert (await run(["ip", "netns", "exec", n.netns, *bridged])).strip() == "1"


async def test_a_clusterip_balances_over_every_replica(
    cluster: Cluster, services: Services
) -> None:
    by_node = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in services.web}
    client_node = services.client["spec"]["nodeName"]
    print(f"web pods: {by_node}; client on {client_node}")
    assert set(by_node.values()) - {client_node}, "no web pod on another node than the client's"
    ip = services.cluster_ip["web"]
    out = await in_client(
        cluster, f"for i in $(seq {REQUESTS}); do wget -q -O- http://{ip}/; done", within=120
    )
    answers = out.split()
    assert len(answers) == REQUESTS, out
    assert set(answers) == services.web_names, answers
    print({name: answers.count(name) for name in sorted(services.web_names)})


async def test_a_nodeport_answers_on_every_nodes_address(services: Services) -> None:
    for node, ip in sorted(services.node_ips.items()):
        body = await asyncio.to_thread(http_get, f"http://{ip}:{services.node_port}/")
        assert body.strip() in services.web_names, (node, body)


async def test_the_host_reaches_a_clusterip(services: Services) -> None:
    """Through the host's own service proxy, which `up` configures."""
    seen = set()
    for _ in range(10):
        seen.add(
            (await asyncio.to_thread(http_get, f"http://{services.cluster_ip['web']}/")).strip()
        )
    assert seen and seen <= services.web_names, seen


async def test_the_cluster_dns_names_a_service_and_its_search_path_forms(
    cluster: Cluster, services: Services
) -> None:
    out = await in_client(cluster, "nslookup -type=a web.default.svc.cluster.local")
    assert nslookup_addresses(out) == {services.cluster_ip["web"]}, out
    # busybox nslookup tries the search list only for names without a dot; the
    # libc resolver that wget uses follows resolv.conf (search, ndots:5).
    for name in ("web", "web.default"):
        body = await in_client(cluster, f"wget -q -O- http://{name}/")
        assert body.strip() in services.web_names, (name, body)


async def test_a_headless_service_resolves_to_its_pod_ips(
    cluster: Cluster, services: Services
) -> None:
    out = await in_client(cluster, "nslookup -type=a web-headless.default.svc.cluster.local")
    assert nslookup_addresses(out) == services.web_ips, out


async def test_a_service_without_endpoints_is_refused_at_once(
    cluster: Cluster, services: Services
) -> None:
    result = await probe(
        client_netns(cluster, services), "connect", services.cluster_ip["empty"], "80"
    )
    # Refused by the service rules' reject; or, for a pod, by the node's route:
    # an address no rule DNATed is unreachable, and routing comes before the
    # forward hook where that reject is.
    assert result["outcome"] in ("ECONNREFUSED", "EHOSTUNREACH"), result
    assert result["ms"] < REFUSED_MS, result


async def test_an_external_name_fails_fast(cluster: Cluster, services: Services) -> None:
    """A CNAME to a name nobody resolves: an answer, with no address, at once."""
    name = "ext.default.svc.cluster.local"
    result = await probe(
        client_netns(cluster, services), "dns", services.cluster_dns, name, "--count", "1"
    )
    assert result["queries"] == 1 and result["errors"] == {}, result
    assert result["answers"][name]["a"] == [], result
    assert result["p99_ms"] < DNS_ANSWER_MS, result


async def test_scaling_to_one_removes_the_other_endpoints_from_every_node(
    cluster: Cluster, services: Services
) -> None:
    async def all_in_everywhere() -> bool | None:
        for ns in services.node_netns.values():
            rules = await service_rules(ns)
            if not all(mentions(rules, ip) for ip in services.web_ips):
                return None
        return True

    await poll(all_in_everywhere, "every web pod in every node's rules", within=30)
    await ok(cluster.data_dir, "scale", "deployment", "web", "--replicas", "1")
    t0 = time.monotonic()
    (kept,) = await poll(lambda: ready_web(cluster, 1), "one web pod left", within=60)
    gone = services.web_ips - {kept["status"]["podIP"]}

    async def removed_everywhere() -> bool | None:
        for ns in services.node_netns.values():
            rules = await service_rules(ns)
            if not rules or any(mentions(rules, ip) for ip in gone):
                return None
        return True

    await poll(
        removed_everywhere, f"{sorted(gone)} out of every node's rules", within=30, every=0.1
    )
    elapsed = time.monotonic() - t0
    print(f"scale to 1 -> other endpoints out of all nodes' rules in {elapsed:.2f}s")
    assert elapsed < PROPAGATION_S
    for ns in services.node_netns.values():
        assert mentions(await service_rules(ns), kept["status"]["podIP"])


async def test_down_leaves_no_service_rules_or_flows(cluster: Cluster, services: Services) -> None:
    """Runs last: `down`, then no nft table, conntrack flow, ph-dns or route of ours."""
    await asyncio.to_thread(http_get, f"http://{services.cluster_ip['web']}/")
    assert service_flows(NAMES), "the host's request left no flow to the service CIDR"
    await down_leaves_nothing(cluster, NAMES)
