"""One end of an agent protocol connection: JSON-RPC 2.0, one JSON message
per line, over a pair of byte streams (in production the stdin and stdout of
an agent started over SSH). Either side uses one `Peer` to send requests and
notifications, and to receive and dispatch them.

stdout belongs to the protocol alone: this module logs through `logging`,
which the agent points at stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

from .errors import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    ConnectionClosed,
    InvalidParams,
    RpcError,
)
from .messages import Json, Params

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover  (the agent may run without it)
    _orjson = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
_READ_CHUNK = 256 * 1024


class Reader(Protocol):
    """What a Peer reads from: asyncio's StreamReader, or asyncssh's SSHReader."""

    async def read(self, n: int = -1) -> bytes: ...


class Writer(Protocol):
    """What a Peer writes to: asyncio's StreamWriter, or asyncssh's SSHWriter."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


# A handler takes the params (an object, or {} when absent) and returns the
# result. Notification handlers run in order, one at a time, and should be
# quick; request handlers run concurrently.
Handler = Callable[[Params], Awaitable[Json]]


def encode(message: Mapping[str, Any]) -> bytes:
    """One message as one line."""
    if _orjson is not None:
        return _orjson.dumps(message) + b"\n"
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode(line: bytes) -> Json:
    if _orjson is not None:
        return _orjson.loads(line)
    return json.loads(line)


