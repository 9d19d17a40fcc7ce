"""The node-local cluster DNS, in process on 127.0.0.1, asked over UDP and TCP with
dnslib's client-side messages."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from agent.network.dns import ClusterDNS, upstreams_from_resolv_conf
from agent.network.servicetable import Endpoint, Service, ServicePort, ServiceTable

D = "cluster.local"


def table() -> ServiceTable:
    t = ServiceTable()
    t.upsert_service(
        Service(
            "default",
            "web",
            cluster_ip="10.96.0.10",
            ports=(ServicePort("http", "TCP", 80), ServicePort("dns", "UDP", 53)),
        )
    )
    t.set_endpoints("default", "web", [Endpoint("10.244.1.2", ports={"http": 8080})])
    t.upsert_service(Service("default", "db", ports=(ServicePort("pg", "TCP", 5432),)))
    t.set_endpoints(
        "default",
        "db",
        [
            Endpoint("10.244.1.5", hostname="db-0", ports={"pg": 5432}),
            Endpoint("10.244.1.6", hostname="db-1", ports={"pg": 6432}),
            Endpoint("10.244.1.7", hostname="db-2", ready=False, ports={"pg": 5432}),
            Endpoint("10.244.2.1", ports={"pg": 5432}),
        ],
    )
    t.upsert_service(
        Service(
            "default", "alias", type="ExternalName", external_name="web.default.svc.cluster.local"
        )
    )
    t.upsert_service(
        Service("default", "outside", type="ExternalName", external_name="example.org")
    )
    return t


@contextlib.asynccontextmanager
async def serving(t: ServiceTable, **kwargs: Any) -> AsyncIterator[ClusterDNS]:
    dns = ClusterDNS(t, **kwargs)
    await dns.start("127.0.0.1", 0)
    try:
        yield dns
    finally:
        await dns.close()


@pytest.fixture
async def dns() -> AsyncIterator[ClusterDNS]:
    async with serving(table()) as server:
        yield server


async def ask(server: ClusterDNS, name: str, qtype: str = "A", *, tcp: bool = False) -> Any:
    assert server.address is not None
    host, port = server.address
    q = DNSRecord.question(name, qtype)
    data = await asyncio.to_thread(q.send, host, port, tcp=tcp, timeout=5)
    reply = DNSRecord.parse(data)
    assert reply.header.id == q.header.id
    return reply


def answers(reply: Any, qtype: str | None = None) -> list[str]:
    return sorted(
        str(rr.rdata) for rr in reply.rr if qtype is None or rr.rtype == getattr(QTYPE, qtype)
    )


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_clusterip_service_a_record(dns: ClusterDNS, tcp: bool) -> None:
    reply = await ask(dns, f"web.default.svc.{D}", tcp=tcp)
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa
    assert answers(reply) == ["10.96.0.10"]
    assert reply.rr[0].ttl == 5
    # Names are case-insensitive and may end with a dot.
    assert answers(await ask(dns, f"WEB.Default.svc.{D}.", tcp=tcp)) == ["10.96.0.10"]


async def test_headless_service_has_one_a_per_ready_endpoint(dns: ClusterDNS) -> None:
    reply = await ask(dns, f"db.default.svc.{D}")
    assert answers(reply) == ["10.244.1.5", "10.244.1.6", "10.244.2.1"]
    assert answers(await ask(dns, f"db-1.db.default.svc.{D}")) == ["10.244.1.6"]
    assert answers(await ask(dns, f"10-244-2-1.db.default.svc.{D}")) == ["10.244.2.1"]
    # A not-ready endpoint has no record.
    missing = await ask(dns, f"db-2.db.default.svc.{D}")
    assert missing.header.rcode == RCODE.NXDOMAIN


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_srv_records_for_named_ports(dns: ClusterDNS, tcp: bool) -> None:
    reply = await ask(dns, f"_http._tcp.web.default.svc.{D}", "SRV", tcp=tcp)
    assert answers(reply) == [f"0 100 80 web.default.svc.{D}."]
    assert [str(rr.rdata) for rr in reply.ar if rr.rtype == QTYPE.A] == ["10.96.0.10"]
    assert answers(await ask(dns, f"_dns._udp.web.default.svc.{D}", "SRV", tcp=tcp)) == [
        f"0 100 53 web.default.svc.{D}."
    ]
    headless = await ask(dns, f"_pg._tcp.db.default.svc.{D}", "SRV", tcp=tcp)
    assert answers(headless) == [
        f"0 100 5432 10-244-2-1.db.default.svc.{D}.",
        f"0 100 5432 db-0.db.default.svc.{D}.",
        f"0 100 6432 db-1.db.default.svc.{D}.",
    ]
    missing = await ask(dns, f"_nope._tcp.web.default.svc.{D}", "SRV", tcp=tcp)
    assert missing.header.rcode == RCODE.NXDOMAIN


async def test_pod_records(dns: ClusterDNS) -> None:
    assert answers(await ask(dns, f"10-244-3-4.kube-system.pod.{D}")) == ["10.244.3.4"]
    bad = await ask(dns, f"10-244-3-999.default.pod.{D}")
    assert bad.header.rcode == RCODE.NXDOMAIN
    deeper = await ask(dns, f"x.10-244-3-4.default.pod.{D}")
    assert deeper.header.rcode == RCODE.NXDOMAIN
    parent = await ask(dns, f"default.pod.{D}")
    assert parent.header.rcode == RCODE.NOERROR and parent.rr == []


async def test_ptr_for_cluster_ips_and_endpoints(dns: ClusterDNS) -> None:
    assert answers(await ask(dns, "10.0.96.10.in-addr.arpa", "PTR")) == [f"web.default.svc.{D}."]
    assert answers(await ask(dns, "6.1.244.10.in-addr.arpa", "PTR")) == [
        f"db-1.db.default.svc.{D}."
    ]


async def test_externalname_is_a_cname(dns: ClusterDNS) -> None:
    reply = await ask(dns, f"alias.default.svc.{D}")
    # In the cluster domain, the target's records follow the CNAME.
    assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in reply.rr] == [
        ("CNAME", f"web.default.svc.{D}."),
        ("A", "10.96.0.10"),
    ]
    # Outside it, with no upstream to ask, the CNAME alone.
    outside = await ask(dns, f"outside.default.svc.{D}")
    assert outside.header.rcode == RCODE.NOERROR
    assert answers(outside) == ["example.org."]
    assert answers(await ask(dns, f"outside.default.svc.{D}", "CNAME"), "CNAME") == ["example.org."]


async def test_missing_names_are_nxdomain_with_the_soa(dns: ClusterDNS) -> None:
    for name in (f"nope.default.svc.{D}", f"web.other.svc.{D}", f"x.y.{D}"):
        reply = await ask(dns, name)
        assert reply.header.rcode == RCODE.NXDOMAIN, name
        assert reply.rr == []
        assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]
        assert str(reply.auth[0].rname) == f"{D}."
        assert reply.auth[0].rdata.times[-1] == 5
    # Names that exist, without records of the type asked: NOERROR, no answer.
    for name, qtype in ((f"web.default.svc.{D}", "AAAA"), (f"default.svc.{D}", "A")):
        reply = await ask(dns, name, qtype)
        assert reply.header.rcode == RCODE.NOERROR and reply.rr == [], name
        assert [QTYPE[rr.rtype] for rr in reply.auth] == ["SOA"]
    soa = await ask(dns, D, "SOA")
    assert answers(soa, "SOA")[0].startswith(f"ns.dns.{D}. hostmaster.{D}.")


async def test_ttl_and_domain_are_configurable() -> None:
    async with serving(table(), ttl=30, domain="example.internal") as dns:
        reply = await ask(dns, "web.default.svc.example.internal")
        assert answers(reply) == ["10.96.0.10"] and reply.rr[0].ttl == 30


async def test_table_changes_show_at_once(dns: ClusterDNS) -> None:
    dns.table.upsert_service(Service("default", "new", cluster_ip="10.96.0.99"))
    assert answers(await ask(dns, f"new.default.svc.{D}")) == ["10.96.0.99"]
    dns.table.delete_service("default", "web")
    assert (await ask(dns, f"web.default.svc.{D}")).header.rcode == RCODE.NXDOMAIN


async def test_large_answers_are_truncated_over_udp_and_whole_over_tcp() -> None:
    t = ServiceTable()
    t.upsert_service(Service("default", "many", ports=(ServicePort("", "TCP", 80),)))
    t.set_endpoints("default", "many", [Endpoint(f"10.244.9.{i}") for i in range(1, 101)])
    async with serving(t) as dns:
        udp = await ask(dns, f"many.default.svc.{D}")
        assert udp.header.tc and udp.rr == []
        tcp = await ask(dns, f"many.default.svc.{D}", tcp=True)
        assert not tcp.header.tc and len(tcp.rr) == 100


# --- names outside the cluster domain --------------------------------------------------


class FakeUpstream:
    """An upstream resolver: every A question is answered 192.0.2.1, over UDP and TCP."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: asyncio.Server | None = None

    def reply(self, data: bytes) -> bytes:
        q = DNSRecord.parse(data)
        self.asked.append(str(q.q.qname))
        r = q.reply(aa=0)
        r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("192.0.2.1"), ttl=60))
        packed: bytes = r.pack()
        return packed

    async def start(self) -> tuple[str, int]:
        outer = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(outer.reply(data), addr)

        loop = asyncio.get_running_loop()
        self.udp, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
        port = self.udp.get_extra_info("sockname")[1]

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            out = self.reply(await reader.readexactly(size))
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
            writer.close()

        self.tcp = await asyncio.start_server(serve, "127.0.0.1", port)
        return ("127.0.0.1", port)

    async def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
            await self.tcp.wait_closed()


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    u = FakeUpstream()
    await u.start()
    try:
        yield u
    finally:
        await u.close()


