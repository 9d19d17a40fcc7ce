"""Fixtures for the agent's e2e tests: a private containerd in a netns, and the
real agent (`python -m agent`) as a child process spoken to over its stdio."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.protocol import Peer, hello

from .node import Node, have_tools

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="package")
def node() -> Iterator[Node]:
    """One private containerd for tests/agent, gone when the package's tests end."""
    why = have_tools()
    if why:
        pytest.skip(why)
    n = Node()
    try:
        n.start()
        yield n
    finally:
        n.stop()


class AgentProc:
    """The agent in the node's netns, and our side of its protocol."""

    def __init__(self, node: Node, state_dir: Path, log: Path) -> None:
        self.node = node
        self.state_dir = state_dir
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.peer: Peer | None = None
        self.runner: asyncio.Task[None] | None = None
        self.status: dict[str, dict[str, Any]] = {}  # uid -> last pod_status params
        self.history: list[tuple[float, dict[str, Any]]] = []
        self.node_status: list[dict[str, Any]] = []
        self.streams: dict[str, list[dict[str, Any]]] = {}
        self.io: dict[str, list[dict[str, Any]]] = {}  # exec_io by session
        self.changed = asyncio.Event()

    async def start(self) -> None:
        err = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.proc = await asyncio.create_subprocess_exec(
            "nsenter",
            f"--net=/run/netns/{self.node.name}",
            sys.executable,
            "-m",
            "agent",
            "--containerd-socket",
            str(self.node.socket),
            "--node-name",
            "node-1",
            "--state-dir",
            str(self.state_dir),
            "--cgroup-parent",
            self.node.cgroup_parent,
            "--backoff-base",
            "1",
            "--backoff-max",
            "8",
            "--sync-interval",
            "0.3",
            "--heartbeat-interval",
            "1",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            cwd=REPO,
        )
        os.close(err)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.peer = Peer(self.proc.stdout, self.proc.stdin, name="test-control")
        self.peer.on("pod_status", self._on_pod_status)
        self.peer.on("node_status", self._on_node_status)
        self.peer.on("stream", self._on_stream)
        self.peer.on("exec_io", self._on_exec_io)
        self.runner = asyncio.create_task(self.peer.run())
        await hello(self.peer, "node-1")

    async def _on_pod_status(self, params: dict[str, Any]) -> None:
        self.status[params["uid"]] = params
        self.history.append((time.monotonic(), params))
        self.changed.set()

    async def _on_node_status(self, params: dict[str, Any]) -> None:
        self.node_status.append(params)
        self.changed.set()

    async def _on_stream(self, params: dict[str, Any]) -> None:
        self.streams.setdefault(params["stream"], []).append(params)
        self.changed.set()

    async def _on_exec_io(self, params: dict[str, Any]) -> None:
        self.io.setdefault(params["session"], []).append(params)
        self.changed.set()

    async def request(self, method: str, params: dict[str, Any], limit: float = 30) -> Any:
        assert self.peer is not None
        return await self.peer.request(method, params, timeout=limit)

    async def sync(self, *pods: dict[str, Any]) -> Any:
        return await self.request("sync_pods", {"pods": list(pods)})

    async def wait(self, pred: Callable[[], Any], limit: float = 30, what: str = "") -> Any:
        """Waits until pred() is truthy; returns its value."""
        deadline = time.monotonic() + limit
        while True:
            value = pred()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out waiting for {what or pred}; last statuses: {self.status}\n"
                    f"agent log: {self.log.read_text()[-3000:]}"
                )
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 0.5)):
                    await self.changed.wait()

    async def close(self) -> None:
        """EOF on stdin: the agent exits and leaves containers running."""
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(15):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await self._stop_runner()

    async def kill(self) -> None:
        """SIGKILL, as when the SSH session dies hard."""
        if self.proc is not None and self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        await self._stop_runner()

    async def _stop_runner(self) -> None:
        if self.runner is not None:
            self.runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.runner
            self.runner = None


@pytest.fixture
async def agent(node: Node, tmp_path: Path) -> AsyncIterator[AgentProc]:
    """A running agent; on teardown every pod it ran is deleted and confirmed."""
    state = tmp_path / "agent-state"
    a = AgentProc(node, state, tmp_path / "agent.log")
    await a.start()
    try:
        yield a
    finally:
        await cleanup_pods(a)


async def cleanup_pods(a: AgentProc) -> None:
    with contextlib.suppress(Exception):
        if a.proc is None or a.proc.returncode is not None:
            await a.start()
        await a.sync()
        await a.wait(
            lambda: all(s.get("terminated") for s in a.status.values()),
            limit=60,
            what="every pod terminated",
        )
    await a.close()
    # Belt and braces: nothing of this test may outlive it.
    await a.node.remove_all_sandboxes()


def pod(
    name: str,
    containers: list[dict[str, Any]],
    *,
    uid: str | None = None,
    namespace: str = "default",
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or f"uid-{name}-{os.getpid()}-{time.monotonic_ns()}",
        },
        "spec": {"containers": containers, "terminationGracePeriodSeconds": 2, **spec},
    }
