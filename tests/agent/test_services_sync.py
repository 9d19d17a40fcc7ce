"""services_sync and services_update over real Peer pairs: the agent's table, the
generations it answers, out-of-sync and bad requests, nft failures, and bursts
loaded together; with a fake nft, so no root is needed. Also the hollow agent's
and the proxy-only agent's side, and the cluster DNS address with a fake `ip`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from agent.hollow import HollowAgent
from agent.main import ProxyAgent, parse_args
from agent.network.nodedns import DNS_INTERFACE, NodeDNS
from agent.network.nodenetwork import NodeNetwork
from agent.network.proxy import ServiceProxy
from agent.network.servicesync import ServiceSync
from agent.network.servicetable import Endpoint, ServiceTable
from agent.protocol import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    SERVICES_OUT_OF_SYNC,
    Handler,
    Peer,
    RpcError,
    hello,
)
from agent.protocol.services import (
    SERVICES_SYNC,
    SERVICES_UPDATE,
    Change,
    EndpointsWire,
    ServiceTableWire,
    ServiceWire,
)
from tests.agent.inprocess import control_of, peer_to
from tests.polling import eventually


def service(name: str, ip: str, port: int = 80) -> ServiceWire:
    return {
        "namespace": "default",
        "name": name,
        "type": "ClusterIP",
        "clusterIP": ip,
        "ports": [{"name": "", "protocol": "TCP", "port": port}],
        "sessionAffinity": "None",
        "sessionAffinityTimeoutSeconds": 10800,
    }


def endpoints(name: str, *ips: str) -> EndpointsWire:
    return {
        "namespace": "default",
        "name": name,
        "endpoints": [
            {"ip": ip, "ready": True, "serving": True, "terminating": False, "ports": {"": 8080}}
            for ip in ips
        ],
    }


def web_table() -> ServiceTableWire:
    return {
        "services": [service("web", "10.96.0.10")],
        "endpoints": [endpoints("web", "10.244.1.2")],
    }


def sync(generation: int, table: ServiceTableWire | None = None) -> dict[str, Any]:
    return {"generation": generation, "table": table or web_table()}


def update(generation: int, base: int, *changes: Change) -> dict[str, Any]:
    return {"generation": generation, "base": base, "changes": list(changes)}


def set_endpoints(name: str, *ips: str) -> Change:
    return {"op": "setEndpoints", "endpoints": endpoints(name, *ips)}


class FakeNft:
    """nft (and conntrack, ip) as a CommandRunner: records rulesets; `fail` makes
    nft refuse them; `gate`, while set, holds each nft call until released."""

    def __init__(self) -> None:
        self.rulesets: list[str] = []
        self.calls: list[list[str]] = []
        self.fail: str | None = None
        self.gate: asyncio.Event | None = None
        self.waiting = 0  # nft calls held at the gate

    async def __call__(self, argv: Sequence[str], data: bytes | None) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if argv[0] != "nft":
            return 0, "", ""
        if self.gate is not None:
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
        if self.fail:
            return 1, "", self.fail
        self.rulesets.append((data or b"").decode())
        return 0, "", ""


@dataclass
class Link:
    control: Peer

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        return await self.control.request(method, params)

    async def error(self, method: str, params: dict[str, Any]) -> RpcError:
        with pytest.raises(RpcError) as e:
            await self.control.request(method, params)
        return e.value


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    """serve(handlers) -> a Link whose agent end answers with those handlers."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(handlers: dict[str, Handler]) -> Link:
            return Link(await stack.enter_async_context(peer_to(handlers)))

        yield make


@pytest.fixture
def nft() -> FakeNft:
    return FakeNft()


@pytest.fixture
def services(nft: FakeNft) -> ServiceSync:
    return ServiceSync(ServiceProxy(runner=nft))


@pytest.fixture
async def link(serve: Any, services: ServiceSync) -> Link:
    """A Link whose agent end is `services`."""
    link: Link = await serve(services.handlers())
    return link


# --- sync and update ----------------------------------------------------------------


async def test_sync_loads_the_table_in_one_transaction_and_answers_its_generation(
    link: Link, nft: FakeNft, services: ServiceSync
) -> None:
    assert await link.request(SERVICES_SYNC, sync(7)) == {"generation": 7}
    assert len(nft.rulesets) == 1 and "10.96.0.10" in nft.rulesets[0]
    assert "10.244.1.2" in nft.rulesets[0]
    assert services.generation == 7
    assert [s.name for s, _ in services.table.items()] == ["web"]
    # A full sync loads the rules even when they did not change (it repairs them).
    assert await link.request(SERVICES_SYNC, sync(8)) == {"generation": 8}
    assert len(nft.rulesets) == 2


