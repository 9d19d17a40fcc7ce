"""The API server's bounds: watch buffers in bytes, per-user caps (429), the
deadlines of a connection, and aiohttp's own errors answered as Status objects."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from console.tui.informer import WatchCache
from control.client import Client
from control.controlplane import ControlPlane
from control.kubeconfig import KubeconfigTarget, client_ssl_context, read_kubeconfig
from control.objects.kinds import by_name
from tests.conftest import running_plane

# Short deadlines: each test waits for one of them at most a few times over.
LIMITS = """
[api.limits]
max_requests_unix = 2
max_watches_unix = 2
max_requests_per_user = 2
max_watches_per_user = 1
watch_buffer_bytes = 262144
watch_stall_timeout = "0.3s"
handshake_timeout = "0.5s"
header_timeout = "0.5s"
idle_timeout = "0.5s"
"""
CLOSED_WITHIN = 5.0  # seconds: far above every deadline above
WATCH = "/api/v1/namespaces/default/configmaps?watch=1"
CM = by_name("configmaps")
assert CM


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with running_plane(tmp_path, LIMITS, components=False) as cp:
        yield cp


def _kubeconfig(plane: ControlPlane, name: str = "kubeconfig") -> KubeconfigTarget:
    return read_kubeconfig(plane.config.data_dir / name)


async def _unix(plane: ControlPlane) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(str(plane.socket_path))


async def _tls(
    plane: ControlPlane, *, handshake: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert plane.api is not None and plane.api.tcp_port
    context = client_ssl_context(_kubeconfig(plane).ca_pem) if handshake else None
    return await asyncio.open_connection(
        "127.0.0.1",
        plane.api.tcp_port,
        ssl=context,
        server_hostname="127.0.0.1" if context else None,
    )


def _request(path: str, *, token: str = "", extra: str = "", method: str = "GET") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}{extra}\r\n".encode()


async def _closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server still sends, until it closes the connection."""
    data = b""
    async with asyncio.timeout(CLOSED_WITHIN):
        with contextlib.suppress(ConnectionResetError, ssl.SSLError):
            while chunk := await reader.read(65536):
                data += chunk
    return data


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Any]:
    """One response with a Content-Length: status, headers, decoded JSON body."""
    async with asyncio.timeout(CLOSED_WITHIN):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), headers, orjson.loads(body)


async def _watch_open(reader: asyncio.StreamReader) -> int:
    async with asyncio.timeout(CLOSED_WITHIN):
        head = await reader.readuntil(b"\r\n\r\n")
    return int(head.split()[1])


def _is_status(body: Any, code: int, reason: str) -> bool:
    return (
        body.get("kind") == "Status"
        and body.get("apiVersion") == "v1"
        and body.get("status") == "Failure"
        and body.get("code") == code
        and body.get("reason") == reason
    )


def _big_configmap(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"big-{i:02d}"},
        "data": {"blob": "x" * 200_000},
    }


async def test_a_stalled_watcher_is_cut_at_its_byte_bound(plane: ControlPlane) -> None:
    """A watcher that reads nothing while 6 MB of events come has its stream
    cut once 256 KiB wait for it, and the server keeps nothing of it."""
    assert plane.api is not None
    reader, writer = await _unix(plane)
    writer.write(_request(WATCH))
    assert await _watch_open(reader) == 200
    n = 30
    async with Client(str(plane.socket_path)) as client:
        for i in range(n):
            await client.create(CM, _big_configmap(i))
    await asyncio.sleep(0.6)  # twice the stall timeout: the cut has happened
    got = await _closed(reader)  # old code: the stream stays open, this times out
    writer.close()
    assert got.count(b'"type":"ADDED"') < n
    assert plane.api.open_connections() == 0
    assert plane.api.limits.held(("unix", ""), long_running=True) == 0


