"""How a node link reaches its agent: a Transport opens a Channel, a pair of
byte streams to one running agent.

`InProcessTransport` runs an agent coroutine (a hollow agent) in this process
over in-memory pipes; `CommandTransport` starts an agent command and speaks
over its stdin and stdout. The SSH transport (issue 4) implements the same
`Transport` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.protocol import Reader, Writer
from control.errors import TransportError as TransportError  # defined there for the console

log = logging.getLogger(__name__)


@dataclass
class Channel:
    reader: Reader
    writer: Writer
    close: Callable[[], Awaitable[None]]
    description: str = ""


class Transport(Protocol):
    def describe(self) -> str:
        """Where it connects to, for logs and the console: `ssh root@10.0.0.2`."""
        ...

    async def open(self) -> Channel:
        """Connect and start the agent. Raises TransportError (or OSError)."""
        ...


# --- in-memory pipes -------------------------------------------------------------


class PipeWriter:
    """The writing end of an in-memory pipe: it feeds a StreamReader."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._closed = False

    def write(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionResetError("pipe closed")
        self._reader.feed_data(data)

    async def drain(self) -> None:
        if self._closed:
            raise ConnectionResetError("pipe closed")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._reader.feed_eof()

    def is_closing(self) -> bool:
        return self._closed


def pipe() -> tuple[asyncio.StreamReader, PipeWriter]:
    """A one-way in-memory byte pipe."""
    reader = asyncio.StreamReader(limit=2**31 - 1)
    return reader, PipeWriter(reader)


AgentServe = Callable[[Reader, Writer], Awaitable[None]]


class InProcessTransport:
    """Runs `serve(reader, writer)` (say `HollowAgent.serve`) for each connection.

    `cut()` drops the current connection and `refuse` makes new ones fail, to
    simulate a node that is unreachable.
    """

    def __init__(self, serve: AgentServe, name: str = "in-process") -> None:
        self._serve = serve
        self.name = name
        self.refuse = False
        self._current: Channel | None = None

    def describe(self) -> str:
        return f"in-process agent {self.name}"

    async def open(self) -> Channel:
        if self.refuse:
            raise TransportError(f"{self.name}: connection refused (simulated)")
        to_agent, to_agent_w = pipe()
        from_agent, from_agent_w = pipe()

        async def agent() -> None:
            try:
                await self._serve(to_agent, from_agent_w)
            except Exception:
                log.exception("%s: the agent failed", self.name)
            finally:
                from_agent_w.close()

        task = asyncio.create_task(agent(), name=f"agent {self.name}")

        async def close() -> None:
            to_agent_w.close()
            from_agent_w.close()
            if not task.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), 1.0)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._current is channel:
                self._current = None

        channel = Channel(from_agent, to_agent_w, close, self.describe())
        self._current = channel
        return channel

    async def cut(self) -> None:
        """Drop the current connection, as a network failure would."""
        if self._current is not None:
            await self._current.close()


class CommandTransport:
    """Starts an agent command (`python3 -m agent.hollow ...`) and speaks over
    its stdin and stdout; its stderr goes to this process's log."""

    def __init__(self, argv: Sequence[str], *, name: str = "", env: dict[str, str] | None = None) -> None:  # fmt: skip
        if not argv:
            raise ValueError("an agent command is required")
        self.argv = tuple(argv)
        self.name = name or self.argv[0]
        self.env = env

    def describe(self) -> str:
        return " ".join(self.argv)

    async def open(self) -> Channel:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                limit=2**31 - 1,
            )
        except OSError as e:
            raise TransportError(f"{self.name}: cannot start {self.argv[0]}: {e}") from e
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stderr = proc.stderr

        async def relay_stderr() -> None:
            while line := await stderr.readline():
                log.info("%s: %s", self.name, line.decode(errors="replace").rstrip())

        relay = asyncio.create_task(relay_stderr())
        stdin = proc.stdin

        async def close() -> None:
            stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 2.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 2.0)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(relay, 1.0)

        return Channel(proc.stdout, stdin, close, self.describe())
