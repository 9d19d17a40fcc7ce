"""The ingress proxy with a real HAProxy on 127.0.0.1, in front of tiny HTTP
backends on 127.0.0.1 (random ports); every request loop is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from agent.ingress.proxy import IngressError, IngressProxy
from agent.ingress.routetable import RouteTable
from agent.ingress.selfsigned import DEFAULT_COMMON_NAME, self_signed_pem
from agent.protocol.ingress import HostWire
from tests.polling import eventually

from .haproxytables import backend, frontend, host, route, table

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Backends:
    """HTTP/1.1 servers on 127.0.0.1 that answer every request with JSON naming
    themselves, the path and the request's headers."""

    def __init__(self) -> None:
        self.servers: dict[str, asyncio.Server] = {}
        self.ports: dict[str, int] = {}
        self.clients: dict[str, set[asyncio.StreamWriter]] = {}

    async def start(self, name: str) -> int:
        clients = self.clients.setdefault(name, set())

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            clients.add(writer)
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                while True:
                    head = (await reader.readuntil(b"\r\n\r\n")).decode()
                    first, *lines = head.split("\r\n")
                    fields = (line.split(":", 1) for line in lines if ":" in line)
                    headers = {k.strip().lower(): v.strip() for k, v in fields}
                    body = json.dumps(
                        {"backend": name, "path": first.split()[1], "headers": headers}
                    ).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    await writer.drain()
            clients.discard(writer)
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.servers[name] = server
        self.ports[name] = server.sockets[0].getsockname()[1]
        return self.ports[name]

    async def stop(self, name: str) -> None:
        server = self.servers.pop(name)
        server.close()
        for writer in self.clients.pop(name, set()):
            writer.close()
        await server.wait_closed()

    async def close(self) -> None:
        for name in list(self.servers):
            await self.stop(name)


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ph-ingress-", dir="/tmp"))  # a short socket path
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def proxy(runtime_dir: Path) -> AsyncIterator[IngressProxy]:
    p = IngressProxy(runtime_dir, bind_address="127.0.0.1")
    try:
        yield p
    finally:
        try:
            await p.close()  # stops the master by its pid; its workers end with it
        finally:
            if p.pid is not None:
                os.kill(p.pid, signal.SIGKILL)


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    b = Backends()
    try:
        yield b
    finally:
        await b.close()


async def serve(proxy: IngressProxy, port: int, *hosts: HostWire, **kwargs: Any) -> None:
    """Serves one HTTP frontend with these hosts."""
    await proxy.sync(table(frontend(port, *hosts), **kwargs))


async def get(
    port: int, path: str, host_name: str = "example.com", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{port}{path}",
            headers={"Host": host_name, **(headers or {})},
            allow_redirects=False,
        ) as resp,
    ):
        body = (
            await resp.json() if resp.status == 200 else {"location": resp.headers.get("Location")}
        )
        return resp.status, body


async def test_host_and_path_routing(proxy: IngressProxy, backends: Backends) -> None:
    p = {n: await backends.start(n) for n in ("api", "root", "exact", "wild", "any", "canary")}
    port = free_port()
    await serve(
        proxy,
        port,
        host(
            "app.example.com",
            route("exact", "/exact", backend("exact", p["exact"]), path_type="Exact"),
            route(
                "canary",
                "/api",
                backend("canary", p["canary"]),
                headers=[{"name": "X-Canary", "value": 'yes "really"'}],
            ),
            route(
                "api",
                "/api",
                backend("api", p["api"]),
                set_headers=[{"name": "X-Route", "value": "api 100%"}],
                remove_headers=["X-Secret"],
            ),
            route("root", "/", backend("root", p["root"])),
        ),
        host("*.example.com", route("wild", "/", backend("wild", p["wild"]))),
        host("", route("any", "/", backend("any", p["any"]))),
        host("old.example.org", redirect=True),  # after "": never picked
    )
    # host, path -> the backend that answers
    cases = """
        app.example.com /api api
        app.example.com /api/ api
        APP.example.com:8080 /api/v1/x api
        app.example.com /apiv2 root
        app.example.com /exact exact
        app.example.com /exact/ root
        x.example.com /api wild
        a.b.example.com / any
        example.com / any
    """
    # (a.b.example.com: the wildcard matches one label only)
    for host_name, path, want in (line.split() for line in cases.strip().splitlines()):
        status, body = await get(port, path, host_name)
        assert (status, body["backend"]) == (200, want), (host_name, path)

    status, body = await get(
        port, "/api/x", "app.example.com", {"X-Secret": "s", "X-Route": "client"}
    )
    headers = body["headers"]
    assert isinstance(headers, dict)
    assert headers["x-route"] == "api 100%"
    assert "x-secret" not in headers
    assert headers["x-forwarded-proto"] == "http"
    status, body = await get(port, "/api/x", "app.example.com", {"X-Canary": 'yes "really"'})
    assert body["backend"] == "canary"
    status, body = await get(port, "/api/x", "app.example.com", {"X-Canary": "no"})
    assert body["backend"] == "api"


