"""Interactive exec through Kubernetes' exec WebSocket, on hollow nodes: the
API server, the node link's session relay and the agent protocol's `exec_io`
end to end (the hollow agent's fake shell is described in agent.hollow)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.protocol.execio import EXEC_WINDOW_BYTES
from control.client import Client
from control.errors import ApiError
from control.execclient import ExecConnection
from control.kubeconfig import read_kubeconfig
from control.nodes.reconnecting import LinkState
from tests.cluster import DEFAULT_TIMEOUT, HollowCluster, hollow_pod
from tests.polling import eventually

Obj = dict[str, Any]
EXEC = "/api/v1/namespaces/default/pods/web/exec"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[HollowCluster]:
    """One hollow node, a pod `web` running on it, and TLS with tokens."""
    async with hollow_pod(tmp_path, listen="127.0.0.1:0") as c:
        yield c


async def _collect(conn: ExecConnection) -> bytes:
    return b"".join([data async for _fd, data in conn.output()])


async def test_tty_shell_echo_resize_and_exit_code(cluster: HollowCluster) -> None:
    async with (
        cluster.client() as client,
        client.exec_stream("web", ["sh"], stdin=True, tty=True) as conn,
    ):
        await conn.write(b"echo hi there\n")
        await conn.resize(100, 30)
        await conn.write(b"stty size\nexit 3\n")
        out = await _collect(conn)
    assert out == b"echo hi there\r\nhi there\r\nstty size\r\n30 100\r\nexit 3\r\n"
    assert conn.exit_code == 3
    assert conn.status == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: exit status 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    await cluster.sessions_released()


async def test_piped_stdin_without_a_tty(cluster: HollowCluster) -> None:
    """`cat` copies stdin and exits when it ends (v5 closes stdin); more than
    the agent's output window goes through, acknowledged chunk by chunk."""
    data = bytes(range(256)) * (EXEC_WINDOW_BYTES // 256 * 3)
    async with (
        cluster.client() as client,
        client.exec_stream("web", ["cat"], stdin=True) as conn,
    ):
        assert conn.protocol == "v5.channel.k8s.io"

        async def feed() -> None:
            await conn.write(data)
            await conn.close_stdin()

        feeding = asyncio.create_task(feed())
        out = await _collect(conn)
        await feeding
    assert out == data
    assert conn.exit_code == 0 and conn.status == {"metadata": {}, "status": "Success"}
    await cluster.sessions_released()


async def test_a_command_without_stdin_and_stderr_apart(cluster: HollowCluster) -> None:
    async with cluster.client() as client:
        async with client.exec_stream("web", ["echo", "a", "b"]) as conn:
            assert [x async for x in conn.output()] == [(1, b"a b\n")]
        assert conn.exit_code == 0
        async with client.exec_stream("web", ["nosuch"]) as conn:
            assert [x async for x in conn.output()] == [(2, b"nosuch: not found\n")]
        assert conn.exit_code == 127


async def test_the_wire_format_v4_and_base64(cluster: HollowCluster) -> None:
    """What any Kubernetes client sees: channel-prefixed binary messages, or
    base64 text with the channel as a digit; the Status on channel 3; close."""
    query = "command=sh&stdin=true&stdout=true&tty=true"
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=cluster.socket)) as s:
        url = f"http://localhost{EXEC}?{query}"
        async with s.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
            assert ws.protocol == "v4.channel.k8s.io"
            await ws.send_bytes(b'\x04{"Width":80,"Height":25}')
            await ws.send_bytes(b"\x00stty size\nexit 0\n")
            got = [msg.data async for msg in ws]
        assert b"".join(m[1:] for m in got if m[0] == 1) == (b"stty size\r\n25 80\r\nexit 0\r\n")
        assert json.loads(got[-1][1:]) == {"metadata": {}, "status": "Success"}
        assert got[-1][0] == 3
        async with s.ws_connect(url, protocols=("base64.channel.k8s.io",)) as ws:
            assert ws.protocol == "base64.channel.k8s.io"
            await ws.send_str("0" + base64.b64encode(b"exit 5\n").decode())
            texts = [msg.data async for msg in ws]
        assert all(isinstance(t, str) for t in texts)
        assert base64.b64decode(texts[0][1:]) == b"exit 5\r\n" and texts[0][0] == "1"
        assert texts[-1][0] == "3"
        status = json.loads(base64.b64decode(texts[-1][1:]))
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "5"}]


