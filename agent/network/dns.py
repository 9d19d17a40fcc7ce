"""The node-local cluster DNS server: UDP and TCP on one address and port,
answering from the service table (see dnszone) and forwarding other names to
upstream resolvers. With no upstreams, or when none answers within
`upstream_timeout`, the answer is SERVFAIL: a query never hangs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dnslib import EDNS0, OPCODE, QTYPE, RCODE, DNSHeader, DNSQuestion, DNSRecord
from dnslib.dns import DNSBuffer

from .dnszone import DEFAULT_DOMAIN, DEFAULT_TTL, ClusterZone, Lookup
from .servicetable import ServiceTable

log = logging.getLogger(__name__)

Upstream = tuple[str, int]  # (address, port)

DEFAULT_UPSTREAM_TIMEOUT = 2.0
UDP_PAYLOAD = 1232  # what we offer in EDNS (the DNS flag day figure)
MAX_INFLIGHT = 1024  # UDP queries being answered at once; more are dropped
TCP_IDLE_TIMEOUT = 10.0
_CLASS_IN, _CLASS_ANY = 1, 255


class ClusterDNS:
    def __init__(
        self,
        table: ServiceTable,
        *,
        domain: str = DEFAULT_DOMAIN,
        ttl: int = DEFAULT_TTL,
        upstreams: Sequence[Upstream] = (),
        upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT,
    ) -> None:
        if upstream_timeout <= 0:
            raise ValueError(f"upstream_timeout: must be positive, got {upstream_timeout}")
        self.table = table
        self.zone = ClusterZone(domain, ttl)
        self.upstreams = [(str(h), int(p)) for h, p in upstreams]
        self.upstream_timeout = upstream_timeout
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- serving ------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 53) -> Upstream:
        """Listens on UDP and TCP; port 0 picks a free port (the same for both).
        Returns the address it listens on."""
        loop = asyncio.get_running_loop()
        for _ in range(20):
            transport, _proto = await loop.create_datagram_endpoint(
                lambda: _UDPProtocol(self), local_addr=(host, port)
            )
            bound = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(
                    self._serve_tcp, host, bound, reuse_address=True
                )
            except OSError:
                transport.close()
                if port:
                    raise
                continue  # the TCP port was taken: try another free UDP port
            self._udp = transport
            return (host, bound)
        raise OSError(f"no port free for both UDP and TCP on {host}")

    @property
    def address(self) -> Upstream | None:
        if self._udp is None:
            return None
        host, port = self._udp.get_extra_info("sockname")[:2]
        return (host, port)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
            self._tcp = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    def _on_datagram(self, data: bytes, addr: Any) -> None:
        if len(self._tasks) >= MAX_INFLIGHT:
            return
        task = asyncio.get_running_loop().create_task(self._answer_udp(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_udp(self, data: bytes, addr: Any) -> None:
        try:
            reply = await self.answer(data, tcp=False)
        except Exception:
            log.exception("dns: answering a UDP query")
            return
        if reply is not None and self._udp is not None:
            self._udp.sendto(reply, addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                    (size,) = struct.unpack("!H", await reader.readexactly(2))
                    data = await reader.readexactly(size)
                reply = await self.answer(data, tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("dns: answering a TCP query")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # --- answering ----------------------------------------------------------------

    async def answer(self, data: bytes, *, tcp: bool = False) -> bytes | None:
        """The reply to one query message (None: not worth a reply)."""
        try:
            request = DNSRecord.parse(data)
        except Exception:  # dnslib raises more than DNSError on bad input
            return _formerr(data)
        if request.header.qr:
            return None
        if request.header.opcode != OPCODE.QUERY:
            return self._reply(request, rcode=RCODE.NOTIMP).pack()
        if len(request.questions) != 1 or request.q.qclass not in (_CLASS_IN, _CLASS_ANY):
            return self._reply(request, rcode=RCODE.FORMERR).pack()
        self.zone.sync(self.table)
        result = self.zone.lookup(str(request.q.qname), request.q.qtype)
        if result.forward:
            return await self.forward(data, request, tcp=tcp)
        reply = self._reply(request, result)
        if result.chase is not None:
            reply.rr += await self._chase(result.chase, request.q.qtype)
        return self._fit(request, reply, tcp)

    def _reply(self, request: Any, result: Lookup | None = None, rcode: int = 0) -> Any:
        """An answer from the zone (authoritative), or a bare error (not)."""
        reply = request.reply(ra=1, aa=int(result is not None))
        if result is not None:
            rcode = result.rcode
            reply.rr, reply.auth, reply.ar = result.answers, result.authority, result.additional
        reply.header.rcode = rcode
        if _edns(request) is not None:
            reply.ar.append(EDNS0(udp_len=UDP_PAYLOAD))
        return reply

    def _fit(self, request: Any, reply: Any, tcp: bool) -> bytes:
        """The packed reply; over UDP, no longer than the client takes (else truncated)."""
        packed: bytes = reply.pack()
        if tcp:
            return packed
        opt = _edns(request)
        limit = 512 if opt is None else max(512, min(opt.rclass, 4096))
        if len(packed) <= limit:
            return packed
        cut = request.reply(ra=1, aa=reply.header.aa)
        cut.header.rcode = reply.header.rcode
        cut.header.tc = 1
        if opt is not None:
            cut.ar.append(EDNS0(udp_len=UDP_PAYLOAD))
        result: bytes = cut.pack()
        return result

    async def _chase(self, target: str, qtype: int) -> list[Any]:
        """Records of an ExternalName's target, from upstream; none if that fails."""
        query = DNSRecord(q=DNSQuestion(target, qtype))
        try:
            data = await self._ask_upstreams(query.pack(), tcp=False)
        except OSError:
            return []
        if data is None:
            return []
        with contextlib.suppress(Exception):
            answer = DNSRecord.parse(data)
            if answer.header.id == query.header.id:
                return list(answer.rr)
        return []

    # --- forwarding ---------------------------------------------------------------

    async def forward(self, data: bytes, request: Any, *, tcp: bool) -> bytes:
        """The upstreams' reply to a query outside the zone, or SERVFAIL."""
        try:
            reply = await self._ask_upstreams(data, tcp=tcp)
        except OSError:
            reply = None
        if reply is None:
            result: bytes = self._reply(request, rcode=RCODE.SERVFAIL).pack()
            return result
        return reply

    async def _ask_upstreams(self, data: bytes, *, tcp: bool) -> bytes | None:
        """Tries the upstreams in order within `upstream_timeout` in all, each
        getting an equal share of what is left. None: none answered."""
        deadline = time.monotonic() + self.upstream_timeout
        query_id = data[:2]
        for i, upstream in enumerate(self.upstreams):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            share = left / (len(self.upstreams) - i)
            try:
                async with asyncio.timeout(share):
                    reply = await (_ask_tcp if tcp else _ask_udp)(upstream, data)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as e:
                log.debug("dns: upstream %s:%d: %s", upstream[0], upstream[1], e or "timeout")
                continue
            if reply[:2] == query_id:
                return reply
        return None


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: ClusterDNS) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.server._on_datagram(data, addr)


