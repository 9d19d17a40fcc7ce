"""A client that forces the interleaving two quick writes of one object can have."""

from __future__ import annotations

import asyncio
from typing import Any

from control.client import Client


class FirstWriteLate(Client):
    """A client whose first write to one object waits until that object has
    been read a second time: the interleaving two quick `+` presses can have,
    where both read the same count before either writes."""

    def __init__(self, server: str, path: str) -> None:
        super().__init__(server)
        self.paths = (path, f"{path}/scale")
        self.reads = self.writes = 0
        self.second_read = asyncio.Event()
        self.held = False  # the first write did wait for the second read

    async def request_raw(self, method: str, path: str, **kw: Any) -> tuple[int, bytes]:
        ours = path in self.paths
        if ours and method in ("PUT", "PATCH"):
            self.writes += 1
            if self.writes == 1:
                await asyncio.wait_for(self.second_read.wait(), 10)
                self.held = True
        answer = await super().request_raw(method, path, **kw)
        if ours and method == "GET":
            self.reads += 1
            if self.reads == 2:
                self.second_read.set()
        return answer