async def test_no_upstreams_is_servfail_at_once(dns: ClusterDNS) -> None:
    started = time.monotonic()
    reply = await ask(dns, "example.org")
    assert reply.header.rcode == RCODE.SERVFAIL and not reply.header.aa
    assert time.monotonic() - started < 1
    # A reverse name the zone does not know is for the upstreams too.
    assert (await ask(dns, "1.2.0.192.in-addr.arpa", "PTR")).header.rcode == RCODE.SERVFAIL


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_other_names_are_forwarded(upstream: FakeUpstream, tcp: bool) -> None:
    assert upstream.udp is not None
    address = ("127.0.0.1", upstream.udp.get_extra_info("sockname")[1])
    async with serving(table(), upstreams=[address]) as dns:
        reply = await ask(dns, "example.org", tcp=tcp)
        assert reply.header.rcode == RCODE.NOERROR
        assert answers(reply) == ["192.0.2.1"]
        # Cluster names are never forwarded.
        await ask(dns, f"nope.default.svc.{D}", tcp=tcp)
        assert upstream.asked == ["example.org."]
        # An ExternalName outside the cluster: the CNAME, then the target's records.
        ext = await ask(dns, f"outside.default.svc.{D}", tcp=tcp)
        assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in ext.rr] == [
            ("CNAME", "example.org."),
            ("A", "192.0.2.1"),
        ]


