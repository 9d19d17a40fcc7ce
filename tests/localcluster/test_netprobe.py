"""The traffic probe that `bench net` and the Services e2e test run in a pod's
network namespace, here against servers on this process's loopback (no root)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RR, A, DNSRecord

from agent.ingress.selfsigned import self_signed_pem
from console.bench import netprobe


@pytest.fixture
async def http_servers() -> AsyncIterator[list[str]]:
    """Two HTTP servers on loopback, each answering its own name."""

    def answering(name: str) -> object:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + name.encode())
            await writer.drain()
            writer.close()

        return handle

    servers = [await asyncio.start_server(answering(n), "127.0.0.1", 0) for n in ("a", "b")]  # type: ignore[arg-type]
    yield [f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}/" for s in servers]
    for s in servers:
        s.close()


async def test_http_load_counts_each_backends_answers(http_servers: list[str]) -> None:
    result = await netprobe.http_load(http_servers, requests=40, concurrency=4, within=20)
    assert result["requests"] == 40 and result["errors"] == {}
    assert result["bodies"] == {"a": 20, "b": 20}
    assert result["rps"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]


async def test_http_load_stops_at_its_deadline(http_servers: list[str]) -> None:
    result = await netprobe.http_load(http_servers, requests=10**9, concurrency=2, within=0.3)
    assert 0 < result["requests"] < 10**9
    assert result["seconds"] < 5


async def _host_echo(tls: ssl.SSLContext | None) -> asyncio.Server:
    """A loopback server answering the Host header it got."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        host = next(h.split(":", 1)[1].strip() for h in head.split("\r\n") if h.startswith("Host:"))
        writer.write(f"HTTP/1.0 200 OK\r\n\r\n{host}".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)


async def test_http_load_sends_the_host_and_verifies_tls_against_the_cafile(
    tmp_path: Path,
) -> None:
    pem = self_signed_pem("a.example.test", ["a.example.test"])
    (tmp_path / "both.pem").write_text(pem)
    cafile = tmp_path / "cert.pem"
    cafile.write_text(pem[: pem.index("-----BEGIN PRIVATE KEY")])
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tmp_path / "both.pem")
    names: list[str | None] = []
    server_tls.sni_callback = lambda _sock, name, _ctx: names.append(name)
    plain, secure = await _host_echo(None), await _host_echo(server_tls)
    port, tls_port = (s.sockets[0].getsockname()[1] for s in (plain, secure))
    try:
        got = await netprobe.http_load(
            [f"http://127.0.0.1:{port}/"], 4, 2, 20, host="a.example.test"
        )
        assert got["bodies"] == {"a.example.test": 4}, got
        got = await netprobe.http_load(
            [f"https://127.0.0.1:{tls_port}/"], 4, 2, 20, host="a.example.test", cafile=str(cafile)
        )
        assert got["bodies"] == {"a.example.test": 4}, got
        assert names == ["a.example.test"] * 4
        wrong = await netprobe.http_load(
            [f"https://127.0.0.1:{tls_port}/"], 2, 1, 20, host="b.example.test", cafile=str(cafile)
        )
        assert wrong["requests"] == 0 and wrong["errors"] == {"SSLCertVerificationError": 2}
    finally:
        plain.close()
        secure.close()


async def test_sigterm_ends_an_http_run_early_with_its_figures(http_servers: list[str]) -> None:
    argv = [sys.executable, "-m", "console.bench.netprobe", "http", http_servers[0]]
    proc = await asyncio.create_subprocess_exec(
        *argv, "--count", "1000000", "--within", "60", stdout=asyncio.subprocess.PIPE
    )
    try:
        await asyncio.sleep(1.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    result = json.loads(out)
    assert proc.returncode == 0 and time.monotonic() - t0 < 10
    assert 0 < result["requests"] < 1000000 and result["errors"] == {}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_refused_connection_is_named() -> None:
    result = await netprobe.connect("127.0.0.1", _closed_port(), within=5)
    assert result["outcome"] == "ECONNREFUSED"
    failed = await netprobe.http_load(
        [f"http://127.0.0.1:{_closed_port()}/"], requests=3, concurrency=1, within=5
    )
    assert failed["requests"] == 0 and failed["errors"] == {"ConnectionRefusedError": 3}


class _Zone(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        q = DNSRecord.parse(data)
        reply = q.reply()
        if str(q.q.qname) == "web.example.":
            reply.add_answer(RR("web.example.", QTYPE.A, rdata=A("10.0.0.7")))
        else:
            reply.header.rcode = 3  # NXDOMAIN
        self.transport.sendto(reply.pack(), addr)  # type: ignore[attr-defined]


async def test_dns_load_reports_answers_and_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Zone, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    real = loop.create_datagram_endpoint

    def to_port(factory: object, **kw: object) -> object:
        kw["remote_addr"] = ("127.0.0.1", port)
        return real(factory, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "create_datagram_endpoint", to_port)
    try:
        result = await netprobe.dns_load(
            "127.0.0.1", ["web.example", "nope.example"], queries=50, concurrency=5, within=20
        )
    finally:
        transport.close()
    assert result["queries"] == 50 and result["errors"] == {}
    assert result["answers"] == {
        "web.example": {"rcode": "NOERROR", "a": ["10.0.0.7"]},
        "nope.example": {"rcode": "NXDOMAIN", "a": []},
    }
    assert result["qps"] > 0 and result["p99_ms"] >= result["p50_ms"] > 0


def test_the_command_prints_one_json_line() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "console.bench.netprobe",
            "connect",
            "127.0.0.1",
            str(_closed_port()),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert json.loads(out)["outcome"] == "ECONNREFUSED"
    bad = subprocess.run(
        [sys.executable, "-m", "console.bench.netprobe", "http", "http://x/", "--count", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (
        bad.returncode == 2 and "--count, --concurrency and --within must be positive" in bad.stderr
    )
