"""The agent protocol over real stream pairs (a socketpair): framing, dispatch,
errors, timeouts, and the versioned hello."""

from __future__ import annotations

import asyncio
import base64
import json
import tomllib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.hollow import HollowAgent
from agent.protocol import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_FOUND,
    PARSE_ERROR,
    PROTOCOL_VERSION,
    VERSION_MISMATCH,
    ConnectionClosed,
    InvalidParams,
    Params,
    Peer,
    ProtocolVersionError,
    RpcError,
    check_hello,
    hello,
)
from agent.protocol.execio import EXEC_CHUNK_BYTES, EXEC_WINDOW_BYTES
from tests.agent.inprocess import control_of, socket_streams


@dataclass
class Pair:
    """Two connected Peers."""

    a: Peer
    b: Peer
    tasks: list[asyncio.Task[None]]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    (r1, w1), (r2, w2) = await socket_streams()
    a = Peer(r1, w1, name="a", max_message_bytes=4096, request_timeout=5)
    b = Peer(r2, w2, name="b", max_message_bytes=4096, request_timeout=5)
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    yield Pair(a, b, tasks)
    a.close()
    b.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def raw() -> AsyncIterator[tuple[Peer, asyncio.StreamReader, asyncio.StreamWriter]]:
    """A serving Peer, and the raw streams of its other end."""
    (r1, w1), (r2, w2) = await socket_streams()
    peer = Peer(r1, w1, name="server", max_message_bytes=1024)

    async def echo(params: Params) -> Any:
        return params

    peer.on("echo", echo)
    task = asyncio.create_task(peer.run())
    yield peer, r2, w2
    w2.close()
    peer.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> dict[str, Any]:
    writer.write(data)
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 5)
    msg: dict[str, Any] = json.loads(line)
    return msg


async def test_request_response_and_notifications_in_order(pair: Pair) -> None:
    seen: list[int] = []

    async def add(params: Params) -> int:
        return int(params["x"]) + int(params["y"])

    async def tick(params: Params) -> None:
        seen.append(params["n"])

    pair.b.on("add", add)
    pair.b.on("tick", tick)
    assert await pair.a.request("add", {"x": 2, "y": 3}) == 5
    for n in range(50):
        await pair.a.notify("tick", {"n": n})
    # Requests are answered after the notifications sent before them were handled.
    assert await pair.a.request("add", {"x": 0, "y": 0}) == 0
    assert seen == list(range(50))


async def test_concurrent_requests_are_correlated_by_id(pair: Pair) -> None:
    async def slow_echo(params: Params) -> Any:
        await asyncio.sleep(params["delay"])
        return params["v"]

    pair.b.on("echo", slow_echo)
    results = await asyncio.gather(
        *(pair.a.request("echo", {"v": i, "delay": (5 - i) * 0.01}) for i in range(5))
    )
    assert results == list(range(5))


async def test_errors_from_handlers(pair: Pair) -> None:
    async def bad_params(params: Params) -> None:
        raise InvalidParams("pods: expected an array")

    async def broken(params: Params) -> None:
        raise RuntimeError("boom")

    async def key_error(params: Params) -> Any:
        return params["missing"]

    pair.b.on("bad", bad_params)
    pair.b.on("broken", broken)
    pair.b.on("key", key_error)
    with pytest.raises(RpcError) as e:
        await pair.a.request("nope")
    assert e.value.code == METHOD_NOT_FOUND and "nope" in e.value.message
    with pytest.raises(RpcError) as e:
        await pair.a.request("bad", {})
    assert e.value.code == INVALID_PARAMS and "pods" in e.value.message
    with pytest.raises(RpcError) as e:
        await pair.a.request("broken", {})
    assert e.value.code == INTERNAL_ERROR and "boom" in e.value.message
    with pytest.raises(RpcError) as e:
        await pair.a.request("key", {})
    assert e.value.code == INVALID_PARAMS
    # The peer is still serving after all of that.
    pair.b.on("ok", _ok)
    assert await pair.a.request("ok") == "ok"


async def _ok(params: Params) -> str:
    return "ok"


async def test_timeout_and_closed_connection(pair: Pair) -> None:
    never = asyncio.Event()

    async def hang(params: Params) -> None:
        await never.wait()

    pair.b.on("hang", hang)
    with pytest.raises(TimeoutError):
        await pair.a.request("hang", timeout=0.05)
    assert not pair.a._pending  # nothing leaks
    waiting = asyncio.create_task(pair.a.request("hang"))
    await asyncio.sleep(0.05)
    pair.b.close()  # the other side goes away
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(waiting, 5)
    with pytest.raises(ConnectionClosed):
        await pair.a.request("hang")


