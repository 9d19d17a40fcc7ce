"""The node agent's ingress (--ingress) over real Peer pairs, with a fake proxy
(no HAProxy): the proxy made at the first ingress_sync on the node IP and moved
with it, ingress_stats, errors, the agent's wiring and exit; the hollow agent's
answers; and the access log's latency window."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.hollow import HollowAgent
from agent.ingress.accesslog import (
    GROWTH,
    LOG_FORMAT,
    AccessLog,
    LatencyWindow,
    bin_of,
    bin_top,
    feed,
    parse_line,
)
from agent.ingress.haproxyconfig import Settings, render
from agent.ingress.nodeingress import NodeIngress, runtime_dir_for
from agent.ingress.proxy import IngressError, IngressProxy, RouteStats
from agent.ingress.routetable import RouteTable
from agent.ingress.runtime import HAProxyRuntimeError
from agent.main import Agent, parse_args
from agent.protocol import INTERNAL_ERROR, INVALID_PARAMS, Handler, Peer, RpcError, hello
from agent.protocol.ingress import INGRESS_STATS, INGRESS_SYNC, RouteTableWire
from tests.agent.inprocess import control_of, peer_to
from tests.polling import Polling, eventually

from .haproxytables import backend, frontend, host, route, table


def wire_table(generation: int) -> RouteTableWire:
    r = route("ing/default/web/0/0", "/", backend("default/web:80", 8080, ip="10.244.1.2"))
    return {
        "generation": generation,
        "frontends": [{"port": 80, "tls": False, "hosts": [host("", r)]}],
        "certificates": [],
    }


def sync(generation: int) -> dict[str, Any]:
    return {"table": wire_table(generation)}


class FakeProxy(IngressProxy):
    """Records the tables it is given with the address it would bind; `fail` and
    `stats_fail` make sync and stats fail as HAProxy would."""

    def __init__(self, runtime_dir: Path, address: str) -> None:
        super().__init__(runtime_dir, bind_address=address)
        self.synced: list[tuple[int, str]] = []
        self.figures: dict[str, RouteStats] = {}
        self.fail: str | None = None
        self.stats_fail: str | None = None
        self.closed = False

    async def sync(self, table: RouteTable) -> None:
        if self.fail:
            raise IngressError(self.fail)
        self.synced.append((table.generation, self.bind_address))
        self.generation = table.generation

    async def stats(self) -> dict[str, RouteStats]:
        if self.stats_fail:
            raise HAProxyRuntimeError(self.stats_fail)
        return self.figures

    async def close(self) -> None:
        self.closed = True


class Proxies:
    """A proxy factory that keeps what it made."""

    def __init__(self) -> None:
        self.made: list[FakeProxy] = []

    def __call__(self, runtime_dir: Path, address: str) -> IngressProxy:
        self.made.append(FakeProxy(runtime_dir, address))
        return self.made[-1]


@pytest.fixture
async def control() -> AsyncIterator[Any]:
    """control(handlers) -> a control Peer to an agent end with those handlers."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(handlers: dict[str, Handler]) -> Peer:
            return await stack.enter_async_context(peer_to(handlers))

        yield make


async def rpc_error(peer: Peer, method: str, params: dict[str, Any]) -> RpcError:
    with pytest.raises(RpcError) as e:
        await peer.request(method, params)
    return e.value


# --- NodeIngress ------------------------------------------------------------------------


async def test_the_proxy_is_made_at_the_first_sync_on_the_node_ip_and_moves_with_it(
    tmp_path: Path, control: Any
) -> None:
    proxies = Proxies()
    ingress = NodeIngress(tmp_path / "ingress", make_proxy=proxies)
    peer = await control(ingress.handlers())
    assert await peer.request(INGRESS_STATS, {}) == {"routes": {}}
    ingress.set_node_ip("10.0.0.5")
    assert proxies.made == []
    assert await peer.request(INGRESS_SYNC, sync(1)) == {"generation": 1}
    assert len(proxies.made) == 1 and (tmp_path / "ingress").is_dir()
    ingress.set_node_ip("10.0.0.6")
    assert await peer.request(INGRESS_SYNC, sync(2)) == {"generation": 2}
    ingress.set_node_ip("")
    assert await peer.request(INGRESS_SYNC, sync(3)) == {"generation": 3}
    assert len(proxies.made) == 1
    assert proxies.made[0].synced == [(1, "10.0.0.5"), (2, "10.0.0.6"), (3, "0.0.0.0")]
    await ingress.close()
    assert proxies.made[0].closed


