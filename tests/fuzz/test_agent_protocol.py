"""Fuzzing the agent protocol: a Peer reads any line and answers every
request it can name with a JSON-RPC result or error, and keeps serving; the
agent's methods (the hollow agent's, which parse params as the real agent's
do: agent/pods/params.py, the service and route tables, image import, exec
sessions) answer any params with a result or an error other than an
internal one."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import example, given, reject
from hypothesis import strategies as st

from agent.hollow import HollowAgent
from agent.protocol import INTERNAL_ERROR, PROTOCOL_VERSION, Params, Peer, RpcError
from agent.protocol.ingress import INGRESS_STATS, INGRESS_SYNC
from agent.protocol.services import SERVICES_SYNC, SERVICES_UPDATE
from tests.agent.inprocess import control_of, socket_streams
from tests.fuzz.fuzzing import JSON, JSON_OBJECTS, budget, dumps, mutated, ran

ANSWER_TIMEOUT = 5.0
_ids = itertools.count()


class RawEnd:
    """A serving Peer, and the raw streams of the other end."""

    def __init__(self, peer: Peer, task: asyncio.Task[None], reader: Any, writer: Any) -> None:
        self.peer, self.task, self.reader, self.writer = peer, task, reader, writer

    async def call(self, line: bytes) -> list[dict[str, Any]]:
        """Send `line`, then a request of our own; the messages answered
        before ours (ours last). Every one is a JSON-RPC response."""
        mine = f"sentinel-{next(_ids)}"
        sentinel = {"jsonrpc": "2.0", "id": mine, "method": "echo", "params": {"n": 1}}
        self.writer.write(line + b"\n" + orjson.dumps(sentinel) + b"\n")
        await self.writer.drain()
        answers = []
        async with asyncio.timeout(ANSWER_TIMEOUT):
            while True:
                raw = await self.reader.readline()
                assert raw, "the peer closed the connection"
                answer = orjson.loads(raw)
                _check_response(answer)
                answers.append(answer)
                if answer.get("id") == mine:
                    assert answer.get("result") == {"n": 1}, answer
                    return answers


def _check_response(msg: Any) -> None:
    assert isinstance(msg, dict) and msg.get("jsonrpc") == "2.0", msg
    assert "id" in msg and (("result" in msg) != ("error" in msg)), msg
    if "error" in msg:
        error = msg["error"]
        assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str), msg


@pytest.fixture
async def raw_end() -> AsyncIterator[RawEnd]:
    (r1, w1), (r2, w2) = await socket_streams()

    async def echo(params: Params) -> Any:
        return params

    async def strict(params: Params) -> Any:
        return params["needed"] + 1  # KeyError, TypeError: invalid params

    peer = Peer(r1, w1, name="fuzzed", handlers={"echo": echo, "strict": strict})
    task = asyncio.create_task(peer.run())
    yield RawEnd(peer, task, r2, w2)
    w2.close()
    peer.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


_IDS = st.one_of(st.integers(), st.text(max_size=8), JSON)
MESSAGES = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.one_of(st.just("2.0"), JSON),
        "id": _IDS,
        "method": st.one_of(st.sampled_from(["echo", "strict", "nope"]), JSON),
        "params": st.one_of(JSON_OBJECTS, JSON),
        "result": JSON,
        "error": st.one_of(
            st.fixed_dictionaries({}, optional={"code": JSON, "message": JSON, "data": JSON}), JSON
        ),
    },
)


LINES = st.one_of(
    MESSAGES.map(dumps),
    JSON.map(dumps),
    st.binary(max_size=48),
    st.text(max_size=48).map(str.encode),
)


@budget(300)
@given(line=LINES)
@example(line=b'{"jsonrpc": "2.0", "id": 1, "method": "echo", "params": []}')
async def test_lines(raw_end: RawEnd, line: bytes) -> None:
    """Any line: the peer answers what it must, and goes on serving."""
    ran("test_lines")
    await raw_end.call(line)
    assert not raw_end.task.done()


# -- the agent's methods ----------------------------------------------------------------

_POD = {
    "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}
_ARCHIVE = b"not a tar"
SEEDS: dict[str, dict[str, Any]] = {
    "hello": {"protocolVersion": PROTOCOL_VERSION, "nodeName": "n"},
    "network_config": {
        "podCIDR": "10.244.1.0/24",
        "nodeIP": "10.0.0.1",
        "clusterCIDR": "10.244.0.0/16",
        "serviceCIDR": "10.96.0.0/12",
        "clusterDNS": "10.96.0.10",
        "clusterDomain": "cluster.local",
        "routes": [{"cidr": "10.244.2.0/24", "via": "10.0.0.2"}],
    },
    "sync_pods": {
        "pods": [_POD],
        "configMaps": [{"namespace": "default", "name": "cm", "data": {"k": "v"}}],
        "secrets": [],
    },
    "stats": {"pods": ["u1"]},
    "logs": {"namespace": "default", "name": "p", "container": "c", "tailLines": 5},
    "exec": {"namespace": "default", "name": "p", "command": ["echo", "hi"], "timeoutSeconds": 2},
    "attach": {"namespace": "default", "name": "p", "session": "s1", "stdin": True},
    "exec_io": {"session": "s1", "data": "aGk=", "ack": 2},
    INGRESS_SYNC: {"table": {"generation": 1, "frontends": [], "certificates": []}},
    INGRESS_STATS: {},
    SERVICES_SYNC: {
        "generation": 1,
        "table": {
            "services": [
                {
                    "namespace": "default",
                    "name": "web",
                    "type": "ClusterIP",
                    "clusterIP": "10.96.0.20",
                    "ports": [{"name": "", "protocol": "TCP", "port": 80}],
                    "sessionAffinity": "None",
                    "sessionAffinityTimeoutSeconds": 10800,
                }
            ],
            "endpoints": [],
        },
    },
    SERVICES_UPDATE: {
        "generation": 2,
        "base": 1,
        "changes": [{"op": "deleteService", "namespace": "default", "name": "web"}],
    },
    "image_import_begin": {"transfer": "t", "size": len(_ARCHIVE)},
    "image_import_chunk": {
        "transfer": "t",
        "offset": 0,
        "data": base64.b64encode(_ARCHIVE).decode(),
    },
    "image_import_commit": {
        "transfer": "t",
        "size": len(_ARCHIVE),
        "sha256": hashlib.sha256(_ARCHIVE).hexdigest(),
    },
    "image_import_abort": {"transfer": "t"},
}
SYNC_PODS_CRASH = {"pods": [{"metadata": {"uid": "u2"}, "spec": {"containers": None}}]}
NOTIFICATIONS = {"exec_io"}


@pytest.fixture
async def agent_link(tmp_path: Path) -> AsyncIterator[Peer]:
    agent = HollowAgent("fuzzed", heartbeat_interval=3600)
    agent.image_dir = tmp_path
    async with control_of(agent) as control:
        await control.request("hello", SEEDS["hello"], timeout=ANSWER_TIMEOUT)
        yield control


@budget(300)
@given(
    call=st.sampled_from(sorted(SEEDS)).flatmap(
        lambda m: st.tuples(st.just(m), st.one_of(mutated(SEEDS[m]), JSON_OBJECTS))
    )
)
@example(call=("sync_pods", SYNC_PODS_CRASH))  # then every stats failed
async def test_agent_methods(agent_link: Peer, call: tuple[str, dict[str, Any]]) -> None:
    """Any params to any method: a result, or an error that is not internal."""
    method, params = call
    try:
        orjson.dumps(params)
    except orjson.JSONEncodeError:
        reject()  # a control plane cannot send it
    ran("test_agent_methods")
    if method in NOTIFICATIONS:
        await agent_link.notify(method, params)
    else:
        try:
            await agent_link.request(method, params, timeout=ANSWER_TIMEOUT)
        except RpcError as e:
            # The one internal error by design: the limit of open image imports.
            busy = e.message.endswith("image imports are already under way")
            assert e.code != INTERNAL_ERROR or busy, f"{method} {params!r}: {e}"
    # The agent still serves.
    await agent_link.request("stats", {}, timeout=ANSWER_TIMEOUT)