async def test_update_changes_the_table_on_its_base(
    link: Link, nft: FakeNft, services: ServiceSync
) -> None:
    await link.request(SERVICES_SYNC, sync(1))
    answer = await link.request(
        SERVICES_UPDATE,
        update(
            2,
            1,
            {"op": "upsertService", "service": service("db", "10.96.0.20", 5432)},
            set_endpoints("db", "10.244.2.7"),
            set_endpoints("web"),
        ),
    )
    assert answer == {"generation": 2}
    assert services.table.endpoints("default", "db") == (Endpoint("10.244.2.7", ports={"": 8080}),)
    assert services.table.endpoints("default", "web") == ()
    assert "10.96.0.20" in nft.rulesets[-1] and "10.244.2.7" in nft.rulesets[-1]
    answer = await link.request(
        SERVICES_UPDATE,
        update(3, 2, {"op": "deleteService", "namespace": "default", "name": "db"}),
    )
    assert answer == {"generation": 3}
    assert services.table.service("default", "db") is None
    assert "10.96.0.20" not in nft.rulesets[-1]
    # Changes that change nothing need no transaction.
    loads = len(nft.rulesets)
    assert await link.request(SERVICES_UPDATE, update(4, 3, set_endpoints("web"))) == {
        "generation": 4
    }
    assert len(nft.rulesets) == loads


async def test_update_on_another_base_is_out_of_sync(
    link: Link, nft: FakeNft, services: ServiceSync
) -> None:
    err = await link.error(SERVICES_UPDATE, update(2, 1, set_endpoints("web")))
    assert err.code == SERVICES_OUT_OF_SYNC and "no generation yet" in err.message
    await link.request(SERVICES_SYNC, sync(5))
    err = await link.error(SERVICES_UPDATE, update(7, 6, set_endpoints("web")))
    assert err.code == SERVICES_OUT_OF_SYNC
    assert "generation 6" in err.message and "generation 5" in err.message
    assert services.generation == 5 and len(nft.rulesets) == 1
    assert services.table.endpoints("default", "web")  # unchanged
    # The control plane's answer to that: a full sync, after which updates go on.
    await link.request(SERVICES_SYNC, sync(7))
    assert await link.request(SERVICES_UPDATE, update(8, 7, set_endpoints("web"))) == {
        "generation": 8
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"generation": "1", "table": web_table()}, "generation"),
        ({"generation": -1, "table": web_table()}, "generation"),
        ({"generation": 1}, "table"),
        (
            {"generation": 1, "table": {"services": [{"namespace": "d", "name": "Web"}]}},
            "table: services[0].name",
        ),
    ],
)
async def test_bad_syncs_name_their_field(
    link: Link, services: ServiceSync, params: dict[str, Any], field: str
) -> None:
    err = await link.error(SERVICES_SYNC, params)
    assert err.code == INVALID_PARAMS and field in err.message
    assert services.generation is None


async def test_bad_changes_name_their_field_and_change_nothing(
    link: Link, nft: FakeNft, services: ServiceSync
) -> None:
    await link.request(SERVICES_SYNC, sync(1))
    bad: Any = {"op": "setEndpoints", "endpoints": {"namespace": "default", "name": "x"}}
    bad["endpoints"]["endpoints"] = [{"ip": "10.244.1.300"}]
    err = await link.error(SERVICES_UPDATE, update(2, 1, set_endpoints("web"), bad))
    assert err.code == INVALID_PARAMS
    assert "changes[1].endpoints default/x.endpoints[0].ip" in err.message
    err = await link.error(SERVICES_UPDATE, update(2, 1, {"op": "renameService"}))  # type: ignore[arg-type]
    assert err.code == INVALID_PARAMS and "changes[0].op" in err.message
    err = await link.error(SERVICES_UPDATE, update(1, 1))
    assert err.code == INVALID_PARAMS and "greater than base" in err.message
    # The first change was not made either, and the agent is still at 1.
    assert services.table.endpoints("default", "web")
    assert services.generation == 1 and len(nft.rulesets) == 1


async def test_refused_rules_answer_nfts_message_until_a_sync_loads_them(
    link: Link, nft: FakeNft, services: ServiceSync
) -> None:
    await link.request(SERVICES_SYNC, sync(1))
    nft.fail = "Error: Could not process rule: No such file or directory"
    err = await link.error(SERVICES_UPDATE, update(2, 1, set_endpoints("web", "10.244.1.3")))
    assert err.code == INTERNAL_ERROR
    assert "nft -f failed" in err.message and "Could not process rule" in err.message
    assert len(nft.rulesets) == 1  # the old rules stay
    nft.fail = None
    assert await link.request(SERVICES_SYNC, sync(3)) == {"generation": 3}
    assert len(nft.rulesets) == 2