async def test_parse_error_does_not_kill_the_peer(raw: tuple[Peer, Any, Any]) -> None:
    _, reader, writer = raw
    msg = await _roundtrip(reader, writer, b"{not json\n")
    assert msg["jsonrpc"] == "2.0" and msg["id"] is None
    assert msg["error"]["code"] == PARSE_ERROR
    msg = await _roundtrip(
        reader, writer, b'{"jsonrpc":"2.0","id":7,"method":"echo","params":{"a":1}}\n'
    )
    assert msg == {"jsonrpc": "2.0", "id": 7, "result": {"a": 1}}


@pytest.mark.parametrize(
    "line",
    [
        b"[1, 2]",  # a batch: not part of this protocol
        b'"hello"',
        b'{"id": 1, "method": "echo"}',  # no jsonrpc member
        b'{"jsonrpc": "2.0", "id": 1, "method": 5}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "echo", "params": 3}',
        b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "echo"}',
    ],
)
async def test_invalid_requests_get_invalid_request(
    raw: tuple[Peer, Any, Any], line: bytes
) -> None:
    _, reader, writer = raw
    msg = await _roundtrip(reader, writer, line + b"\n")
    assert msg["error"]["code"] == INVALID_REQUEST
    msg = await _roundtrip(reader, writer, b'{"jsonrpc":"2.0","id":"s","method":"echo"}\n')
    assert msg == {"jsonrpc": "2.0", "id": "s", "result": {}}


async def test_oversized_message_is_refused_and_reading_goes_on(raw: tuple[Peer, Any, Any]) -> None:
    _, reader, writer = raw
    big = b'{"jsonrpc":"2.0","id":1,"method":"echo","params":{"x":"' + b"x" * 5000 + b'"}}\n'
    # In pieces, as a slow sender would write it.
    for i in range(0, len(big), 700):
        writer.write(big[i : i + 700])
        await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 5)
    msg = json.loads(line)
    assert msg["error"]["code"] == INVALID_REQUEST and "1024" in msg["error"]["message"]
    msg = await _roundtrip(reader, writer, b'{"jsonrpc":"2.0","id":2,"method":"echo"}\n')
    assert msg["id"] == 2 and msg["result"] == {}


async def test_notifications_never_get_answers(raw: tuple[Peer, Any, Any]) -> None:
    _, reader, writer = raw
    writer.write(b'{"jsonrpc":"2.0","method":"nobody-listens","params":{}}\n')
    msg = await _roundtrip(reader, writer, b'{"jsonrpc":"2.0","id":3,"method":"echo"}\n')
    assert msg["id"] == 3  # the first answer is to the request: nothing for the notification


async def test_an_oversized_outgoing_message_is_refused_before_sending(pair: Pair) -> None:
    with pytest.raises(ValueError, match="exceeds"):
        await pair.a.notify("x", {"data": "y" * 10000})
    pair.b.on("ok", _ok)
    assert await pair.a.request("ok") == "ok"


async def test_hello_with_a_hollow_agent() -> None:
    agent = HollowAgent("node-7", cpu="8", memory="16Gi", pods=50)
    async with control_of(agent) as control:
        info = await hello(control, "node-7")
        assert info["hostname"] == "node-7"
        assert info["protocolVersion"] == PROTOCOL_VERSION
        assert info["cpus"] == 8 and info["memoryBytes"] == 16 * 1024**3
        assert info["containerdVersion"] == "" and info["agentVersion"].endswith("hollow")
        # Machine ids made up from the name: stable, and another node's differ.
        again = HollowAgent("node-7").identity
        assert (info["machineID"], info["systemUUID"], info["bootID"]) == (
            again.machine_id,
            again.system_uuid,
            again.boot_id,
        )
        assert HollowAgent("node-8").identity.machine_id != info["machineID"]
        assert (
            len(info["machineID"]) == 32
            and str(uuid.UUID(info["systemUUID"])) == info["systemUUID"]
        )
        # Hollow agents answer logs and exec with synthetic data, for pods they run.
        with pytest.raises(RpcError) as e:
            await control.request("logs", {"namespace": "default", "name": "p"})
        assert e.value.code == NOT_FOUND and "not running on node node-7" in e.value.message
        with pytest.raises(RpcError) as e:
            await control.request(
                "exec",
                {
                    "namespace": "default",
                    "name": "p",
                    "command": ["sh"],
                    "tty": True,
                    "session": "s",
                },
            )
        assert e.value.code == NOT_FOUND


