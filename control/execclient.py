"""The client side of Kubernetes' exec WebSocket (see control.api.execws):
what `pilothouse exec -i/-t` and the console's shell key speak."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import unquote

import aiohttp
import orjson

from agent.protocol.execio import (
    CHANNEL_ERROR,
    CHANNEL_PROTOCOL,
    CHANNEL_RESIZE,
    CHANNEL_STDERR,
    CHANNEL_STDIN,
    CHANNEL_STDOUT,
    EXEC_CHUNK_BYTES,
    exec_exit_code,
)
from control.errors import ApiError
from control.wire import CLOSE_CHANNEL, MAX_MESSAGE_BYTES, MESSAGE_HEADER, REASON_HEADER, V5

# Ours first: v5 can say that stdin ended.
PROTOCOLS = (V5, CHANNEL_PROTOCOL)


class ExecConnection:
    """One exec over a WebSocket. Read `output()` to its end; then `status`
    holds the final Status and `exit_code` the command's exit code."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.protocol = ws.protocol or CHANNEL_PROTOCOL
        self.status: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int | None:
        return exec_exit_code(self.status) if self.status is not None else None

    @property
    def error(self) -> str:
        """Why the exec failed, when it did not end with an exit code."""
        if self.status is None:
            return "the connection closed before the command ended"
        if self.exit_code is None:
            return str(self.status.get("message") or "the exec failed")
        return ""

    async def output(self) -> AsyncGenerator[tuple[int, bytes], None]:
        """(1 or 2, data) until the server ends the exec."""
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel in (CHANNEL_STDOUT, CHANNEL_STDERR) and data:
                yield channel, data
            elif channel == CHANNEL_ERROR and data:
                try:
                    status = orjson.loads(data)
                except orjson.JSONDecodeError:
                    status = {"status": "Failure", "message": data.decode(errors="replace")}
                self.status = status if isinstance(status, dict) else None

    async def write(self, data: bytes) -> None:
        for i in range(0, len(data), EXEC_CHUNK_BYTES):
            await self.ws.send_bytes(bytes([CHANNEL_STDIN]) + data[i : i + EXEC_CHUNK_BYTES])

    async def resize(self, cols: int, rows: int) -> None:
        size = orjson.dumps({"Width": cols, "Height": rows})
        await self.ws.send_bytes(bytes([CHANNEL_RESIZE]) + size)

    async def close_stdin(self) -> bool:
        """Say stdin ended; False when the server's protocol cannot."""
        if self.protocol != V5:
            return False
        await self.ws.send_bytes(bytes([CLOSE_CHANNEL, CHANNEL_STDIN]))
        return True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


@contextlib.asynccontextmanager
async def connect(
    session: aiohttp.ClientSession, url: str, params: list[tuple[str, str]]
) -> AsyncGenerator[ExecConnection, None]:
    """Open an exec WebSocket; a refusal raises ApiError with the server's reason."""
    try:
        ws = await session.ws_connect(
            url,
            params=params,
            protocols=PROTOCOLS,
            max_msg_size=MAX_MESSAGE_BYTES,
            autoping=True,
        )
    except aiohttp.WSServerHandshakeError as e:
        reason = e.headers.get(REASON_HEADER) if e.headers else None
        message = e.headers.get(MESSAGE_HEADER) if e.headers else None
        raise ApiError(
            e.status,
            reason or "Unknown",
            unquote(message) if message else f"HTTP {e.status}: {e.message}",
        ) from None
    conn = ExecConnection(ws)
    try:
        yield conn
    finally:
        await conn.close()