# --- bursts ---------------------------------------------------------------------------


async def test_requests_during_a_transaction_are_loaded_together_after_it(
    link: Link, nft: FakeNft, services: ServiceSync
) -> None:
    nft.gate = asyncio.Event()
    first = asyncio.create_task(link.request(SERVICES_SYNC, sync(1)))
    await eventually(lambda: nft.waiting == 1, "the first transaction started")
    later = [
        asyncio.create_task(
            link.request(SERVICES_UPDATE, update(g, g - 1, set_endpoints("web", f"10.244.1.{g}")))
        )
        for g in (2, 3, 4)
    ]
    await eventually(lambda: services.generation == 4, "every update arrived")
    # The second transaction has everything up to 4 and starts once the first ends.
    nft.gate.set()
    assert await first == {"generation": 1}
    assert [await t for t in later] == [{"generation": g} for g in (2, 3, 4)]
    assert len(nft.rulesets) == 2
    assert "10.244.1.4" in nft.rulesets[1] and "10.244.1.3" not in nft.rulesets[1]


async def test_no_answer_before_its_rules_are_in_place(
    link: Link, nft: FakeNft, services: ServiceSync
) -> None:
    await link.request(SERVICES_SYNC, sync(1))
    nft.gate = asyncio.Event()
    pending = asyncio.create_task(
        link.request(SERVICES_UPDATE, update(2, 1, set_endpoints("web", "10.244.1.9")))
    )
    await eventually(lambda: nft.waiting == 1, "the transaction started")
    await asyncio.sleep(0.05)
    assert not pending.done()
    nft.gate.set()
    assert await pending == {"generation": 2}


async def test_requests_that_waited_for_a_refused_transaction_all_get_its_error(
    link: Link, nft: FakeNft, services: ServiceSync
) -> None:
    await link.request(SERVICES_SYNC, sync(1))
    nft.gate = asyncio.Event()
    first = asyncio.create_task(link.request(SERVICES_UPDATE, update(2, 1, set_endpoints("web"))))
    await eventually(lambda: nft.waiting == 1, "the first transaction started")
    second = asyncio.create_task(
        link.request(SERVICES_UPDATE, update(3, 2, set_endpoints("web", "10.244.1.3")))
    )
    third = asyncio.create_task(
        link.request(SERVICES_UPDATE, update(4, 3, set_endpoints("web", "10.244.1.4")))
    )
    await eventually(lambda: services.generation == 4, "every update arrived")
    nft.fail = "Error: syntax error"
    nft.gate.set()
    errors = await asyncio.gather(first, second, third, return_exceptions=True)
    assert all(isinstance(e, RpcError) and "syntax error" in e.message for e in errors), errors
    # The sync's transaction, a refused one for the first update, and one more
    # (refused too) for the two that waited.
    assert nft.calls.count(["nft", "-f", "-"]) == 3


# --- the hollow and proxy-only agents ---------------------------------------------------


async def test_a_hollow_agent_keeps_the_table_and_acknowledges_generations() -> None:
    agent = HollowAgent("node-7")
    async with control_of(agent) as control:
        await hello(control, "node-7")
        assert await control.request(SERVICES_SYNC, sync(3)) == {"generation": 3}
        assert await control.request(SERVICES_UPDATE, update(4, 3, set_endpoints("web"))) == {
            "generation": 4
        }
        assert agent.services.table.service("default", "web") is not None
        assert agent.services.table.endpoints("default", "web") == ()
        with pytest.raises(RpcError) as e:
            await control.request(SERVICES_UPDATE, update(9, 8))
        assert e.value.code == SERVICES_OUT_OF_SYNC


async def test_a_netns_free_proxy_only_agent_says_so_and_acknowledges() -> None:
    args = parse_args(["--proxy-only", "--netns-free", "--node-name", "whatever"])
    agent = ProxyAgent(args)
    async with control_of(agent) as control:
        info = await hello(control, "host")
        assert info["hostname"] == "host" and info.get("proxyOnly") is True
        params = {"clusterCIDR": "10.244.0.0/16", "clusterDNS": "10.96.0.10", "routes": []}
        assert await control.request("network_config", params) == {}
        assert await control.request(SERVICES_SYNC, sync(1)) == {"generation": 1}
        assert agent.network.services.table.service("default", "web") is not None
        with pytest.raises(RpcError) as e:
            await control.request("sync_pods", {"pods": []})
        assert "method not found" in e.value.message