async def test_stats_are_the_proxys_per_route_figures(tmp_path: Path, control: Any) -> None:
    proxies = Proxies()
    ingress = NodeIngress(tmp_path / "ingress", make_proxy=proxies)
    peer = await control(ingress.handlers())
    await peer.request(INGRESS_SYNC, sync(1))
    proxies.made[0].figures = {
        "ing/default/web/0/0": RouteStats(7, 3, 1, 12.5),
        "ing/default/idle/0/0": RouteStats(0, 0, 0),
    }
    assert await peer.request(INGRESS_STATS, {}) == {
        "routes": {
            "ing/default/web/0/0": {
                "requests": 7,
                "requestsPerSecond": 3.0,
                "http5xx": 1,
                "p99Ms": 12.5,
            },
            "ing/default/idle/0/0": {
                "requests": 0,
                "requestsPerSecond": 0.0,
                "http5xx": 0,
                "p99Ms": None,
            },
        }
    }


async def test_proxy_errors_are_rpc_errors_with_its_message(tmp_path: Path, control: Any) -> None:
    proxies = Proxies()
    ingress = NodeIngress(tmp_path / "ingress", make_proxy=proxies)
    peer = await control(ingress.handlers())
    bad = {"table": {"generation": 1, "frontends": [{"port": 0, "tls": False, "hosts": []}]}}
    err = await rpc_error(peer, INGRESS_SYNC, bad)
    assert err.code == INVALID_PARAMS and "table.frontends[0].port" in err.message
    await peer.request(INGRESS_SYNC, sync(1))
    proxy = proxies.made[0]
    proxy.fail = "haproxy refused the configuration: [ALERT] parsing line 12"
    err = await rpc_error(peer, INGRESS_SYNC, sync(2))
    assert err.code == INTERNAL_ERROR and "[ALERT] parsing line 12" in err.message
    assert proxy.generation == 1
    proxy.stats_fail = "haproxy.sock: 'show stat': Connection refused"
    err = await rpc_error(peer, INGRESS_STATS, {})
    assert err.code == INTERNAL_ERROR and "Connection refused" in err.message


async def test_a_proxy_that_cannot_be_made_is_an_rpc_error(tmp_path: Path, control: Any) -> None:
    ingress = NodeIngress(tmp_path / ("x" * 110))  # too long for HAProxy's sockets
    peer = await control(ingress.handlers())
    err = await rpc_error(peer, INGRESS_SYNC, sync(1))
    assert err.code == INTERNAL_ERROR
    assert "ingress proxy: runtime_dir: too long for a unix socket path" in err.message


def test_the_runtime_dir_is_under_the_state_dir_unless_too_long(tmp_path: Path) -> None:
    assert runtime_dir_for(Path("/var/lib/pilothouse/agent")) == Path(
        "/var/lib/pilothouse/agent/ingress"
    )
    long = tmp_path / ("y" * 100)
    chosen = runtime_dir_for(long)
    assert chosen.name.startswith("ph-ingress-") and chosen == runtime_dir_for(long)
    assert chosen != runtime_dir_for(tmp_path / ("z" * 100))


# --- the agent ---------------------------------------------------------------------------


def agent_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--state-dir",
        str(tmp_path / "state"),
        "--containerd-socket",
        str(tmp_path / "no-containerd.sock"),
        *extra,
    ]


