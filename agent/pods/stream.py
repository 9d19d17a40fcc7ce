"""Interactive exec: a WebSocket to the runtime's streaming server (the URL that
CRI Exec returns), speaking Kubernetes' channel protocol v4.channel.k8s.io.

Every message starts with its channel byte: 0 stdin, 1 stdout, 2 stderr,
3 error (a Status object with the exit code), 4 terminal resize.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
from urllib.parse import urlsplit

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
PROTOCOL = "v4.channel.k8s.io"
_MAX_FRAME = 16 * 1024 * 1024


class StreamError(Exception):
    pass


class ExecSession:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, url: str, limit: float = 10.0) -> ExecSession:
        u = urlsplit(url)
        if u.scheme not in ("http", "ws"):
            raise StreamError(f"unsupported streaming URL {url}")
        host, port = u.hostname or "127.0.0.1", u.port or 80
        async with asyncio.timeout(limit):
            reader, writer = await asyncio.open_connection(host, port)
            key = base64.b64encode(os.urandom(16)).decode()
            path = u.path + (f"?{u.query}" if u.query else "")
            writer.write(
                (
                    f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                    f"Sec-WebSocket-Protocol: {PROTOCOL}\r\nOrigin: http://{host}\r\n\r\n"
                ).encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status + " ":
            writer.close()
            raise StreamError(f"streaming server refused the exec: {status}")
        return cls(reader, writer)

    async def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        async with self._lock:
            self.writer.write(head + mask + masked)
            await self.writer.drain()

    async def send(self, channel: int, data: bytes) -> None:
        await self._send_frame(0x2, bytes([channel]) + data)

    async def resize(self, cols: int, rows: int) -> None:
        await self.send(RESIZE, json.dumps({"Width": cols, "Height": rows}).encode())

    async def recv(self) -> tuple[int, bytes] | None:
        """The next (channel, data) message, or None when the socket closes."""
        message = b""
        while True:
            try:
                b1, b2 = await self.reader.readexactly(2)
                n = b2 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
                if n > _MAX_FRAME:
                    raise StreamError(f"frame of {n} bytes")
                mask = await self.reader.readexactly(4) if b2 & 0x80 else b""
                payload = await self.reader.readexactly(n)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b1 & 0x0F
            if opcode == 0x8:
                return None
            if opcode == 0x9:
                await self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            message += payload
            if not b1 & 0x80:
                continue  # fragmented: wait for the rest
            if not message:
                continue
            return message[0], message[1:]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._send_frame(0x8, struct.pack("!H", 1000))
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def exit_code(status_json: bytes) -> int | None:
    """The exit code in the error channel's Status (None if it is no exit status)."""
    try:
        status = json.loads(status_json)
    except ValueError:
        return None
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            with contextlib.suppress(ValueError, TypeError):
                return int(cause.get("message"))
    return None