def test_proxy_only_flags_need_proxy_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--dns"])
    assert "--dns: only with --proxy-only" in capsys.readouterr().err
    assert parse_args(["--proxy-only", "--dns"]).dns


# --- network_config: cluster CIDR and cluster DNS ---------------------------------------


class FakeIp(FakeNft):
    """nft, and `ip` with a ph-dns interface that has `addresses` (None: no
    interface yet); `dummy` False: the kernel has no dummy interfaces."""

    def __init__(self, addresses: list[str] | None, *, dummy: bool = True) -> None:
        super().__init__()
        self.addresses = addresses
        self.dummy = dummy

    async def __call__(self, argv: Sequence[str], data: bytes | None) -> tuple[int, str, str]:
        if argv[:3] == ["ip", "link", "show"] and self.addresses is None:
            self.calls.append(list(argv))
            return 1, "", 'Device "ph-dns" does not exist.'
        if argv[:3] == ["ip", "link", "add"]:
            self.calls.append(list(argv))
            if argv[-1] == "dummy" and not self.dummy:
                return 2, "", "Error: Unknown device type."
            self.addresses = []
            return 0, "", ""
        if argv[:2] == ["ip", "-j"]:
            self.calls.append(list(argv))
            info = [{"local": a, "prefixlen": 32} for a in self.addresses or []]
            return 0, json.dumps([{"ifname": DNS_INTERFACE, "addr_info": info}]), ""
        return await super().__call__(argv, data)


async def test_cluster_dns_address_is_set_once_and_replaces_others() -> None:
    ip = FakeIp(["10.96.0.99"])
    dns = NodeDNS(ServiceTable(), runner=ip, port=0)
    try:
        # 127.0.0.1 stands for the clusterDNS: the fake ip assigns nothing.
        await dns.configure("127.0.0.1", "cluster.local")
        assert dns.server is not None and dns.server.address is not None
        assert ip.calls == [
            ["ip", "link", "show", "dev", "ph-dns"],
            ["ip", "link", "set", "dev", "ph-dns", "up"],
            ["ip", "addr", "replace", "127.0.0.1/32", "dev", "ph-dns"],
            ["ip", "-j", "-4", "addr", "show", "dev", "ph-dns"],
            ["ip", "addr", "del", "10.96.0.99/32", "dev", "ph-dns"],
        ]
        ip.calls.clear()
        await dns.configure("127.0.0.1", "cluster.local")
        assert ip.calls == []
        with pytest.raises(ValueError, match="clusterDNS"):
            await dns.configure("10.96.0.300")
    finally:
        await dns.close()


async def test_the_configured_ttl_reaches_the_answers_and_a_new_ttl_restarts_the_server() -> None:
    dns = NodeDNS(ServiceTable(), runner=FakeIp(["127.0.0.1"]), port=0)
    try:
        await dns.configure("127.0.0.1", "cluster.local")
        assert dns.server is not None and dns.server.zone.ttl == 5  # the default
        first = dns.server
        await dns.configure("127.0.0.1", "cluster.local", 30)
        assert dns.server is not first and dns.server.zone.ttl == 30
    finally:
        await dns.close()


@pytest.mark.parametrize("dummy", [True, False])
async def test_the_dns_interface_is_made_when_missing(dummy: bool) -> None:
    ip = FakeIp(None, dummy=dummy)
    dns = NodeDNS(ServiceTable(), runner=ip, port=0)
    try:
        await dns.configure("127.0.0.1")
    finally:
        await dns.close()
    adds = [c for c in ip.calls if c[:3] == ["ip", "link", "add"]]
    kinds = ["dummy"] if dummy else ["dummy", "bridge"]  # no dummies: an empty bridge
    assert adds == [["ip", "link", "add", "ph-dns", "type", kind] for kind in kinds]


async def test_network_config_sets_the_cluster_cidr_and_reloads_the_rules() -> None:
    nft = FakeNft()
    network = NodeNetwork(runner=nft, dns=False)
    assert await network.configure({"clusterCIDR": "10.244.0.0/16"}) == []
    assert nft.rulesets == []  # no table yet
    await network.services.sync(sync(1))
    assert "10.244.0.0/16" in nft.rulesets[-1]
    assert await network.configure({"clusterCIDR": "10.250.0.0/16"}) == []
    assert len(nft.rulesets) == 2 and "10.250.0.0/16" in nft.rulesets[-1]
    nft.fail = "Error: no"
    assert await network.configure({"clusterCIDR": "10.251.0.0/16"}) == [
        "nft -f failed (exit 1): Error: no"
    ]
    with pytest.raises(RpcError, match="clusterCIDR"):
        await network.configure({"clusterCIDR": "10.0.0.0/33"})
