"""Interactive exec: a WebSocket to the runtime's streaming server (the URL that
CRI Exec returns), speaking Kubernetes' channel protocol.

Every message starts with its channel byte: 0 stdin, 1 stdout, 2 stderr,
3 error (a Status object with the exit code), 4 terminal resize. The session
offers v5.channel.k8s.io, which adds a way to close stdin (channel 255), and
falls back to v4.channel.k8s.io.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
from urllib.parse import urlsplit

from agent.protocol.execio import CHANNEL_PROTOCOL, CHANNEL_RESIZE

V5_PROTOCOL = "v5.channel.k8s.io"
CLOSE_CHANNEL = 255
_MAX_FRAME = 16 * 1024 * 1024


class StreamError(Exception):
    pass


class ExecSession:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: str = ""
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = protocol  # what the server chose
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
                    f"Sec-WebSocket-Protocol: {V5_PROTOCOL}, {CHANNEL_PROTOCOL}\r\nOrigin: http://{host}\r\n\r\n"
                ).encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status + " ":
            writer.close()
            raise StreamError(f"streaming server refused the exec: {status}")
        chosen = ""
        for line in head.decode(errors="replace").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == "sec-websocket-protocol":
                chosen = value.strip()
        return cls(reader, writer, chosen)

    async def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = _mask(payload, mask)
        async with self._lock:
            self.writer.write(head + mask + masked)
            await self.writer.drain()

    async def send(self, channel: int, data: bytes) -> None:
        await self._send_frame(0x2, bytes([channel]) + data)

    async def resize(self, cols: int, rows: int) -> None:
        await self.send(CHANNEL_RESIZE, json.dumps({"Width": cols, "Height": rows}).encode())

    @property
    def can_close_stdin(self) -> bool:
        return self.protocol == V5_PROTOCOL

    async def close_stdin(self) -> bool:
        """Tell the server stdin ended; False when the protocol has no way to."""
        if not self.can_close_stdin:
            return False
        await self.send(CLOSE_CHANNEL, bytes([0]))
        return True

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
                payload = _mask(payload, mask)
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


def _mask(data: bytes, mask: bytes) -> bytes:
    """WebSocket masking: XOR with the 4-byte key, repeated."""
    n = len(data)
    if not n:
        return data
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
