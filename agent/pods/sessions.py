"""Interactive exec sessions on the agent's side of the protocol.

A session relays between the control plane's `exec_io` notifications and a
backend that runs the command: a WebSocket to containerd's streaming server
on real nodes (agent.pods.stream.ExecSession), a fake shell on hollow ones.
Output goes out in chunks of at most EXEC_CHUNK_BYTES, and at most
EXEC_WINDOW_BYTES of it unacknowledged; the last message carries the exit
code. A session ends when the command does, when the control plane hangs up,
or when the connection goes away (`close_all`): its backend is closed, which
closes the command's stdin.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.protocol import ExecExit, InvalidParams, Params
from agent.protocol.execio import (
    CHANNEL_ERROR,
    CHANNEL_STDERR,
    CHANNEL_STDIN,
    CHANNEL_STDOUT,
    EXEC_CHUNK_BYTES,
    EXEC_WINDOW_BYTES,
    exec_exit_code,
)

log = logging.getLogger(__name__)

Send = Callable[[str, dict[str, Any]], Awaitable[None]]  # (notification method, params)
EOT = b"\x04"  # a terminal's end-of-file character


class Backend(Protocol):
    """What runs the command: Kubernetes' channel protocol, as messages."""

    async def send(self, channel: int, data: bytes) -> None: ...

    async def resize(self, cols: int, rows: int) -> None: ...

    async def close_stdin(self) -> bool: ...

    async def recv(self) -> tuple[int, bytes] | None: ...

    async def close(self) -> None: ...


@dataclass
class _Session:
    id: str
    backend: Backend
    tty: bool
    attach: bool = False  # the end of an attach's stdin detaches it, no more
    unacked: int = 0
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Sessions:
    """The interactive exec sessions of one agent."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self._sessions: dict[str, _Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def check_new(self, sid: object) -> str:
        if not isinstance(sid, str) or not sid:
            raise InvalidParams("session: a non-empty string is required")
        if sid in self._sessions:
            raise InvalidParams(f"session {sid} already exists")
        return sid

    def open(self, sid: str, backend: Backend, *, tty: bool, attach: bool = False) -> None:
        """Start relaying a backend's output as session `sid`."""
        session = _Session(self.check_new(sid), backend, tty, attach)
        self._sessions[sid] = session
        session.task = asyncio.create_task(self._pump(session), name=f"exec {sid}")

    async def _pump(self, s: _Session) -> None:
        code: int | None = None
        error = ""
        try:
            while (msg := await s.backend.recv()) is not None:
                channel, data = msg
                if channel in (CHANNEL_STDOUT, CHANNEL_STDERR):
                    for i in range(0, len(data), EXEC_CHUNK_BYTES):
                        await self._output(s, channel, data[i : i + EXEC_CHUNK_BYTES])
                elif channel == CHANNEL_ERROR and data:
                    code = exec_exit_code(data)
                    if code is None:
                        error = data.decode(errors="replace")
        except ConnectionError:
            return  # the control plane is gone: nobody to tell
        except Exception as e:
            log.exception("exec session %s failed", s.id)
            error = str(e) or type(e).__name__
        finally:
            self._sessions.pop(s.id, None)
            await s.backend.close()
        end = ExecExit(exitCode=-1 if code is None else code)
        if code is None:
            end["error"] = error or "the exec stream ended without an exit status"
        with contextlib.suppress(ConnectionError):
            await self.send("exec_io", {"session": s.id, "exit": end})

    async def _output(self, s: _Session, channel: int, data: bytes) -> None:
        while s.unacked >= EXEC_WINDOW_BYTES:
            s.acked.clear()
            await s.acked.wait()
        s.unacked += len(data)
        params = {"session": s.id, "fd": channel, "data": base64.b64encode(data).decode()}
        await self.send("exec_io", params)

    async def on_io(self, params: Params) -> None:
        """An `exec_io` notification from the control plane."""
        s = self._sessions.get(str(params.get("session")))
        if s is None:
            return
        try:
            ack = params.get("ack")
            if isinstance(ack, int) and ack > 0:
                s.unacked = max(0, s.unacked - ack)
                s.acked.set()
            size = params.get("resize")
            if isinstance(size, dict) and size.get("cols") and size.get("rows"):
                await s.backend.resize(int(size["cols"]), int(size["rows"]))
            data = params.get("data")
            if isinstance(data, str) and data:
                await s.backend.send(CHANNEL_STDIN, base64.b64decode(data, validate=True))
            if params.get("eof") and not await s.backend.close_stdin() and not s.attach:
                if s.tty:
                    await s.backend.send(CHANNEL_STDIN, EOT)
                else:
                    log.info("exec session %s: the runtime cannot close stdin alone", s.id)
            if params.get("close"):
                await s.backend.close()
        except (binascii.Error, ValueError, ConnectionError, OSError) as e:
            log.warning("exec session %s: input dropped: %s", s.id, e)

    async def close_all(self) -> None:
        """Hang up every session (the connection is gone)."""
        sessions = list(self._sessions.values())
        for s in sessions:
            if s.task is not None:
                s.task.cancel()
        await asyncio.gather(*(s.task for s in sessions if s.task), return_exceptions=True)
        for s in sessions:
            await s.backend.close()