async def test_refusals(cluster: HollowCluster) -> None:
    """Errors before the upgrade are Status answers; the read-only role may not exec."""
    async with cluster.client() as client:
        with pytest.raises(ApiError) as e:
            async with client.exec_stream("nope", ["sh"]):
                pass
        assert e.value.code == 404 and "nope" in e.value.message
        with pytest.raises(ApiError) as e:
            async with client.exec_stream("web", ["sh"], container="other"):
                pass
        assert e.value.code == 400 and "container other is not valid" in e.value.message
        with pytest.raises(ApiError) as e:
            async with client.exec_stream("web", []):
                pass
        assert e.value.code == 400 and "at least one command" in e.value.message
        # Without the upgrade, Kubernetes-style exec says what it needs.
        status, raw = await client.request_raw("POST", EXEC + "?command=sh&stdin=true")
        assert status == 400 and b"Upgrade request required" in raw
        # The pilothouse extension still runs one command.
        assert (await client.exec("web", ["echo", "x"]))["stdout"] == "x\n"
    ro = read_kubeconfig(cluster.plane.config.data_dir / "kubeconfig-readonly")
    async with Client(ro.server, ca_pem=ro.ca_pem, token=ro.token) as reader:
        with pytest.raises(ApiError) as e:
            async with reader.exec_stream("web", ["sh"], stdin=True, tty=True):
                pass
        assert e.value.code == 403 and e.value.reason == "Forbidden"
    admin = read_kubeconfig(cluster.plane.kubeconfig_path)
    async with (
        Client(admin.server, ca_pem=admin.ca_pem, token=admin.token) as over_tls,
        over_tls.exec_stream("web", ["echo", "tls"]) as conn,
    ):
        assert await _collect(conn) == b"tls\n"


@pytest.mark.parametrize("ending", ["the client leaves", "the link drops"])
async def test_a_session_cut_short_is_released(cluster: HollowCluster, ending: str) -> None:
    link = cluster.plane.node_links.links["node-1"]
    async with (
        cluster.client() as client,
        client.exec_stream("web", ["sh"], stdin=True, tty=True) as conn,
    ):
        await conn.write(b"echo first\n")
        out = conn.output()
        assert await anext(out) == (1, b"echo first\r\n")
        if ending == "the client leaves":
            await out.aclose()
        else:
            await cluster.transports["node-1"].cut()
            # What the shell wrote before the cut may or may not have made it.
            assert [x async for x in out] in ([], [(1, b"first\r\n")])
            assert conn.exit_code is None
            assert conn.status is not None and conn.status["status"] == "Failure"
            assert "link dropped" in conn.error
    await eventually(
        lambda: link.state is LinkState.CONNECTED, "the link up", within=DEFAULT_TIMEOUT
    )
    await cluster.sessions_released()


async def test_the_official_kubernetes_client(cluster: HollowCluster) -> None:
    """`kubernetes.stream.stream(connect_get_namespaced_pod_exec)` over TLS."""
    from kubernetes import client, config
    from kubernetes.stream import stream

    api = client.CoreV1Api(
        config.new_client_from_config(config_file=str(cluster.plane.kubeconfig_path))
    )

    def call(command: list[str], stdin: bool, preload: bool) -> Any:
        return stream(
            api.connect_get_namespaced_pod_exec,
            "web",
            "default",
            command=command,
            stderr=True,
            stdin=stdin,
            stdout=True,
            tty=False,
            _preload_content=preload,
        )

    def echo() -> str:
        out: str = call(["echo", "from", "kubernetes"], stdin=False, preload=True)
        return out

    def run(command: list[str], stdin: str = "") -> tuple[str, int | None]:
        resp = call(command, stdin=bool(stdin), preload=False)
        try:
            if stdin:
                resp.write_stdin(stdin)
            resp.run_forever(timeout=30)
            return resp.read_stdout(), resp.returncode
        finally:
            resp.close()

    assert await asyncio.to_thread(echo) == "from kubernetes\n"
    # The hollow shell echoes nothing without a tty and runs `echo` literally.
    assert await asyncio.to_thread(run, ["sh"], "echo $((6*7))\nexit 4\n") == ("$((6*7))\n", 4)
    assert await asyncio.to_thread(run, ["false"]) == ("", 1)