class _UpstreamUDP(asyncio.DatagramProtocol):
    def __init__(self, query_id: bytes) -> None:
        self.query_id = query_id
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data[:2] == self.query_id and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def _ask_udp(upstream: Upstream, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in upstream[0] else socket.AF_INET
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _UpstreamUDP(data[:2]), remote_addr=upstream, family=family
    )
    try:
        transport.sendto(data)
        return await proto.reply
    finally:
        transport.close()


async def _ask_tcp(upstream: Upstream, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(upstream[0], upstream[1])
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        (size,) = struct.unpack("!H", await reader.readexactly(2))
        return await reader.readexactly(size)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _edns(request: Any) -> Any:
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT:
            return rr
    return None


def _formerr(data: bytes) -> bytes | None:
    """FORMERR for a message whose header at least can be read."""
    if len(data) < 12:
        return None
    try:
        header = DNSHeader.parse(DNSBuffer(data))
    except Exception:
        return None
    if header.qr:
        return None
    reply = DNSRecord(DNSHeader(id=header.id, qr=1, ra=1, rcode=RCODE.FORMERR))
    result: bytes = reply.pack()
    return result


def upstreams_from_resolv_conf(
    path: str | Path = "/etc/resolv.conf", exclude: Sequence[str] = ()
) -> list[Upstream]:
    """The nameservers of a resolv.conf (port 53), leaving out `exclude` (our own
    listening addresses: forwarding to ourselves would loop)."""
    out: list[Upstream] = []
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] not in exclude:
            out.append((parts[1].split("%", 1)[0], 53))
    return out