async def test_version_mismatch_is_clear_on_both_sides(pair: Pair) -> None:
    # The agent refuses a control plane that speaks another version...
    with pytest.raises(ProtocolVersionError, match="protocol version mismatch"):
        check_hello({"protocolVersion": PROTOCOL_VERSION + 1, "nodeName": "n"})

    async def agent_hello(params: Params) -> Any:
        check_hello(params)

    pair.b.on("hello", agent_hello)
    with pytest.raises(RpcError) as e:
        await pair.a.request("hello", {"protocolVersion": 99, "nodeName": "n"})
    assert e.value.code == VERSION_MISMATCH
    assert "control plane speaks version 99" in e.value.message
    assert f"speaks version {PROTOCOL_VERSION}" in e.value.message

    # ...and the control plane refuses an agent that answers with another one.
    async def old_agent(params: Params) -> Any:
        return {"hostname": "n", "protocolVersion": 0, "agentVersion": "0.0.1"}

    pair.b.on("hello", old_agent)
    with pytest.raises(ProtocolVersionError) as e:
        await hello(pair.a, "n")
    assert "speaks version 0" in e.value.message and "0.0.1" in e.value.message


async def test_control_sees_the_agents_version_error(pair: Pair) -> None:
    async def strict(params: Params) -> Any:
        raise ProtocolVersionError("protocol version mismatch: agent speaks version 2")

    pair.b.on("hello", strict)
    with pytest.raises(ProtocolVersionError, match="agent speaks version 2"):
        await hello(pair.a, "n")


async def test_exec_session_output_waits_for_acknowledgements() -> None:
    """An interactive session sends at most EXEC_WINDOW_BYTES of output, in
    chunks of at most EXEC_CHUNK_BYTES, until the control plane acknowledges
    it; hanging up ends the session on the agent."""
    agent = HollowAgent("node-7")
    got: list[Params] = []
    arrived = asyncio.Event()

    async def on_io(params: Params) -> None:
        got.append(params)
        arrived.set()

    def received() -> int:
        return sum(len(base64.b64decode(m["data"])) for m in got if "data" in m)

    async def until_received(n: int) -> None:
        async with asyncio.timeout(10):
            while received() < n:
                arrived.clear()
                await arrived.wait()

    async with control_of(agent, {"exec_io": on_io}) as control:
        await hello(control, "node-7")
        pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u1"}}
        pod["spec"] = {"containers": [{"name": "c", "image": "busybox"}]}
        await control.request("sync_pods", {"pods": [pod]})
        await control.request(
            "exec",
            {
                "namespace": "default",
                "name": "p",
                "command": ["cat"],
                "stdin": True,
                "session": "s",
            },
        )
        data = b"x" * (2 * EXEC_WINDOW_BYTES)
        for i in range(0, len(data), EXEC_CHUNK_BYTES):
            chunk = base64.b64encode(data[i : i + EXEC_CHUNK_BYTES]).decode()
            await control.notify("exec_io", {"session": "s", "data": chunk})
        await until_received(EXEC_WINDOW_BYTES)
        for _ in range(50):  # give the agent every chance to send more than its window
            await asyncio.sleep(0)
        assert received() == EXEC_WINDOW_BYTES
        assert all(len(base64.b64decode(m["data"])) <= EXEC_CHUNK_BYTES for m in got)
        await control.notify("exec_io", {"session": "s", "ack": EXEC_WINDOW_BYTES})
        await until_received(2 * EXEC_WINDOW_BYTES)
        assert agent.sessions is not None and len(agent.sessions) == 1
        await control.notify("exec_io", {"session": "s", "close": True})
        async with asyncio.timeout(10):
            while "exit" not in got[-1]:  # the session's last message
                arrived.clear()
                await arrived.wait()
        assert not len(agent.sessions)


def test_control_may_import_only_the_protocol_of_the_agent() -> None:
    """The import contract forbids control and console every agent module but
    agent.protocol: a new agent module must be added to its list."""
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    (contract,) = [
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["name"] == "control reaches the agent only through agent.protocol"
    ]
    modules = {
        f"agent.{p.stem if p.suffix == '.py' else p.name}"
        for p in (root / "agent").iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()
    }
    assert set(contract["forbidden_modules"]) == modules - {"agent.protocol"}
