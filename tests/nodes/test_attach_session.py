"""Kubernetes' attach over the exec WebSocket's channel protocol, on hollow
nodes: the API server, the node link's session relay and the agent
protocol's `attach` (the hollow agent's main process is described in
agent.hollow: a few lines, then a copy of stdin)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest

from control.kubeconfig import client_ssl_context, read_kubeconfig
from control.objects.kinds import by_name
from control.wire import MESSAGE_HEADER, V5
from tests.cluster import DEFAULT_TIMEOUT, HollowCluster, hollow_pod, make_pod

POD = by_name("pods")
assert POD
PODS = "/api/v1/namespaces/default/pods"
LINES = b"".join(f"{{pod}}/main attached line {i}\n".encode() for i in (1, 2, 3))


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[HollowCluster]:
    """Pod `web` (no stdin, no tty) and pod `term` (stdin and a tty) on one hollow node."""
    async with hollow_pod(tmp_path, listen="127.0.0.1:0") as c:
        term = make_pod("term", "node-1")
        term["spec"]["containers"][0] |= {"stdin": True, "tty": True}
        await c.registry.create(POD, "default", term)
        await c.wait_pod_running("term")
        yield c


def _socket_session(cluster: HollowCluster) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=cluster.socket))


async def _read_stdout(ws: aiohttp.ClientWebSocketResponse, size: int) -> tuple[bytes, set[int]]:
    """At least `size` bytes of channel 1, and every channel seen."""
    out, channels = b"", set()
    while len(out) < size:
        msg = await ws.receive(timeout=DEFAULT_TIMEOUT)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        channels.add(msg.data[0])
        if msg.data[0] == 1:
            out += msg.data[1:]
    return out, channels


async def test_attach_follows_the_main_process(cluster: HollowCluster) -> None:
    """Without stdin: the output from now on; the client leaving ends the
    session and leaves the pod running."""
    query = "container=main&stdout=true&stderr=true"
    async with (
        _socket_session(cluster) as s,
        s.ws_connect(f"http://localhost{PODS}/web/attach?{query}", protocols=(V5,)) as ws,
    ):
        assert ws.protocol == V5
        expected = LINES.replace(b"{pod}", b"web")
        out, channels = await _read_stdout(ws, len(expected))
        assert out == expected and channels == {1}
    await cluster.sessions_released()
    assert cluster.agents["node-1"].running() == ["default/term", "default/web"]


async def test_attach_with_stdin_and_a_tty(cluster: HollowCluster) -> None:
    """The container has stdin and a tty: input reaches the main process,
    resizes are taken, stdout and stderr are one terminal stream."""
    query = "stdin=true&stdout=true&stderr=true&tty=true"
    async with (
        _socket_session(cluster) as s,
        s.ws_connect(f"http://localhost{PODS}/term/attach?{query}", protocols=(V5,)) as ws,
    ):
        await ws.send_bytes(b'\x04{"Width":100,"Height":30}')
        expected = LINES.replace(b"{pod}", b"term").replace(b"\n", b"\r\n")
        out, _ = await _read_stdout(ws, len(expected))
        assert out == expected
        await ws.send_bytes(b"\x00hello\n")
        echoed, channels = await _read_stdout(ws, len(b"hello\r\n"))
        assert echoed == b"hello\r\n" and channels == {1}
        # Closing stdin (v5) leaves the main process running and attached.
        await ws.send_bytes(b"\xff\x00")
        await ws.send_bytes(b"\x00ignored\n")
    await cluster.sessions_released()


async def test_stdin_and_tty_are_the_containers(cluster: HollowCluster) -> None:
    """A container without stdin reads none of the client's: what it is sent
    is dropped; without a tty, no terminal line endings."""
    query = "stdin=true&stdout=true&tty=true"
    async with (
        _socket_session(cluster) as s,
        s.ws_connect(f"http://localhost{PODS}/web/attach?{query}", protocols=(V5,)) as ws,
    ):
        expected = LINES.replace(b"{pod}", b"web")
        out, _ = await _read_stdout(ws, len(expected))
        assert out == expected
        await ws.send_bytes(b"\x00dropped\n")
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.5)
    await cluster.sessions_released()


async def test_attach_refusals(cluster: HollowCluster) -> None:
    async with _socket_session(cluster) as s:
        # Without the upgrade: what it needs.
        async with s.post(f"http://localhost{PODS}/web/attach?stdout=true") as resp:
            assert resp.status == 400
            assert "Upgrade request required" in (await resp.json())["message"]
        async with s.post(f"http://localhost{PODS}/nope/attach?stdout=true") as resp:
            assert resp.status == 404
        # A refused upgrade: the Status, summed up in headers.
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await s.ws_connect(f"http://localhost{PODS}/web/attach", protocols=(V5,))
        assert e.value.status == 400
        assert "at least 1 of stdin" in unquote((e.value.headers or {}).get(MESSAGE_HEADER, ""))
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await s.ws_connect(
                f"http://localhost{PODS}/web/attach?stdout=true&container=other", protocols=(V5,)
            )
        assert e.value.status == 400
    ro = read_kubeconfig(cluster.plane.config.data_dir / "kubeconfig-readonly")
    headers = {"Authorization": f"Bearer {ro.token}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await s.ws_connect(
                f"{ro.server}{PODS}/web/attach?stdout=true",
                protocols=(V5,),
                ssl=client_ssl_context(ro.ca_pem),
            )
        assert e.value.status == 403
        assert 'cannot create resource "pods/attach"' in unquote(
            (e.value.headers or {}).get(MESSAGE_HEADER, "")
        )