async def test_a_silent_upstream_is_servfail_after_the_timeout(upstream: FakeUpstream) -> None:
    assert upstream.udp is not None
    working = ("127.0.0.1", upstream.udp.get_extra_info("sockname")[1])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        silent = black_hole.getsockname()
        async with serving(table(), upstreams=[silent], upstream_timeout=0.5) as dns:
            started = time.monotonic()
            reply = await ask(dns, "example.org")
            took = time.monotonic() - started
            assert reply.header.rcode == RCODE.SERVFAIL
            assert 0.4 < took < 2, took
        # With a working second upstream, it answers within the timeout.
        async with serving(table(), upstreams=[silent, working], upstream_timeout=1) as dns:
            assert answers(await ask(dns, "example.org")) == ["192.0.2.1"]


async def test_garbage_gets_formerr_or_nothing(dns: ClusterDNS) -> None:
    assert await dns.answer(b"\x12\x34") is None
    header_only = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x03abc"
    reply = await dns.answer(header_only)
    assert reply is not None
    parsed = DNSRecord.parse(reply)
    assert parsed.header.id == 0x1234 and parsed.header.rcode == RCODE.FORMERR


def test_upstreams_from_resolv_conf(tmp_path: Any) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example.org\nnameserver 192.0.2.53\nnameserver 10.96.0.10\n")
    assert upstreams_from_resolv_conf(conf, exclude=["10.96.0.10"]) == [("192.0.2.53", 53)]
    assert upstreams_from_resolv_conf(tmp_path / "missing") == []
