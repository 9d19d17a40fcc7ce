"""The control plane's side of one interactive exec or attach session on a node agent.

The node link opens it with an `exec` or `attach` request that names the session, then
relays `exec_io` notifications: stdin, resizes and acknowledgements down,
output and the exit code up (see agent.protocol.ExecIO). Output is
acknowledged as the consumer takes it, so the agent never has more than its
window in flight and a slow client cannot fill the control plane's memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

from agent.protocol import ConnectionClosed, ExecExit, Params, Peer
from agent.protocol.execio import EXEC_CHUNK_BYTES, EXEC_WINDOW_BYTES

# Acknowledge output once this much is consumed, or when no more is queued.
_ACK_BYTES = EXEC_WINDOW_BYTES // 4


class RemoteExec:
    """One session. Read `output()` to its end, then `exit` holds the result;
    `close()` always (it hangs up when the command still runs)."""

    def __init__(self, node: str, peer: Peer, sid: str, forget: Callable[[str], None]) -> None:
        self.node = node
        self.peer = peer
        self.id = sid
        self.exit: ExecExit | None = None
        # Whether `close_stdin` reaches the command (a tty always can: ^D).
        self.can_close_stdin = True
        self._forget = forget
        self._queue: asyncio.Queue[Params | None] = asyncio.Queue()
        self._closed = False

    # -- from the link -------------------------------------------------------

    def deliver(self, params: Params) -> None:
        self._queue.put_nowait(params)

    def lost(self) -> None:
        """The link dropped: the session is over."""
        self._queue.put_nowait(None)

    # -- for the consumer ----------------------------------------------------

    async def output(self) -> AsyncGenerator[tuple[int, bytes], None]:
        """(fd, data) as the command writes it, until it exits (then `exit`
        is set). Raises ConnectionClosed when the link drops first."""
        consumed = 0
        while True:
            item = await self._queue.get()
            if item is None:
                raise ConnectionClosed(f"node {self.node}: the link dropped during the exec")
            end = item.get("exit")
            if isinstance(end, dict):
                code = end.get("exitCode")
                self.exit = ExecExit(exitCode=code if isinstance(code, int) else -1)
                if end.get("error"):
                    self.exit["error"] = str(end["error"])
                return
            fd, data = item.get("fd"), item.get("data")
            if fd not in (1, 2) or not isinstance(data, str):
                continue
            try:
                chunk = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                continue
            yield int(fd), chunk
            consumed += len(chunk)
            if consumed >= _ACK_BYTES or self._queue.empty():
                await self._send({"ack": consumed})
                consumed = 0

    async def write(self, data: bytes) -> None:
        """Send stdin, in chunks the protocol allows."""
        for i in range(0, len(data), EXEC_CHUNK_BYTES):
            chunk = data[i : i + EXEC_CHUNK_BYTES]
            await self._send({"data": base64.b64encode(chunk).decode()})

    async def resize(self, cols: int, rows: int) -> None:
        if cols > 0 and rows > 0:
            await self._send({"resize": {"cols": cols, "rows": rows}})

    async def close_stdin(self) -> None:
        await self._send({"eof": True})

    async def close(self) -> None:
        """Hang up (unless the command already exited) and forget the session."""
        if self._closed:
            return
        self._closed = True
        self._forget(self.id)
        if self.exit is None:
            with contextlib.suppress(ConnectionError):
                await self._send({"close": True})

    async def _send(self, params: dict[str, Any]) -> None:
        await self.peer.notify("exec_io", {"session": self.id, **params})
