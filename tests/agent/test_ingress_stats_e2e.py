"""The node's ingress with a real HAProxy on 127.0.0.1, spoken to over a Peer as
the control plane would: ingress_sync, then ingress_stats counting a bounded
number of requests to a tiny backend and giving their p99; a new node IP moves
the listener; closing stops HAProxy."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from agent.ingress.nodeingress import NodeIngress
from agent.protocol import Peer
from agent.protocol.ingress import INGRESS_STATS, INGRESS_SYNC, RouteTableWire
from tests.agent.inprocess import peer_to
from tests.polling import eventually

from .haproxytables import backend, frontend, host, route
from .test_haproxy_e2e import Backends, free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed"),
]

REQUESTS = 50
ROUTE = "ing/default/web/0/0"


@pytest.fixture
async def ingress() -> AsyncIterator[NodeIngress]:
    runtime_dir = Path(tempfile.mkdtemp(prefix="ph-ingress-", dir="/tmp"))  # short socket paths
    node = NodeIngress(runtime_dir)
    try:
        yield node
    finally:
        await node.close()
        shutil.rmtree(runtime_dir, ignore_errors=True)


@pytest.fixture
async def control(ingress: NodeIngress) -> AsyncIterator[Peer]:
    async with peer_to(ingress.handlers(), request_timeout=30) as peer:
        yield peer


def route_table(generation: int, port: int, backend_port: int) -> RouteTableWire:
    r = route(ROUTE, "/", backend("default/web:80", backend_port))
    return {
        "generation": generation,
        "frontends": [frontend(port, host("", r))],
        "certificates": [],
    }


async def get(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as response:
        await response.read()
        return response.status


async def refused(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session:
            await get(session, url)
    except aiohttp.ClientConnectionError:
        return True
    return False


async def test_stats_count_requests_and_give_their_p99(ingress: NodeIngress, control: Peer) -> None:
    backends = Backends()
    try:
        web = await backends.start("web")
        port = free_port()
        ingress.set_node_ip("127.0.0.1")
        assert await control.request(INGRESS_STATS, {}) == {"routes": {}}
        table = route_table(1, port, web)
        assert await control.request(INGRESS_SYNC, {"table": table}) == {"generation": 1}
        async with aiohttp.ClientSession() as session:
            for _ in range(REQUESTS):
                assert await get(session, f"http://127.0.0.1:{port}/x") == 200

        async def counted() -> dict[str, object] | None:
            routes = (await control.request(INGRESS_STATS, {}))["routes"]
            figures: dict[str, object] = routes[ROUTE]
            done = figures["requests"] == REQUESTS and figures["p99Ms"] is not None
            return figures if done else None

        figures = await eventually(counted, "the requests counted and timed")
        assert figures["http5xx"] == 0
        assert isinstance(figures["requestsPerSecond"], float)
        p99 = figures["p99Ms"]
        assert isinstance(p99, float) and 0 < p99 < 5000

        # A new node IP: the next sync moves the listener there.
        pid = ingress.ingress.proxy.pid if ingress.ingress else None
        assert pid is not None
        ingress.set_node_ip("127.0.0.2")
        table = route_table(2, port, web)
        assert await control.request(INGRESS_SYNC, {"table": table}) == {"generation": 2}
        async with aiohttp.ClientSession() as session:
            assert await get(session, f"http://127.0.0.2:{port}/x") == 200
        await eventually(lambda: refused(f"http://127.0.0.1:{port}/x"), "the old address let go")
    finally:
        await backends.close()
    await ingress.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