async def test_an_ingress_agent_serves_both_requests_and_closes_the_proxy_on_exit(
    tmp_path: Path,
) -> None:
    agent = Agent(parse_args(agent_args(tmp_path, "--ingress", "--node-ip", "10.1.2.3")))
    assert agent.ingress is not None
    proxies = Proxies()
    agent.ingress.make_proxy = proxies

    async def no_network(params: Any) -> list[str]:
        return []

    agent.network.configure = no_network  # type: ignore[method-assign]
    async with control_of(agent) as peer:
        assert await peer.request(INGRESS_STATS, {}) == {"routes": {}}
        assert await peer.request("network_config", {"nodeIP": "10.1.2.4"}) == {}
        assert await peer.request(INGRESS_SYNC, sync(4)) == {"generation": 4}
        assert proxies.made[0].synced == [(4, "10.1.2.4")]
        assert proxies.made[0].runtime_dir == tmp_path / "state" / "ingress"
    assert proxies.made[0].closed  # the agent stopped HAProxy as it exited


async def test_without_ingress_the_agent_has_no_ingress_methods(tmp_path: Path) -> None:
    args = parse_args(agent_args(tmp_path))
    assert not args.ingress
    agent = Agent(args)
    assert agent.ingress is None
    async with control_of(agent) as peer:
        with pytest.raises(RpcError, match="method not found"):
            await peer.request(INGRESS_SYNC, sync(1))


async def test_a_hollow_agent_keeps_the_route_table_and_has_no_stats() -> None:
    agent = HollowAgent("node-3")
    async with control_of(agent) as peer:
        await hello(peer, "node-3")
        assert await peer.request(INGRESS_SYNC, sync(5)) == {"generation": 5}
        assert agent.ingress_table is not None and agent.ingress_table.generation == 5
        assert await peer.request(INGRESS_STATS, {}) == {"routes": {}}
        err = await rpc_error(peer, INGRESS_SYNC, {"table": {"generation": -1}})
        assert err.code == INVALID_PARAMS and "generation" in err.message
        assert agent.ingress_table.generation == 5


# --- the access log ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bins_are_at_most_growth_above_the_time() -> None:
    for ms in [0, 0.5, 1, 1.2, 2, 7, 99, 100, 101, 1234, 59_999]:
        top = bin_top(bin_of(ms))
        assert max(ms, 0) <= top + 1e-9 and top <= max(ms * GROWTH, 1) + 1e-9, ms
    assert bin_top(bin_of(10**9)) == 3_600_000.0


def test_the_window_gives_the_99th_percentile_of_the_last_ten_seconds() -> None:
    clock = Clock()
    window = LatencyWindow(clock=clock)
    assert window.percentile(["r_a"]) is None
    for ms in range(1, 101):  # 1..100 ms: the 99th percentile is 99 ms
        window.add("r_a", ms)
    p99 = window.percentile(["r_a"])
    assert p99 is not None and 99 <= p99 <= 99 * GROWTH
    clock.now += 5
    for _ in range(100):
        window.add("r_b", 1000)
    both = window.percentile(["r_a", "r_b"])
    assert both is not None and 1000 <= both <= 1000 * GROWTH
    clock.now += 6  # r_a's second is 11 s old now, r_b's 6 s
    assert window.percentile(["r_a"]) is None
    assert window.percentile(["r_b"]) == both
    window.retain(["r_a"])
    assert window.percentile(["r_b"]) is None


def test_log_lines_are_backend_and_milliseconds() -> None:
    assert LOG_FORMAT == "%b %Ta"
    assert parse_line(b"r_ing_default_web_0_0 17\n") == ("r_ing_default_web_0_0", 17.0)
    assert parse_line(b"Proxy fe_80 started.") is None
    assert parse_line(b"r_x -1") is None
    assert parse_line(b"") is None


async def test_the_access_log_pipe_feeds_the_window() -> None:
    window = LatencyWindow()
    access = AccessLog(window)
    await access.open()
    try:
        # As HAProxy writes them, and one line cut across two reads.
        for chunk in (b"r_a 40\nnoi", b"se\nr_a 6", b"0\n"):
            os.write(access.write_fd, chunk)
            await asyncio.sleep(0.05)
        await eventually(
            lambda: (window.percentile(["r_a"], 1.0) or 0) >= 60, "both lines read", within=5
        )
        top = window.percentile(["r_a"])
        assert top is not None and 60 <= top <= 60 * GROWTH
    finally:
        await access.close()
    with pytest.raises(OSError):
        os.write(access.write_fd, b"r_a 1\n")  # both ends closed