async def test_redirect_to_https(proxy: IngressProxy, backends: Backends) -> None:
    web = await backends.start("web")
    port = free_port()
    await serve(
        proxy,
        port,
        host("secure.example.com", route("web", "/", backend("web", web)), redirect=True),
        host("", route("open", "/", backend("web", web))),
    )
    assert await get(port, "/a?b=1", "secure.example.com") == (
        308,
        {"location": "https://secure.example.com/a?b=1"},
    )
    status, _ = await get(port, "/a", "plain.example.com")
    assert status == 200


async def test_weights_split_90_10(proxy: IngressProxy, backends: Backends) -> None:
    # Two pods behind the 90 and one behind the 10: the split is by backend, not by pod.
    stable = [await backends.start(f"stable-{i}") for i in range(2)]
    canary = await backends.start("canary")
    port = free_port()
    split = route(
        "split", "/", backend("stable", *stable, weight=90), backend("canary", canary, weight=10)
    )
    await serve(proxy, port, host("", split))
    counts: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session:

        async def worker(n: int) -> None:
            for _ in range(n):
                async with session.get(f"http://127.0.0.1:{port}/") as resp:
                    counts[(await resp.json())["backend"]] += 1

        await asyncio.gather(*(worker(100) for _ in range(10)))
    assert sum(counts.values()) == 1000
    stable_share = (counts["stable-0"] + counts["stable-1"]) / 10
    assert 85 <= stable_share <= 95, counts
    assert counts["stable-0"] > 0 and counts["stable-1"] > 0, counts
    stats = await proxy.stats()
    assert stats["split"].requests == 1000
    assert stats["split"].http_5xx == 0


def served_certificate(port: int, server_name: str) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


async def test_tls_by_sni(proxy: IngressProxy, backends: Backends) -> None:
    web = await backends.start("web")
    port = free_port()
    pem = self_signed_pem("secure.example.com", ["secure.example.com"])
    await proxy.sync(
        table(
            frontend(
                port,
                host(
                    "secure.example.com",
                    route("web", "/", backend("web", web)),
                    certificate="default/secure-tls",
                ),
                host("", route("any", "/", backend("web", web))),
                tls=True,
            ),
            certificates=[{"name": "default/secure-tls", "pem": pem}],
        )
    )
    cert = await asyncio.to_thread(served_certificate, port, "secure.example.com")
    assert cert == x509.load_pem_x509_certificate(pem.encode())
    other = await asyncio.to_thread(served_certificate, port, "other.example.com")
    assert common_name(other) == DEFAULT_COMMON_NAME

    # A request over TLS, verified against the test certificate.
    context = ssl.create_default_context(cadata=pem[: pem.index("-----BEGIN PRIVATE KEY")])
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="secure.example.com"
    )
    try:
        writer.write(b"GET /x HTTP/1.1\r\nHost: secure.example.com\r\nConnection: close\r\n\r\n")
        answer = (await reader.read()).decode()
    finally:
        writer.close()
    assert answer.startswith("HTTP/1.1 200")
    body = json.loads(answer.split("\r\n\r\n", 1)[1])
    assert body["headers"]["x-forwarded-proto"] == "https"

    # Without TLS, the certificate files are gone.
    await serve(proxy, free_port(), host("", route("any", "/", backend("web", web))), generation=2)
    assert not any((proxy.runtime_dir / "certs").iterdir())


async def test_bad_candidate_is_refused_and_the_old_one_serves(
    proxy: IngressProxy, backends: Backends
) -> None:
    web = await backends.start("web")
    port = free_port()
    good = table(frontend(port, host("", route("web", "/", backend("web", web)))))
    await proxy.sync(good)
    worker = await proxy.runtime.worker_pid()
    bad_pem = "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"
    bad = table(
        frontend(port, host("", route("web", "/", backend("web", web)))),
        frontend(
            free_port(),
            host("a.example.com", route("web", "/", backend("web", web)), certificate="ns/bad"),
            tls=True,
        ),
        generation=2,
        certificates=[{"name": "ns/bad", "pem": bad_pem}],
    )
    with pytest.raises(IngressError, match=r"haproxy refused the configuration: .*ALERT"):
        await proxy.sync(bad)
    assert proxy.generation == 1
    assert proxy.plan is not None
    assert proxy.config_path.read_text() == proxy.plan.config
    assert await proxy.runtime.worker_pid() == worker
    status, body = await get(port, "/")
    assert (status, body["backend"]) == (200, "web")


