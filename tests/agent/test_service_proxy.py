"""The service table, its nftables ruleset, and the proxy that loads it: units with a
fake command runner, and e2e tests with the real nft in network namespaces the tests
make and always delete."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.network.conntrack import Flush, stale_flows
from agent.network.nft import NftError, in_netns
from agent.network.proxy import ServiceProxy
from agent.network.proxyrules import ProxyConfig, plan, render_ruleset
from agent.network.servicetable import (
    Endpoint,
    Service,
    ServicePort,
    ServiceTable,
    ServiceTableError,
    parse_endpoints,
    parse_service,
)

log = logging.getLogger(__name__)


def port_80(namespace: str, name: str, **fields: Any) -> Service:
    """A Service with one unnamed TCP port, 80."""
    return Service(namespace, name, ports=(ServicePort("", "TCP", 80),), **fields)


def web_table() -> ServiceTable:
    t = ServiceTable()
    t.upsert_service(
        Service(
            "default",
            "web",
            type="NodePort",
            cluster_ip="10.96.0.10",
            ports=(ServicePort("http", "TCP", 80, 30080), ServicePort("dns", "UDP", 53)),
        )
    )
    t.set_endpoints(
        "default",
        "web",
        [
            Endpoint("10.244.1.3", ports={"http": 8080, "dns": 5353}),
            Endpoint("10.244.1.2", ports={"http": 8081}),
            Endpoint("10.244.1.9", ready=False, serving=False, ports={"http": 8080}),
        ],
    )
    return t


def chain(ruleset: str, prefix: str, suffix: str = "") -> str:
    """The rules of the one chain named prefix...suffix."""
    pattern = r"\tchain (" + re.escape(prefix) + r"\S*" + re.escape(suffix) + r") \{\n(.*?)\n\t\}"
    found = re.findall(pattern, ruleset, re.S)
    assert len(found) == 1, f"{len(found)} chains match {prefix}...{suffix}"
    return str(found[0][1])


def map_elements(ruleset: str, name: str) -> list[str]:
    m = re.search(r"\t(?:map|set) " + re.escape(name) + r" \{\n(.*?)\n\t\}", ruleset, re.S)
    assert m, f"no map {name}"
    body = m.group(1)
    el = re.search(r"elements = \{\n(.*?)\n\t\t\}", body, re.S)
    return [e.strip().rstrip(",") for e in el.group(1).splitlines()] if el else []


# --- the table --------------------------------------------------------------------


def test_wire_round_trip_and_defaults() -> None:
    svc = parse_service(
        {
            "namespace": "default",
            "name": "web",
            "clusterIP": "10.96.0.10",
            "ports": [{"name": "http", "port": 80}],
        }
    )
    assert svc == Service(
        "default", "web", cluster_ip="10.96.0.10", ports=(ServicePort("http", "TCP", 80),)
    )
    assert parse_service(svc.to_wire()) == svc
    key, eps = parse_endpoints(
        {"namespace": "default", "name": "web", "endpoints": [{"ip": "10.244.1.2", "ready": False}]}
    )
    assert key == ("default", "web")
    assert eps == [Endpoint("10.244.1.2", ready=False, serving=False, terminating=False)]
    headless = parse_service({"namespace": "a", "name": "b", "clusterIP": "None"})
    assert headless.cluster_ip is None and headless.headless


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"namespace": "Default", "name": "web"}, "service.namespace"),
        ({"namespace": "d", "name": "web", "clusterIP": "10.96.0.300"}, "service d/web.clusterIP"),
        ({"namespace": "d", "name": "web", "type": "Magic"}, "service d/web.type"),
        ({"namespace": "d", "name": "web", "ports": [{"port": 0}]}, "service d/web.ports[0].port"),
        (
            {"namespace": "d", "name": "web", "ports": [{"port": 80, "protocol": "ICMP"}]},
            "ports[0].protocol",
        ),
        (
            {"namespace": "d", "name": "web", "ports": [{"port": 80}, {"port": 80}]},
            "service d/web.ports[1]",
        ),
        ({"namespace": "d", "name": "x", "type": "ExternalName"}, "service d/x.externalName"),
        (
            {"namespace": "d", "name": "x", "sessionAffinityTimeoutSeconds": 0},
            "sessionAffinityTimeoutSeconds",
        ),
    ],
)
def test_bad_service_names_its_field(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(ServiceTableError, match=re.escape(field)):
        parse_service(obj)


def test_bad_endpoint_names_its_field() -> None:
    with pytest.raises(ServiceTableError, match=r"endpoints d/web\.endpoints\[1\]\.ip"):
        parse_endpoints(
            {"namespace": "d", "name": "web", "endpoints": [{"ip": "10.0.0.1"}, {"ip": 7}]}
        )
    with pytest.raises(ServiceTableError, match=r"\.ports\['http'\]"):
        parse_endpoints(
            {
                "namespace": "d",
                "name": "web",
                "endpoints": [{"ip": "10.0.0.1", "ports": {"http": "80"}}],
            }
        )


def test_table_changes_count_generations() -> None:
    t = ServiceTable()
    svc = port_80("default", "web", cluster_ip="10.96.0.10")
    assert t.upsert_service(svc)
    assert not t.upsert_service(svc)
    assert t.set_endpoints("default", "web", [Endpoint("10.244.1.2", ports={"": 80})])
    assert not t.set_endpoints("default", "web", [Endpoint("10.244.1.2", ports={"": 80})])
    g = t.generation
    assert t.delete_service("default", "web") and t.generation == g + 1
    assert t.endpoints("default", "web") == () and len(t) == 0
    assert not t.delete_service("default", "web")
    # Endpoints may come before their Service.
    t.set_endpoints("default", "late", [Endpoint("10.244.1.4")])
    assert t.items() == []
    t.upsert_service(Service("default", "late", cluster_ip="10.96.0.11"))
    assert t.items()[0][1] == (Endpoint("10.244.1.4"),)


def test_replace_from_wire_is_all_or_nothing() -> None:
    t = web_table()
    before = t.to_wire()
    with pytest.raises(ServiceTableError, match=r"services\[1\]"):
        t.replace_from_wire({"services": [before["services"][0], {"namespace": "x"}]})
    assert t.to_wire() == before
    fresh = ServiceTable()
    fresh.replace_from_wire(before)
    assert fresh.items() == t.items()


# --- the ruleset ------------------------------------------------------------------


def test_ruleset_replaces_the_whole_table_in_one_transaction() -> None:
    text = render_ruleset(web_table().items())
    assert text.startswith(
        "table ip pilothouse {}\ndelete table ip pilothouse\ntable ip pilothouse {\n"
    )
    assert "type nat hook prerouting priority -100;" in chain(text, "nat-prerouting")
    assert "type nat hook output priority -100;" in chain(text, "nat-output")
    assert "ip daddr . meta l4proto . th dport vmap @service-ips" in chain(text, "services")
    assert (
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"
        in chain(text, "services")
    )


def test_clusterip_dnats_to_ready_endpoints_with_their_own_target_ports() -> None:
    text = render_ruleset(web_table().items())
    ips = map_elements(text, "service-ips")
    assert len(ips) == 2
    assert re.fullmatch(
        r"10\.96\.0\.10 \. tcp \. 80 : goto svc-[A-Z2-7]{8}-default/web/tcp/http", ips[0]
    )
    http = chain(text, "svc-", "-default/web/tcp/http")
    # The not-ready endpoint is left out; each target port comes from its endpoint.
    assert (
        "meta l4proto tcp dnat ip addr . port to numgen random mod 2 "
        "map { 0 : 10.244.1.2 . 8081, 1 : 10.244.1.3 . 8080 }"
    ) in http
    # Only one endpoint has the "dns" port.
    assert "meta l4proto udp dnat ip to 10.244.1.3:5353" in chain(
        text, "svc-", "-default/web/udp/dns"
    )
    assert map_elements(text, "hairpin") == ["10.244.1.2 . 10.244.1.2", "10.244.1.3 . 10.244.1.3"]


def test_terminating_endpoints_serve_only_when_none_is_ready() -> None:
    t = ServiceTable()
    t.upsert_service(port_80("d", "s", cluster_ip="10.96.0.20"))
    eps = [
        Endpoint("10.244.1.2", ready=False, serving=True, terminating=True, ports={"": 80}),
        Endpoint("10.244.1.3", ready=False, serving=False, terminating=True, ports={"": 80}),
    ]
    t.set_endpoints("d", "s", eps)
    assert "dnat ip to 10.244.1.2:80" in chain(render_ruleset(t.items()), "svc-")
    t.set_endpoints("d", "s", [*eps, Endpoint("10.244.1.4", ports={"": 80})])
    assert "dnat ip to 10.244.1.4:80" in chain(render_ruleset(t.items()), "svc-")


def test_service_without_endpoints_is_rejected_in_filter_chains() -> None:
    t = web_table()
    t.set_endpoints("default", "web", [])
    text = render_ruleset(t.items())
    assert map_elements(text, "service-ips") == []
    assert map_elements(text, "no-endpoint-services") == [
        "10.96.0.10 . tcp . 80 : goto reject-chain",
        "10.96.0.10 . udp . 53 : goto reject-chain",
    ]
    assert map_elements(text, "no-endpoint-nodeports") == ["tcp . 30080 : goto reject-chain"]
    assert "reject" in chain(text, "reject-chain")
    for hook in ("input", "forward", "output"):
        body = chain(text, f"filter-{hook}")
        assert f"type filter hook {hook} priority -110;" in body
        assert "ct state new jump service-endpoints-check" in body
    assert "vmap @no-endpoint-services" in chain(text, "service-endpoints-check")


def test_nodeport_goes_through_a_masquerading_chain() -> None:
    text = render_ruleset(web_table().items())
    [np] = map_elements(text, "service-nodeports")
    assert re.fullmatch(r"tcp \. 30080 : goto ext-\S+-default/web/tcp/http", np)
    ext = chain(text, "ext-")
    assert ext.split("\n")[0].strip() == "jump mark-for-masquerade"
    assert re.search(r"goto svc-\S+-default/web/tcp/http", ext)


def test_masquerade_marks_off_cluster_and_hairpin_traffic() -> None:
    text = render_ruleset(web_table().items(), ProxyConfig(cluster_cidr="10.244.0.0/16"))
    assert chain(text, "svc-", "/web/tcp/http").split("\n")[0].strip() == (
        "ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade"
    )
    post = chain(text, "nat-postrouting").split("\n")
    assert [r.strip() for r in post] == [
        "type nat hook postrouting priority 100; policy accept;",
        "ct status dnat ip saddr . ip daddr @hairpin jump mark-for-masquerade",
        "meta mark & 0x4000 == 0 return",
        "meta mark set meta mark ^ 0x4000",
        "masquerade fully-random",
    ]
    assert "meta mark set meta mark | 0x4000" in chain(text, "mark-for-masquerade")
    no_cidr = render_ruleset(web_table().items())
    assert "ip saddr !=" not in no_cidr


def test_client_ip_affinity_remembers_the_endpoint_per_client() -> None:
    t = web_table()
    svc = t.service("default", "web")
    assert svc is not None
    t.upsert_service(
        Service(
            svc.namespace,
            svc.name,
            type=svc.type,
            cluster_ip=svc.cluster_ip,
            ports=svc.ports,
            session_affinity="ClientIP",
            affinity_timeout=600,
        )
    )
    text = render_ruleset(t.items())
    aff = re.search(r"\tmap (aff-\S+/tcp/http) \{\n(.*?)\n\t\}", text, re.S)
    assert aff
    name, body = aff.groups()
    assert "type ipv4_addr : ipv4_addr . inet_service" in body
    assert "flags dynamic,timeout" in body and "timeout 600s" in body
    assert f"dnat ip addr . port to ip saddr map @{name}" in chain(text, "svc-", "/web/tcp/http")
    # The UDP port has one endpoint, so one endpoint chain, and its own map.
    assert re.search(r"goto ep-\S+/web/udp/dns__10\.244\.1\.3/5353", text)
    assert len(re.findall(r"\tmap aff-", text)) == 2


@pytest.fixture
def affinity_text() -> str:
    t = ServiceTable()
    t.upsert_service(
        port_80(
            "d", "s", cluster_ip="10.96.0.30", session_affinity="ClientIP", affinity_timeout=600
        )
    )
    t.set_endpoints(
        "d", "s", [Endpoint("10.244.1.2", ports={"": 80}), Endpoint("10.244.1.3", ports={"": 80})]
    )
    return render_ruleset(t.items())


def test_affinity_chains(affinity_text: str) -> None:
    text = affinity_text
    [aff] = re.findall(r"\tmap (aff-\S+) \{", text)
    svc = chain(text, "svc-").split("\n")
    assert svc[0].strip() == f"meta l4proto tcp dnat ip addr . port to ip saddr map @{aff}"
    assert re.fullmatch(
        r"numgen random mod 2 vmap \{ 0 : goto (ep-\S+__10\.244\.1\.2/80), 1 : goto (ep-\S+__10\.244\.1\.3/80) \}",
        svc[1].strip(),
    )
    ep = chain(text, "ep-", "__10.244.1.3/80").split("\n")
    assert [r.strip() for r in ep] == [
        f"update @{aff} {{ ip saddr timeout 600s : 10.244.1.3 . 80 }}",
        "meta l4proto tcp dnat ip to 10.244.1.3:80",
    ]


def test_headless_and_externalname_get_no_rules() -> None:
    t = ServiceTable()
    t.upsert_service(port_80("d", "headless"))
    t.set_endpoints("d", "headless", [Endpoint("10.244.1.2", ports={"": 80})])
    t.upsert_service(Service("d", "ext", type="ExternalName", external_name="example.org"))
    assert plan(t.items()) == []
    text = render_ruleset(t.items())
    assert "svc-" not in text and map_elements(text, "no-endpoint-services") == []


def test_a_clusterip_port_claimed_twice_goes_to_the_first() -> None:
    t = ServiceTable()
    for name in ("a", "b"):
        t.upsert_service(
            Service(
                "d",
                name,
                type="NodePort",
                cluster_ip="10.96.0.40",
                ports=(ServicePort("", "TCP", 80, 30000),),
            )
        )
    assert [p.service for p in plan(t.items())] == ["a"]


def test_rendering_a_thousand_services_is_fast() -> None:
    t = ServiceTable()
    for i in range(1000):
        name = f"svc-{i}"
        t.upsert_service(
            Service(
                "bench",
                name,
                type="NodePort",
                cluster_ip=f"10.96.{i // 250}.{i % 250 + 1}",
                ports=(ServicePort("http", "TCP", 80, 30000 + i),),
            )
        )
        t.set_endpoints(
            "bench",
            name,
            [
                Endpoint(f"10.244.{i // 25}.{(i % 25) * 10 + j + 1}", ports={"http": 8080})
                for j in range(10)
            ],
        )
    started = time.perf_counter()
    text = render_ruleset(t.items(), ProxyConfig(cluster_cidr="10.244.0.0/16"))
    took = time.perf_counter() - started
    log.warning("rendered 1000 services x 10 endpoints (%d bytes) in %.3fs", len(text), took)
    print(f"render 1000 services x 10 endpoints: {took:.3f}s, {len(text)} bytes")
    assert len(map_elements(text, "service-ips")) == 1000
    assert text.count("numgen random mod 10 map") == 1000


# --- the proxy with a fake runner ---------------------------------------------------


class FakeRunner:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], bytes | None]] = []
        self.fail_nft: str | None = None

    async def __call__(self, argv: Sequence[str], data: bytes | None) -> tuple[int, str, str]:
        self.calls.append((list(argv), data))
        if "nft" in argv and self.fail_nft:
            return 1, "", self.fail_nft
        if "conntrack" in argv:
            return 1, "", "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n"
        return 0, "", ""


async def test_proxy_loads_rules_through_nft_in_the_netns() -> None:
    runner = FakeRunner()
    proxy = ServiceProxy(netns="node-1", runner=runner)
    t = web_table()
    assert await proxy.sync(t) == []
    argv, data = runner.calls[0]
    assert argv == ["ip", "netns", "exec", "node-1", "nft", "-f", "-"]
    assert data == render_ruleset(t.items()).encode()
    # Unchanged: nothing to do, unless forced.
    n = len(runner.calls)
    await proxy.sync(t)
    assert len(runner.calls) == n
    await proxy.sync(t, force=True)
    assert len(runner.calls) == n + 1
    await proxy.cleanup()
    assert runner.calls[-1] == (
        ["ip", "netns", "exec", "node-1", "nft", "-f", "-"],
        b"table ip pilothouse {}\ndelete table ip pilothouse\n",
    )


async def test_refused_rules_raise_with_nfts_message_and_keep_the_old_state() -> None:
    runner = FakeRunner()
    proxy = ServiceProxy(runner=runner)
    t = web_table()
    await proxy.sync(t)
    applied = proxy.applied
    t.set_endpoints("default", "web", [])
    runner.fail_nft = "Error: Could not process rule: No such file or directory"
    with pytest.raises(NftError, match="Could not process rule"):
        await proxy.sync(t)
    assert proxy.applied == applied
    assert runner.calls[-1][0] == ["nft", "-f", "-"]


async def test_removed_udp_endpoints_get_their_flows_flushed() -> None:
    runner = FakeRunner()
    proxy = ServiceProxy(runner=runner)
    t = ServiceTable()
    t.upsert_service(
        Service(
            "d",
            "dns",
            type="NodePort",
            cluster_ip="10.96.0.53",
            ports=(ServicePort("dns", "UDP", 53, 30053),),
        )
    )
    eps = [Endpoint("10.244.1.2", ports={"dns": 53}), Endpoint("10.244.1.3", ports={"dns": 53})]
    t.set_endpoints("d", "dns", eps)
    await proxy.sync(t)
    # First endpoints of a UDP port: flows made while it had none go.
    assert [c[0] for c in runner.calls[1:]] == [
        ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.53", "--orig-port-dst", "53"],
        ["conntrack", "-D", "-p", "udp", "--orig-port-dst", "30053"],
    ]
    runner.calls.clear()
    t.set_endpoints("d", "dns", eps[:1])
    assert await proxy.sync(t) == []  # "0 flow entries" is no error
    assert [c[0] for c in runner.calls[1:]] == [
        [
            "conntrack",
            "-D",
            "-p",
            "udp",
            "--orig-dst",
            "10.96.0.53",
            "--orig-port-dst",
            "53",
            "--dst-nat",
            "10.244.1.3",
        ],
        ["conntrack", "-D", "-p", "udp", "--orig-port-dst", "30053", "--dst-nat", "10.244.1.3"],
    ]


def test_stale_flows_ignore_tcp_and_unchanged_ports() -> None:
    t = web_table()
    before = plan(t.items())
    assert stale_flows(before, before) == []
    t.set_endpoints("default", "web", [Endpoint("10.244.1.2", ports={"http": 8081})])
    # The TCP port lost 10.244.1.3 too, but only UDP flows are flushed.
    assert stale_flows(before, plan(t.items())) == [Flush("10.96.0.10", 53, "10.244.1.3")]


def test_netns_names_are_checked() -> None:
    assert in_netns(None, ["nft"]) == ["nft"]
    with pytest.raises(ValueError, match="netns"):
        in_netns("../x", ["nft"])


# --- e2e: the real nft, in network namespaces made here ----------------------------

# Connects `count` times to host:port in the namespace it runs in; prints one JSON
# list: the body of GET /who, or the error's class name, and how long each took.
CLIENT = """
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(count):
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(b"GET /who HTTP/1.0\\r\\n\\r\\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        result = data.split(b"\\r\\n\\r\\n", 1)[-1].decode().strip()
    except OSError as e:
        result = type(e).__name__
    out.append([result, time.monotonic() - start])
print(json.dumps(out))
"""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=60)


def _have_nft() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("nft", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    return None


@pytest.fixture
def netns_factory() -> Iterator[Callable[[str], str]]:
    """Makes network namespaces with unique names; all are deleted at the end."""
    why = _have_nft()
    if why:
        pytest.skip(why)
    made: list[str] = []

    def make(role: str) -> str:
        name = f"phsvc-{role}-{os.getpid()}-{len(made)}"
        _run("ip", "netns", "add", name)
        made.append(name)
        _run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    try:
        yield make
    finally:
        for name in made:
            _run("ip", "netns", "del", name, check=False)


@pytest.mark.e2e
async def test_nft_applies_lists_keeps_rules_on_failure_and_cleans_up(
    netns_factory: Callable[[str], str],
) -> None:
    ns = netns_factory("nft")
    proxy = ServiceProxy(ProxyConfig(cluster_cidr="10.244.0.0/16"), netns=ns)
    t = web_table()
    svc = t.service("default", "web")
    assert svc is not None
    t.upsert_service(
        port_80("default", "sticky", cluster_ip="10.96.0.11", session_affinity="ClientIP")
    )
    t.set_endpoints("default", "sticky", [Endpoint("10.244.1.2", ports={"": 80})])
    t.upsert_service(port_80("default", "empty", cluster_ip="10.96.0.12"))
    await proxy.sync(t)
    listed = await proxy.nft.list_table()
    assert listed is not None
    chains = {o["chain"]["name"] for o in listed["nftables"] if "chain" in o}
    assert {"services", "nat-prerouting", "nat-postrouting", "reject-chain"} <= chains
    assert any(c.startswith("svc-") and c.endswith("-default/web/tcp/http") for c in chains)
    maps = {o["map"]["name"]: o["map"] for o in listed["nftables"] if "map" in o}
    assert len(maps["service-ips"]["elem"]) == 3
    assert len(maps["no-endpoint-services"]["elem"]) == 1

    # A refused ruleset (even one that starts by deleting the table) changes nothing.
    broken = render_ruleset(ServiceTable().items()).replace("reject\n", "reject with bogus\n")
    with pytest.raises(NftError, match="Error"):
        await proxy.nft.apply(broken)
    assert await proxy.nft.list_table() == listed

    # A changed table replaces the rules whole.
    t.delete_service("default", "web")
    await proxy.sync(t)
    after = await proxy.nft.list_table()
    assert after is not None
    assert not any("/default/web/" in o["chain"]["name"] for o in after["nftables"] if "chain" in o)

    await proxy.cleanup()
    assert await proxy.nft.list_table() is None
    await proxy.cleanup()  # twice is fine


@dataclass
class Wired:
    """A "node" namespace (where the rules go) wired by a veth pair to a "pods"
    namespace where two HTTP servers answer GET /who on 10.250.0.2:8080 ("one")
    and 10.250.0.3:8080 ("two")."""

    node: str
    pods: str

    def connect(self, host: str, port: int, count: int = 1, *, ns: str = "") -> list[str]:
        """Results of `count` connections from the node (or ns): body or error name."""
        r = _run(
            *("ip", "netns", "exec", ns or self.node, sys.executable, "-c", CLIENT),
            *(host, str(port), str(count)),
        )
        return [str(result) for result, _ in json.loads(r.stdout)]

    def timed(self, host: str, port: int) -> tuple[str, float]:
        r = _run(
            "ip", "netns", "exec", self.node, sys.executable, "-c", CLIENT, host, str(port), "1"
        )
        [(result, took)] = json.loads(r.stdout)
        return str(result), float(took)


@pytest.fixture
async def wired(netns_factory: Callable[[str], str], tmp_path: Path) -> AsyncIterator[Wired]:
    node, pods = netns_factory("node"), netns_factory("pods")
    veth_node, veth_pods = f"phsvn{os.getpid() % 100000}", f"phsvp{os.getpid() % 100000}"
    _run("ip", "-n", node, "link", "add", veth_node, "type", "veth", "peer", "name", veth_pods)
    _run("ip", "-n", node, "link", "set", veth_pods, "netns", pods)
    _run("ip", "-n", node, "addr", "add", "10.250.0.1/24", "dev", veth_node)
    _run("ip", "-n", node, "link", "set", veth_node, "up")
    for addr in ("10.250.0.2/24", "10.250.0.3/24"):
        _run("ip", "-n", pods, "addr", "add", addr, "dev", veth_pods)
    _run("ip", "-n", pods, "link", "set", veth_pods, "up")
    # ClusterIPs need a route for the first packet to leave at all; pods reach
    # them through the node, which forwards.
    _run("ip", "-n", node, "route", "add", "10.96.0.0/16", "dev", veth_node)
    _run("ip", "-n", pods, "route", "add", "10.96.0.0/16", "via", "10.250.0.1")
    _run("ip", "netns", "exec", node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

    w = Wired(node, pods)
    servers: list[asyncio.subprocess.Process] = []
    try:
        for ip, who in (("10.250.0.2", "one"), ("10.250.0.3", "two")):
            root = tmp_path / who
            root.mkdir()
            (root / "who").write_text(who)
            server = await asyncio.create_subprocess_exec(
                *("ip", "netns", "exec", pods, sys.executable, "-m", "http.server", "8080"),
                *("--bind", ip, "--directory", str(root)),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            servers.append(server)
        deadline = time.monotonic() + 20
        while w.connect("10.250.0.2", 8080) != ["one"] or w.connect("10.250.0.3", 8080) != ["two"]:
            assert time.monotonic() < deadline, "the test servers did not start"
            await asyncio.sleep(0.2)
        yield w
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                async with asyncio.timeout(10):
                    await server.wait()
            except TimeoutError:
                server.kill()
                await server.wait()


BOTH = [Endpoint("10.250.0.2", ports={"http": 8080}), Endpoint("10.250.0.3", ports={"http": 8080})]


@pytest.mark.e2e
async def test_traffic_is_dnated_rejected_and_sticky(wired: Wired) -> None:
    t = ServiceTable()
    port = (ServicePort("http", "TCP", 80, 30080),)
    t.upsert_service(Service("d", "web", type="NodePort", cluster_ip="10.96.0.10", ports=port))
    t.set_endpoints("d", "web", BOTH)
    http = (ServicePort("http", "TCP", 80),)
    t.upsert_service(
        Service("d", "sticky", cluster_ip="10.96.0.11", ports=http, session_affinity="ClientIP")
    )
    t.set_endpoints("d", "sticky", BOTH)
    t.upsert_service(Service("d", "empty", cluster_ip="10.96.0.12", ports=http))
    proxy = ServiceProxy(ProxyConfig(cluster_cidr="10.244.0.0/16"), netns=wired.node)
    await proxy.sync(t)

    assert set(wired.connect("10.96.0.10", 80, 24)) == {"one", "two"}
    sticky = wired.connect("10.96.0.11", 80, 12)
    assert len(set(sticky)) == 1 and sticky[0] in ("one", "two"), sticky
    refused, took = wired.timed("10.96.0.12", 80)
    assert refused == "ConnectionRefusedError" and took < 1, (refused, took)
    # A NodePort on the node's own address.
    assert set(wired.connect("10.250.0.1", 30080, 8)) <= {"one", "two"}
    # One endpoint gone: all traffic goes to the other.
    t.set_endpoints("d", "web", BOTH[1:])
    await proxy.sync(t)
    assert set(wired.connect("10.96.0.10", 80, 8)) == {"two"}
    await proxy.cleanup()
    # No rules: the ClusterIP leads nowhere.
    [nowhere] = wired.connect("10.96.0.10", 80)
    assert nowhere.endswith("Error"), nowhere


@pytest.mark.e2e
async def test_a_pod_reaches_itself_through_its_service(wired: Wired) -> None:
    """Hairpin: 10.250.0.2 connects to a ClusterIP whose one endpoint is itself.
    The cluster CIDR holds the pods, so only the hairpin rule masquerades."""
    t = ServiceTable()
    t.upsert_service(
        Service("d", "self", cluster_ip="10.96.0.20", ports=(ServicePort("http", "TCP", 80),))
    )
    t.set_endpoints("d", "self", BOTH[:1])
    proxy = ServiceProxy(ProxyConfig(cluster_cidr="10.250.0.0/24"), netns=wired.node)
    await proxy.sync(t)
    assert wired.connect("10.96.0.20", 80, 3, ns=wired.pods) == ["one"] * 3
    await proxy.cleanup()
