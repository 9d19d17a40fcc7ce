"""A link to one agent that reconnects: the supervision both node links and
service proxy links run.

`ReconnectingLink.run()` calls the subclass's `_session()` (connect, say hello,
serve until the connection drops) again and again, with capped exponential
backoff between attempts, and keeps the state the console and tests read.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from dataclasses import dataclass

from agent.protocol import Peer, ProtocolVersionError, RpcError
from control.errors import ApiError
from control.nodes.transport import Channel

log = logging.getLogger(__name__)


class LinkState(enum.Enum):
    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    BACKOFF = "Backoff"
    STOPPED = "Stopped"


@dataclass(frozen=True)
class LinkTiming:
    connect_timeout: float = 10.0
    request_timeout: float = 30.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    status_interval: float = 10.0  # at most one unchanged heartbeat write per interval
    coalesce: float = 0.005  # seconds to gather a burst of pod changes into one sync


class ReconnectingLink:
    """Subclasses implement `_session()`, which raises or returns when the
    connection ends, and call `_up()` once it is up."""

    def __init__(self, name: str, what: str, timing: LinkTiming | None = None) -> None:
        self.name = name
        self.what = what  # "node", "service proxy": for logs
        self.timing = timing or LinkTiming()
        self.state = LinkState.CONNECTING
        self.last_error = ""
        self.connected = asyncio.Event()
        self.sessions = 0  # successful hellos, for tests and the console

    async def _session(self) -> None:
        raise NotImplementedError

    def _up(self, channel: Channel) -> None:
        """The session said hello: count it and wake whoever waits for the link."""
        self.sessions += 1
        self.state = LinkState.CONNECTED
        self.last_error = ""
        self.connected.set()
        log.info("%s %s: connected (%s)", self.what, self.name, channel.description)

    async def run(self) -> None:
        """Connect, serve, and reconnect with capped exponential backoff, forever."""
        delay = self.timing.backoff_initial
        try:
            while True:
                self.state = LinkState.CONNECTING
                sessions = self.sessions
                try:
                    await self._session()
                    self.last_error = "the agent closed the connection"
                except asyncio.CancelledError:
                    raise
                except ProtocolVersionError as e:
                    self.last_error = str(e)
                    log.error("%s %s: %s", self.what, self.name, e)
                except (ConnectionError, OSError, TimeoutError, RpcError, ApiError) as e:
                    self.last_error = str(e) or type(e).__name__
                    log.warning("%s %s: link down: %s", self.what, self.name, self.last_error)
                except Exception as e:
                    self.last_error = f"internal error: {e}"
                    log.exception("%s %s: link failed", self.what, self.name)
                self.connected.clear()
                if self.sessions != sessions:
                    delay = self.timing.backoff_initial  # it worked for a while: start over
                self.state = LinkState.BACKOFF
                wait = delay * random.uniform(0.8, 1.0)
                log.debug("%s %s: reconnecting in %.2fs", self.what, self.name, wait)
                await asyncio.sleep(wait)
                delay = min(self.timing.backoff_max, delay * 2)
        finally:
            self.state = LinkState.STOPPED
            self.connected.clear()


async def serve_until_one_ends(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for the first of a session's tasks to end; raise what ended it, if anything did."""
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        task.result()


async def end_session(peer: Peer, channel: Channel, tasks: list[asyncio.Task[None]]) -> None:
    """Stop a session's tasks, then close its peer and its channel."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    peer.close()
    with contextlib.suppress(Exception):
        await channel.close()
