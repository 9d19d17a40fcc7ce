"""An agent's protocol streams on its stdin and stdout, as an SSH session
gives them: pipes, or regular files (asyncio's pipes refuse those)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys

from agent.protocol import Reader, Writer


class _FileReader:
    """stdin when it is a regular file (asyncio pipes refuse those)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    async def read(self, n: int = -1) -> bytes:
        return await asyncio.to_thread(os.read, self.fd, n if n > 0 else 1 << 16)


class _FileWriter:
    """stdout when it is a regular file."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _is_file(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


async def stdio(out_fd: int) -> tuple[Reader, Writer]:
    """The protocol's streams: stdin, and `out_fd` (stdout, or a copy of it)."""
    loop = asyncio.get_running_loop()
    reader: Reader
    if _is_file(0):
        reader = _FileReader(0)
    else:
        stream = asyncio.StreamReader(limit=2**31 - 1)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), sys.stdin.buffer)
        reader = stream
    if _is_file(out_fd):
        return reader, _FileWriter(out_fd)
    out = os.fdopen(out_fd, "wb", buffering=0)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, out)
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)
