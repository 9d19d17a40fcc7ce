"""The API server's listeners: every connection bounded in time, every
protocol error answered as a Status.

- A TLS connection must finish its handshake within `handshake_timeout`.
  One that sends plain HTTP instead gets Go's answer, "Client sent an HTTP
  request to an HTTPS server." (400), as a Status, and is closed.
- Each request must have sent all its headers within `header_timeout` (of
  the connection's start, or of its first byte on a kept-alive connection),
  or the connection is closed: no slowloris.
- A keep-alive connection idle for `idle_timeout` is closed (aiohttp's
  keep-alive timer).
- What aiohttp answers by itself, before any handler runs (a request line or
  header too long, a malformed request), is a Status: 414, 431 or 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from control import errors
from control.api.responses import error_response
from control.config import ApiLimits
from control.errors import ApiError

log = logging.getLogger(__name__)

PLAIN_HTTP_ON_TLS = "Client sent an HTTP request to an HTTPS server."
_TLS_HANDSHAKE = 0x16  # the first byte of a TLS record carrying a handshake
_DISCARD_LIMIT = 64 * 1024  # what is read of a plain HTTP request before answering it
_LINGER = 1.0  # seconds to read what a refused client still sends, so it gets the answer


def protocol_error(status: int, exc: BaseException | None, message: str | None) -> ApiError:
    """aiohttp's own error (a request it could not parse) as a Status."""
    if isinstance(exc, LineTooLong):
        line = exc.args[0] if exc.args else b""
        if isinstance(line, bytes | bytearray) and line.startswith((b"/", b"http")):
            return ApiError(414, "RequestURITooLong", "the request URI is too long")
        return ApiError(431, "RequestHeaderFieldsTooLarge", "a request header is too long")
    text = message or (exc.message if isinstance(exc, BadHttpMessage) else "") or ""
    if isinstance(exc, BadHttpMessage) and "Too many headers" in text:
        return ApiError(431, "RequestHeaderFieldsTooLarge", "too many request headers")
    if status >= 500:
        return errors.internal_error()
    return ApiError(status, "BadRequest", f"bad request: {text.splitlines()[0] if text else ''}")


class _Handler(RequestHandler):
    """aiohttp's connection handler, with a deadline on each request's headers
    and its protocol errors as Status objects."""

    __slots__ = ("_header_timeout", "_header_timer")

    def __init__(self, manager: Any, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None:
            if self._messages or self._current_request is not None:
                self._disarm()  # a request's headers are all in, or one is being served
        elif data and not self._messages and self._current_request is None:
            self._arm()  # the first bytes of the next request on a kept-alive connection

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self._loop.call_later(self._header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        waiter = self._waiter
        if not self._messages and waiter is not None and not waiter.done():
            log.debug(
                "closing a connection that sent no whole request in %ss", self._header_timeout
            )
            self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the response has begun: no error can be sent")
        if status >= 500:
            log.error("error serving a request", exc_info=exc)
        else:
            log.debug("refused a malformed request: %s", exc or message)
        resp = error_response(protocol_error(status, exc, message))
        resp.force_close()
        return resp


def handler_factory(runner: web.AppRunner, limits: ApiLimits) -> Callable[[], _Handler]:
    """What a listener makes for each connection."""
    server = runner.server
    assert server is not None, "runner.setup() first"
    loop = asyncio.get_running_loop()

    def make() -> _Handler:
        return _Handler(
            server,
            loop=loop,
            header_timeout=limits.header_timeout,
            keepalive_timeout=limits.idle_timeout,
            access_log=None,
        )

    return make


class UnixSite(web.SockSite):
    """A listening unix socket whose connections have header and idle deadlines."""

    __slots__ = ("_limits",)

    def __init__(self, runner: web.AppRunner, sock: socket.socket, limits: ApiLimits) -> None:
        super().__init__(runner, sock)
        self._limits = limits

    async def start(self) -> None:
        await web.BaseSite.start(self)
        factory = handler_factory(self._runner, self._limits)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(factory, sock=self._sock, backlog=self._backlog)


class TlsSite(web.BaseSite):
    """A TLS listener that looks at each connection's first byte: a TLS
    handshake (with a deadline) goes on to aiohttp, plain HTTP is answered 400."""

    __slots__ = ("_accepting", "_host", "_limits", "_listeners", "_pending", "_port")

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        limits: ApiLimits,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._limits = limits
        self._listeners: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (the kernel's choice when asked for port 0)."""
        return int(self._listeners[0].getsockname()[1]) if self._listeners else self._port

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            self._host or None, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        factory = handler_factory(self._runner, self._limits)  # type: ignore[arg-type]
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(self._backlog)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            self._listeners.append(sock)
            self._accepting.append(asyncio.create_task(self._accept(sock, factory)))

    async def stop(self) -> None:
        for task in [*self._accepting, *self._pending]:
            task.cancel()
        for task in [*self._accepting, *self._pending]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._accepting.clear()
        for sock in self._listeners:
            sock.close()
        self._listeners.clear()
        await super().stop()

    async def _accept(self, listener: socket.socket, factory: Callable[[], _Handler]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as e:  # out of file descriptors, say: try again shortly
                log.warning("accepting a TLS connection failed: %s", e)
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            task = asyncio.create_task(self._open(conn, factory))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _open(self, conn: socket.socket, factory: Callable[[], _Handler]) -> None:
        """TLS on `conn`, or the plain HTTP answer; within the handshake deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._limits.handshake_timeout
        try:
            async with asyncio.timeout(self._limits.handshake_timeout):
                first = await _peek(conn)
            if first and first[0] != _TLS_HANDSHAKE:
                await _refuse_plain_http(conn)
        except (OSError, TimeoutError) as e:
            log.debug("dropped a connection before its handshake: %r", e)
            first = b""
        if not first or first[0] != _TLS_HANDSHAKE:
            conn.close()
            return
        try:
            # From here the loop owns the socket, and closes it on failure.
            await loop.connect_accepted_socket(
                factory,
                conn,
                ssl=self._ssl_context,
                ssl_handshake_timeout=max(0.1, deadline - loop.time()),
            )
        except Exception as e:
            log.debug("a TLS handshake failed: %r", e)


async def _readable(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def on_readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), on_readable)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


async def _peek(sock: socket.socket) -> bytes:
    """The connection's first byte, left in the socket; b"" when it closed."""
    while True:
        await _readable(sock)
        with contextlib.suppress(BlockingIOError):
            return sock.recv(1, socket.MSG_PEEK)


async def _refuse_plain_http(sock: socket.socket) -> None:
    """Go's answer to plain HTTP on a TLS port, as a Status."""
    with contextlib.suppress(BlockingIOError):
        sock.recv(_DISCARD_LIMIT)
    body = error_response(ApiError(400, "BadRequest", PLAIN_HTTP_ON_TLS)).body
    assert isinstance(body, bytes)
    head = (
        "HTTP/1.1 400 Bad Request\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(loop.sock_sendall(sock, head.encode() + body), _LINGER)
    sock.shutdown(socket.SHUT_WR)
    # Read what the client still sends until it closes: closing with unread
    # data would reset the connection and could lose the answer.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_LINGER):
            while True:
                await _readable(sock)
                with contextlib.suppress(BlockingIOError):
                    if not sock.recv(_DISCARD_LIMIT):
                        return