async def test_the_client_watches_again_after_a_cut(plane: ControlPlane) -> None:
    """`Client.watch` ends quietly when the server cuts it; watching again from
    the last resourceVersion seen gives every event."""
    async with Client(str(plane.socket_path)) as client:
        rt = CM
        listed = await client.list(rt, "default")
        rv = listed["metadata"]["resourceVersion"]
        watch = client.watch(rt, "default", resource_version=rv)
        first = asyncio.ensure_future(anext(watch))
        await client.create(rt, _big_configmap(0))
        _, obj = await first
        rv = obj["metadata"]["resourceVersion"]
        for i in range(1, 30):  # while the watch reads nothing more
            await client.create(rt, _big_configmap(i))
        await asyncio.sleep(0.6)
        seen = [o["metadata"]["name"] async for _, o in watch]  # cut: ends, no error
        assert len(seen) < 29
        async for _, o in client.watch(rt, "default", resource_version=rv):
            seen.append(o["metadata"]["name"])
            if o["metadata"]["name"] == "big-29":
                break
        assert set(seen) == {f"big-{i:02d}" for i in range(1, 30)}


async def test_past_the_caps_429_with_retry_after(plane: ControlPlane) -> None:
    held: list[asyncio.StreamWriter] = []
    try:
        # Two watches on the unix socket: its cap. A third is refused...
        for _ in range(2):
            reader, writer = await _unix(plane)
            held.append(writer)
            writer.write(_request(WATCH))
            assert await _watch_open(reader) == 200
        reader, writer = await _unix(plane)
        held.append(writer)
        writer.write(_request(WATCH))
        code, headers, body = await _answer(reader)
        assert code == 429 and headers["retry-after"] == "1"
        assert _is_status(body, 429, "TooManyRequests")
        assert body["details"]["retryAfterSeconds"] == 1
        # ... while the watches do not count as requests in flight.
        writer.write(_request("/api/v1/namespaces"))
        assert (await _answer(reader))[0] == 200
        # Two requests waiting for their bodies hold the unix socket's two slots.
        for _ in range(2):
            _, slow = await _unix(plane)
            held.append(slow)
            slow.write(
                _request(
                    "/api/v1/namespaces/default/configmaps",
                    method="POST",
                    extra="Content-Type: application/json\r\nContent-Length: 100\r\n",
                )
            )
            await slow.drain()
        await asyncio.sleep(0.1)
        writer.write(_request("/api/v1/namespaces"))
        code, headers, body = await _answer(reader)
        assert code == 429 and headers["retry-after"] == "1"
        assert _is_status(body, 429, "TooManyRequests")
        # On TLS the caps are per user: the admin's one watch, then 429; the
        # readonly user has a watch of its own.
        admin, viewer = _kubeconfig(plane).token, _kubeconfig(plane, "kubeconfig-readonly").token
        answers = []
        for token in (admin, admin, viewer):
            reader, writer = await _tls(plane)
            held.append(writer)
            writer.write(_request(WATCH, token=token))
            answers.append(await _watch_open(reader))
        assert answers == [200, 429, 200]
    finally:
        for w in held:
            w.close()


async def test_a_tls_connection_that_never_handshakes_is_closed(plane: ControlPlane) -> None:
    reader, writer = await _tls(plane, handshake=False)
    assert await _closed(reader) == b""
    writer.close()


async def test_a_connection_that_sends_no_request_is_closed(plane: ControlPlane) -> None:
    for connect in (_tls, _unix):
        reader, writer = await connect(plane)
        assert await _closed(reader) == b""
        writer.close()


async def test_slowloris_headers_are_closed(plane: ControlPlane) -> None:
    """A byte of header every 50 ms never completes a request: closed at the
    header deadline, not kept alive by the trickle."""
    reader, writer = await _unix(plane)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
    closed = False
    for _ in range(int(CLOSED_WITHIN / 0.05)):
        try:
            writer.write(b"X")
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        if reader.at_eof() or reader.exception() is not None:
            closed = True
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.05)
    writer.close()
    assert closed


async def test_an_idle_keep_alive_connection_is_closed(plane: ControlPlane) -> None:
    reader, writer = await _unix(plane)
    writer.write(_request("/healthz"))
    async with asyncio.timeout(CLOSED_WITHIN):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in head
    await reader.readexactly(2)  # "ok"
    assert await _closed(reader) == b""
    writer.close()


