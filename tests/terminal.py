"""A pseudo-terminal for tests that run interactive commands."""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios


class Terminal:
    """The controlling side of a pseudo-terminal, read without blocking the loop."""

    def __init__(self, cols: int = 80, rows: int = 24) -> None:
        self.master, self.slave = os.openpty()
        self.resize(cols, rows)
        self.output = b""
        self._more = asyncio.Event()
        asyncio.get_running_loop().add_reader(self.master, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: no process holds the slave side any more
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
        self.output += data
        self._more.set()

    def resize(self, cols: int, rows: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    async def until(self, text: bytes, limit: float = 20) -> None:
        async with asyncio.timeout(limit):
            while text not in self.output:
                self._more.clear()
                await self._more.wait()

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.master)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