async def test_endpoint_change_goes_through_the_runtime_api(
    proxy: IngressProxy, backends: Backends
) -> None:
    old, new = await backends.start("old"), await backends.start("new")
    port = free_port()
    await serve(proxy, port, host("", route("web", "/", backend("web", old))))
    master, worker = proxy.pid, await proxy.runtime.worker_pid()
    config = proxy.config_path.read_text()

    await serve(proxy, port, host("", route("web", "/", backend("web", new))), generation=2)
    for _ in range(5):
        status, body = await get(port, "/")
        assert (status, body["backend"]) == (200, "new")
    assert (proxy.pid, await proxy.runtime.worker_pid()) == (master, worker)
    assert proxy.generation == 2
    assert proxy.config_path.read_text() != config  # written for a restart, not loaded

    # More endpoints than slots: a new structure, so a reload (a new worker).
    many = [await backends.start(f"pod-{i}") for i in range(5)]
    await serve(proxy, port, host("", route("web", "/", backend("web", *many))), generation=3)
    assert proxy.pid == master
    assert await proxy.runtime.worker_pid() != worker
    seen = {(await get(port, "/"))[1]["backend"] for _ in range(10)}
    assert seen == {f"pod-{i}" for i in range(5)}


async def test_no_request_fails_during_reloads(proxy: IngressProxy, backends: Backends) -> None:
    web = [await backends.start(f"web-{i}") for i in range(2)]
    port = free_port()

    def generation(n: int) -> RouteTable:
        routes = [route(f"extra-{i}", f"/extra-{i}", backend("web", *web)) for i in range(n)]
        return table(
            frontend(port, host("", *routes, route("web", "/", backend("web", *web)))),
            generation=n + 1,
        )

    await proxy.sync(generation(0))
    results: Counter[str] = Counter()
    stop = asyncio.Event()
    # A new connection per request: HAProxy closes idle keep-alive connections
    # when a worker stops, which a client may race; the listeners must not drop.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for _ in range(2000):  # bounded
                if stop.is_set():
                    return
                try:
                    async with session.get(f"http://127.0.0.1:{port}/") as resp:
                        await resp.read()
                        results["ok" if resp.status == 200 else f"status {resp.status}"] += 1
                except aiohttp.ClientError as e:
                    results[type(e).__name__] += 1

        clients = [asyncio.create_task(client()) for _ in range(4)]
        try:
            workers = {await proxy.runtime.worker_pid()}
            for n in range(1, 4):
                await asyncio.sleep(0.3)
                await proxy.sync(generation(n))
                workers.add(await proxy.runtime.worker_pid())
            await asyncio.sleep(0.3)
        finally:
            stop.set()
            await asyncio.gather(*clients)
    assert len(workers) == 4  # three reloads
    assert results["ok"] > 100
    assert set(results) == {"ok"}, results


async def test_haproxy_is_restarted_when_it_dies(proxy: IngressProxy, backends: Backends) -> None:
    web = await backends.start("web")
    port = free_port()
    await serve(proxy, port, host("", route("web", "/", backend("web", web))))
    master = proxy.pid
    assert master is not None
    os.kill(master, signal.SIGKILL)

    async def serving_again() -> bool:
        if proxy.pid in (None, master):
            return False
        with contextlib.suppress(aiohttp.ClientError):
            return (await get(port, "/"))[0] == 200
        return False

    await eventually(serving_again, "haproxy restarted and serving", within=15)


async def test_a_haproxy_left_by_a_previous_agent_is_replaced(
    runtime_dir: Path, proxy: IngressProxy, backends: Backends
) -> None:
    old, new = await backends.start("old"), await backends.start("new")
    port = free_port()
    await serve(proxy, port, host("", route("web", "/", backend("web", old))))
    await proxy.close()
    # What a previous agent left: HAProxy on this runtime directory's configuration.
    left = await asyncio.create_subprocess_exec(
        "haproxy",
        "-W",
        "-db",
        "-f",
        str(proxy.config_path),
        "-p",
        str(proxy.pid_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    successor = IngressProxy(runtime_dir, bind_address="127.0.0.1")
    try:
        await eventually(lambda: proxy.pid_path.read_text().strip() == str(left.pid))
        await serve(successor, port, host("", route("web", "/", backend("web", new))))
        assert await asyncio.wait_for(left.wait(), 10) is not None  # stopped
        assert (await get(port, "/"))[1]["backend"] == "new"
    finally:
        try:
            await successor.close()
        finally:
            if successor.pid is not None:
                os.kill(successor.pid, signal.SIGKILL)
            if left.returncode is None:
                left.kill()
                await left.wait()


async def test_a_refused_connection_is_retried_on_another_server(
    proxy: IngressProxy, backends: Backends
) -> None:
    live = await backends.start("live")
    dead = free_port()  # nothing listens: a pod that went away
    port = free_port()
    await serve(
        proxy,
        port,
        host("a.example.com", route("mixed", "/", backend("web", live, dead))),
        host("b.example.com", route("gone", "/", backend("gone", dead))),
    )
    started = asyncio.get_running_loop().time()
    for _ in range(20):
        assert (await get(port, "/", "a.example.com"))[0] == 200
    assert asyncio.get_running_loop().time() - started < 2  # no waits between retries
    # No server left: 503, after HAProxy's retries (a second apart).
    assert (await get(port, "/", "b.example.com"))[0] == 503
    stats = await proxy.stats()
    assert (stats["mixed"].requests, stats["mixed"].http_5xx) == (20, 0)
    assert (stats["gone"].requests, stats["gone"].http_5xx) == (1, 1)