async def test_a_body_over_3_mib_is_413_as_a_status(plane: ControlPlane) -> None:
    reader, writer = await _unix(plane)
    body = orjson.dumps({**_big_configmap(0), "data": {"blob": "x" * 3 * 1024 * 1024}})
    writer.write(
        _request(
            "/api/v1/namespaces/default/configmaps",
            method="POST",
            extra=f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n",
        )
    )
    writer.write(body)
    code, headers, status = await _answer(reader)
    writer.close()
    assert code == 413 and headers["content-type"].startswith("application/json")
    assert _is_status(status, 413, "RequestEntityTooLarge")
    assert "3145728" in status["message"]


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        (_request("/api/v1/" + "a" * 9000), 414, "RequestURITooLong"),
        (_request("/api/v1", extra=f"X-Big: {'a' * 9000}\r\n"), 431, "RequestHeaderFieldsTooLarge"),
        (_request("/api/v1", extra="Not A Header\r\n"), 400, "BadRequest"),
    ],
    ids=["414", "431", "400"],
)
async def test_malformed_requests_are_answered_as_a_status(
    plane: ControlPlane, raw: bytes, code: int, reason: str
) -> None:
    reader, writer = await _unix(plane)
    writer.write(raw)
    got, headers, status = await _answer(reader)
    writer.close()
    assert got == code and headers["content-type"].startswith("application/json")
    assert _is_status(status, code, reason)


async def test_plain_http_on_the_tls_port_is_a_status(plane: ControlPlane) -> None:
    reader, writer = await _tls(plane, handshake=False)
    writer.write(_request("/api/v1"))
    code, headers, status = await _answer(reader)
    writer.close()
    assert code == 400 and headers["content-type"].startswith("application/json")
    assert _is_status(status, 400, "BadRequest")
    assert status["message"] == "Client sent an HTTP request to an HTTPS server."


class _Proxy:
    """A unix socket in front of the server's, whose answers can be held back:
    a client that, seen from the server, stops reading."""

    def __init__(self, upstream: Path) -> None:
        self.upstream = upstream
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.ended = 0  # connections the server closed
        self._tasks: set[asyncio.Task[None]] = set()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, held: bool
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                if held:
                    await self.flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        if held:
            self.ended += 1
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(str(self.upstream))
        for pipe in (self._pipe(reader, up_writer, False), self._pipe(up_reader, writer, True)):
            task = asyncio.create_task(pipe)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def serving(self, path: Path) -> AsyncIterator[None]:
        server = await asyncio.start_unix_server(self._serve, str(path))
        try:
            yield
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()


async def test_the_console_cache_watches_again_after_a_cut(
    plane: ControlPlane, tmp_path: Path
) -> None:
    """The console's WatchCache, whose watch the server cuts while it reads
    nothing, watches again from its last resourceVersion: every object, no
    error, no second list."""
    proxy = _Proxy(plane.socket_path)
    async with (
        proxy.serving(tmp_path / "proxy.sock"),
        Client(str(tmp_path / "proxy.sock")) as client,
        Client(str(plane.socket_path)) as writer,
    ):
        cache = WatchCache(client, CM)
        lists = 0
        first_list = cache._list

        async def counted_list() -> None:
            nonlocal lists
            lists += 1
            await first_list()

        cache._list = counted_list  # type: ignore[method-assign]
        cache.start()
        try:
            await asyncio.wait_for(cache.synced.wait(), CLOSED_WITHIN)
            proxy.flowing.clear()
            for i in range(30):
                await writer.create(CM, _big_configmap(i))
            await asyncio.sleep(0.6)  # twice the stall timeout: the cut has happened
            want = {f"default/big-{i:02d}" for i in range(30)}
            complete = asyncio.Event()
            cache.subscribe(lambda _: want <= cache.objects.keys() and complete.set())
            proxy.flowing.set()
            await asyncio.wait_for(complete.wait(), CLOSED_WITHIN)
            assert proxy.ended >= 1  # the server did cut the watch
            assert cache.error is None and lists == 1
        finally:
            await cache.stop()