def test_lines_are_counted_in_bulk_and_a_cut_line_waits_for_its_end() -> None:
    window = LatencyWindow(clock=Clock())
    rest = feed(window, b"r_a 5\nr_a 5\nr_b 200\nProxy fe_80 started.\nr_a 5\nr_b 2")
    assert rest == b"r_b 2"
    assert feed(window, rest + b"00\n" + b"r_a 5\n" * 95) == b""
    # r_a: 99 of 5 ms; r_b: 2 of 200 ms. The 99th of the 101 is in r_b's.
    p99 = window.percentile(["r_a", "r_b"])
    assert p99 is not None and 200 <= p99 <= 200 * GROWTH
    p99_a = window.percentile(["r_a"])
    assert p99_a is not None and 5 <= p99_a <= 5 * GROWTH
    assert feed(window, b"x" * 1000) == b""  # no newline in sight: not kept


def _children(pid: int) -> set[int]:
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


async def test_haproxy_logs_each_request_to_the_pipe_across_a_reload(tmp_path: Path) -> None:
    """The rendered configuration, with a real HAProxy (master-worker, as the
    proxy runs it) when one is installed: a request's line reaches the window,
    and so does one served by the worker a reload started (the pipe is inherited)."""
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed")
    window = LatencyWindow()
    access = AccessLog(window)
    await access.open()
    delay = [0.0]  # the backend's answer time: slow after the reload, so its line shows

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(delay[0])
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    app = await asyncio.start_server(serve, "127.0.0.1", 0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app_port = app.sockets[0].getsockname()[1]
    t = table(frontend(port, host("", route("r", "/", backend("ns/a:80", app_port)))))
    settings = Settings(runtime_dir=tmp_path, bind_address="127.0.0.1", log_fd=access.write_fd)
    plan = render(t, settings)
    (tmp_path / "haproxy.cfg").write_text(plan.config)
    proc = await asyncio.create_subprocess_exec(
        "haproxy",
        "-W",
        "-db",
        "-f",
        str(tmp_path / "haproxy.cfg"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        pass_fds=(access.write_fd,),
    )
    try:

        async def answered() -> bool:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError as e:  # not listening yet
                raise AssertionError(e) from e
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            await reader.read()
            writer.close()
            return True

        polling: Polling = {"within": 10, "every": 0.2, "retry_asserts": True}
        await eventually(answered, "HAProxy answering", **polling)
        await eventually(lambda: window.percentile(plan.backends), "the request's line", within=10)
        fast = window.percentile(plan.backends, 1.0)
        assert fast is not None and fast < 200, fast

        (first,) = await eventually(lambda: _children(proc.pid), "the first worker", **polling)
        proc.send_signal(signal.SIGUSR2)
        await eventually(
            lambda: first not in (now := _children(proc.pid)) and now,
            "the new worker alone",
            **polling,
        )
        delay[0] = 0.3
        await answered()
        await eventually(
            lambda: (window.percentile(plan.backends, 1.0) or 0) >= 300,
            "the new worker's line",
            within=10,
        )
    finally:
        proc.terminate()
        await proc.wait()
        app.close()
        await access.close()


def test_the_configuration_logs_to_the_pipe_only_when_given(tmp_path: Path) -> None:
    t = table(frontend(80, host("", route("r", "/", backend("ns/a:80", 8080)))))
    plain = render(t, Settings(runtime_dir=tmp_path)).config
    assert " log " not in plain and "log-format" not in plain
    logged = render(t, Settings(runtime_dir=tmp_path, log_fd=7))
    assert "log fd@7 format raw local0 info" in logged.config
    assert 'log global\n    log-format "%b %Ta"' in logged.config