class Peer:
    """One end of a protocol connection.

    `run()` reads messages until the stream ends; `request()` and `notify()`
    send. A malformed or oversized message is answered with a JSON-RPC error
    and reading goes on. When the stream ends, waiting requests fail with
    ConnectionClosed.
    """

    def __init__(
        self,
        reader: Reader,
        writer: Writer,
        *,
        handlers: Mapping[str, Handler] | None = None,
        name: str = "peer",
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        request_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.name = name
        self.max_message_bytes = max_message_bytes
        self.request_timeout = request_timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Json]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()
        self._closed = False
        self.closed = asyncio.Event()

    def on(self, method: str, handler: Handler) -> None:
        self.handlers[method] = handler

    # -- sending -------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-request deadline is part of the API
    ) -> Json:
        """Send a request and wait for its result. Raises RpcError for an error
        answer, TimeoutError, or ConnectionClosed."""
        if self._closed:
            raise ConnectionClosed(f"{self.name}: connection closed")
        msg_id = next(self._ids)
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = dict(params)
        try:
            await self._send(message)
            async with asyncio.timeout(self.request_timeout if timeout is None else timeout):
                return await future
        finally:
            self._pending.pop(msg_id, None)

    async def notify(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        if self._closed:
            raise ConnectionClosed(f"{self.name}: connection closed")
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        await self._send(message)

    async def _send(self, message: Mapping[str, Any]) -> None:
        data = encode(message)
        if len(data) > self.max_message_bytes:
            raise ValueError(
                f"{self.name}: message of {len(data)} bytes exceeds the limit of {self.max_message_bytes}"
            )
        async with self._write_lock:
            try:
                self.writer.write(data)
                await self.writer.drain()
            except (ConnectionError, BrokenPipeError, RuntimeError) as e:
                self._shutdown()
                raise ConnectionClosed(f"{self.name}: cannot write: {e}") from e

    async def _respond(
        self, msg_id: Json, result: Json = None, error: RpcError | None = None
    ) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id}
        if error is not None:
            message["error"] = error.to_json()
        else:
            message["result"] = result
        try:
            try:
                await self._send(message)
            except ValueError as e:
                err = RpcError(INTERNAL_ERROR, str(e))
                await self._send({"jsonrpc": "2.0", "id": msg_id, "error": err.to_json()})
        except ConnectionClosed:
            log.debug("%s: connection closed before answering %r", self.name, msg_id)

    # -- receiving -----------------------------------------------------------

    async def run_beside(self, side: Coroutine[Any, Any, None]) -> None:
        """`run`, with `side` (a heartbeat loop, say) running until the stream ends."""
        task = asyncio.create_task(side)
        try:
            await self.run()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Read and dispatch messages until the other side closes the stream."""
        buf = bytearray()
        discarding = False  # inside an oversized line, waiting for its end
        try:
            while True:
                chunk = await self.reader.read(_READ_CHUNK)
                if not chunk:
                    break
                start = 0
                while True:
                    end = chunk.find(b"\n", start)
                    if end < 0:
                        if not discarding:
                            buf += chunk[start:]
                            if len(buf) > self.max_message_bytes:
                                buf.clear()
                                discarding = True
                        break
                    if discarding:
                        discarding = False
                        await self._too_large()
                    else:
                        buf += chunk[start:end]
                        if len(buf) > self.max_message_bytes:
                            await self._too_large()
                        elif buf.strip():
                            await self._dispatch(bytes(buf))
                        buf.clear()
                    start = end + 1
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.debug("%s: read failed: %s", self.name, e)
        finally:
            self._shutdown()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _too_large(self) -> None:
        log.warning("%s: dropped a message over %d bytes", self.name, self.max_message_bytes)
        err = RpcError(
            INVALID_REQUEST, f"message exceeds the limit of {self.max_message_bytes} bytes"
        )
        await self._respond(None, error=err)

    async def _dispatch(self, line: bytes) -> None:
        try:
            msg = decode(line)
        except ValueError as e:
            log.warning("%s: unparseable message: %s", self.name, e)
            await self._respond(None, error=RpcError(PARSE_ERROR, f"parse error: {e}"))
            return
        if not isinstance(msg, dict):
            # Batches are not part of this protocol.
            await self._respond(
                None, error=RpcError(INVALID_REQUEST, "invalid request: expected an object")
            )
            return
        msg_id = msg.get("id")
        valid_id = msg_id is None or (
            isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool)
        )
        if msg.get("jsonrpc") != "2.0" or not valid_id:
            await self._respond(
                msg_id if valid_id else None,
                error=RpcError(
                    INVALID_REQUEST,
                    'invalid request: want "jsonrpc": "2.0" and an integer or string id',
                ),
            )
            return
        method = msg.get("method")
        if method is None and "id" in msg and ("result" in msg or "error" in msg):
            self._on_response(msg)
            return
        params = msg.get("params", {})
        if not isinstance(method, str) or not isinstance(params, dict):
            if "id" in msg:
                why = (
                    "method must be a string"
                    if not isinstance(method, str)
                    else "params must be an object"
                )
                await self._respond(
                    msg_id, error=RpcError(INVALID_REQUEST, f"invalid request: {why}")
                )
            else:
                log.warning("%s: dropped an invalid notification", self.name)
            return
        if "id" not in msg:
            await self._on_notification(method, params)
            return
        task = asyncio.create_task(self._on_request(msg_id, method, params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_response(self, msg: dict[str, Any]) -> None:
        future = self._pending.get(msg["id"]) if isinstance(msg["id"], int) else None
        if future is None or future.done():
            log.debug("%s: answer to unknown request %r", self.name, msg["id"])
            return
        error = msg.get("error")
        if error is not None:
            if isinstance(error, dict):
                code = error.get("code")
                exc = RpcError(
                    code if isinstance(code, int) else INTERNAL_ERROR,
                    str(error.get("message") or "error"),
                    error.get("data"),
                )
            else:
                exc = RpcError(INTERNAL_ERROR, f"malformed error: {error!r}")
            future.set_exception(exc)
        else:
            future.set_result(msg.get("result"))

    async def _on_notification(self, method: str, params: Params) -> None:
        handler = self.handlers.get(method)
        if handler is None:
            log.debug("%s: no handler for notification %s", self.name, method)
            return
        try:
            await handler(params)
        except Exception:
            log.exception("%s: notification %s failed", self.name, method)

    async def _on_request(self, msg_id: Json, method: str, params: Params) -> None:
        handler = self.handlers.get(method)
        if handler is None:
            await self._respond(
                msg_id, error=RpcError(METHOD_NOT_FOUND, f"method not found: {method}")
            )
            return
        try:
            result = await handler(params)
        except RpcError as e:
            await self._respond(msg_id, error=e)
        except (KeyError, TypeError, ValueError) as e:
            await self._respond(msg_id, error=InvalidParams(f"{type(e).__name__}: {e}"))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("%s: request %s failed", self.name, method)
            await self._respond(msg_id, error=RpcError(INTERNAL_ERROR, f"internal error: {e}"))
        else:
            await self._respond(msg_id, result)

    # -- closing -------------------------------------------------------------

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionClosed(f"{self.name}: connection closed"))
        self.closed.set()

    def close(self) -> None:
        """Fail waiting requests and close the writing side."""
        self._shutdown()
        with contextlib.suppress(Exception):
            self.writer.close()
