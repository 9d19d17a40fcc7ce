"""Agents served in-process over a socket pair, and the control plane's Peer to them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from agent.protocol import Handler, Peer, Reader, Writer

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def socket_streams() -> tuple[Streams, Streams]:
    """Two connected stream pairs: what one end writes, the other reads."""
    s1, s2 = socket.socketpair()
    return await asyncio.open_connection(sock=s1), await asyncio.open_connection(sock=s2)


class Servable(Protocol):
    async def serve(self, reader: Reader, writer: Writer) -> None: ...


@asynccontextmanager
async def control_of(
    agent: Servable, handlers: dict[str, Handler] | None = None
) -> AsyncIterator[Peer]:
    """A control Peer (with `handlers` for the agent's notifications) to `agent`,
    which serves the other end; afterwards the agent must stop within 5 s."""
    (r1, w1), (r2, w2) = await socket_streams()
    serving = asyncio.create_task(agent.serve(r2, w2))
    control = Peer(r1, w1, name="control", handlers=handlers)
    reading = asyncio.create_task(control.run())
    try:
        yield control
    finally:
        control.close()
        await asyncio.wait_for(serving, 5)
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)


@asynccontextmanager
async def peer_to(handlers: dict[str, Handler], request_timeout: float = 10) -> AsyncIterator[Peer]:
    """A control Peer to an agent-end Peer that answers with `handlers`; both
    closed afterwards."""
    (r1, w1), (r2, w2) = await socket_streams()
    control = Peer(r1, w1, name="control", request_timeout=request_timeout)
    agent = Peer(r2, w2, name="agent", handlers=handlers)
    tasks = [asyncio.create_task(control.run()), asyncio.create_task(agent.run())]
    try:
        yield control
    finally:
        control.close()
        agent.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
