"""Kubernetes' own exec and attach: `GET`/`POST pods/{name}/exec?command=..&stdin=..&tty=..`
and `pods/{name}/attach?stdin=..&tty=..`, upgraded to a WebSocket that speaks
the channel protocol.

Subprotocols, as the kubelet serves them: `v5.channel.k8s.io` (v4, plus
channel 255 to close stdin), `v4.channel.k8s.io` (binary messages, the
first byte is the channel: 0 stdin, 1 stdout, 2 stderr, 3 the final Status,
4 resize as {"Width", "Height"}), `channel.k8s.io`, and their base64
variants (text messages, the channel as an ASCII digit, the data base64).
The command's end is a metav1.Status on channel 3: Success, or Failure with
reason NonZeroExitCode and an ExitCode cause (an attach ends with Success
when the container does). Then the server closes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import orjson
from aiohttp import WSMsgType, web

from agent.protocol import ExecExit
from agent.protocol.execio import (
    CHANNEL_ERROR,
    CHANNEL_RESIZE,
    CHANNEL_STDERR,
    CHANNEL_STDIN,
    CHANNEL_STDOUT,
    exec_status,
)
from control import errors
from control.api.responses import error_response
from control.errors import ApiError
from control.wire import (
    CLOSE_CHANNEL,
    MAX_MESSAGE_BYTES,
    MESSAGE_HEADER,
    PROTOCOLS,
    REASON_HEADER,
    V5,
)

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "True"}


class ExecStream(Protocol):
    """An interactive exec on a node (control.nodes.remoteexec.RemoteExec)."""

    exit: ExecExit | None
    can_close_stdin: bool

    def output(self) -> AsyncGenerator[tuple[int, bytes], None]: ...

    async def write(self, data: bytes) -> None: ...

    async def resize(self, cols: int, rows: int) -> None: ...

    async def close_stdin(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ExecOptions:
    command: list[str]
    container: str | None
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def exec_options(request: web.Request) -> ExecOptions:
    """The query parameters of Kubernetes' exec, checked as the kubelet does."""
    query = request.query
    command = list(query.getall("command", []))
    if not command:
        raise errors.bad_request("you must specify at least one command for the container")
    flags = {k: query.get(k) in _TRUE for k in ("stdin", "stdout", "stderr", "tty")}
    if not (flags["stdin"] or flags["stdout"] or flags["stderr"]):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    return ExecOptions(
        command=command,
        container=query.get("container") or None,
        stdin=flags["stdin"],
        stdout=flags["stdout"],
        stderr=flags["stderr"] and not flags["tty"],
        tty=flags["tty"],
    )


def attach_options(request: web.Request, container: dict[str, Any]) -> ExecOptions:
    """The query parameters of Kubernetes' attach. stdin and tty are what the
    container has: its main process reads no other stdin and has no other
    terminal (kubectl warns of either and turns it off itself)."""
    query = request.query
    flags = {k: query.get(k) in _TRUE for k in ("stdin", "stdout", "stderr", "tty")}
    if not (flags["stdin"] or flags["stdout"] or flags["stderr"]):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    tty = flags["tty"] and bool(container.get("tty"))
    return ExecOptions(
        command=[],
        container=str(container.get("name")),
        stdin=flags["stdin"] and bool(container.get("stdin")),
        stdout=flags["stdout"],
        stderr=flags["stderr"] and not tty,
        tty=tty,
    )


def refuse(e: ApiError) -> web.Response:
    """The answer to an upgrade that is refused: the Status, plus headers."""
    response = error_response(e)
    response.headers.update({REASON_HEADER: e.reason, MESSAGE_HEADER: quote(e.message)})
    return response


def _encode(protocol: str, channel: int, data: bytes) -> bytes | str:
    if "base64" in protocol:
        return str(channel) + base64.b64encode(data).decode()
    return bytes([channel]) + data


def _decode(protocol: str, msg_type: WSMsgType, payload: bytes | str) -> tuple[int, bytes] | None:
    if "base64" in protocol:
        text = payload if isinstance(payload, str) else payload.decode(errors="replace")
        if not text or not text[0].isdigit():
            return None
        try:
            return int(text[0]), base64.b64decode(text[1:], validate=True)
        except (binascii.Error, ValueError):
            return None
    raw = payload.encode() if isinstance(payload, str) else payload
    return (raw[0], raw[1:]) if raw else None


async def _send(ws: web.WebSocketResponse, protocol: str, channel: int, data: bytes) -> None:
    frame = _encode(protocol, channel, data)
    if isinstance(frame, str):
        await ws.send_str(frame)
    else:
        await ws.send_bytes(frame)


async def serve(
    request: web.Request, session: ExecStream, opts: ExecOptions, what: str
) -> web.WebSocketResponse:
    """Upgrade, then relay until the command exits (Status on channel 3) or
    the client goes away (the session is hung up). Always closes `session`.
    v5 is offered unless the command reads stdin that the runtime cannot
    close (kubectl speaks v5 alone: it then falls back to SPDY and fails)."""
    v5 = session.can_close_stdin or not opts.stdin
    protocols = PROTOCOLS if v5 else PROTOCOLS[1:]
    ws = web.WebSocketResponse(protocols=protocols, max_msg_size=MAX_MESSAGE_BYTES)
    tasks: list[asyncio.Task[Any]] = []
    try:
        await ws.prepare(request)
        protocol = ws.ws_protocol or "v4.channel.k8s.io"
        reader = asyncio.create_task(_read_input(ws, protocol, session, opts))
        writer = asyncio.create_task(_write_output(ws, protocol, session, opts))
        tasks += [reader, writer]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if writer.done():  # the command ended (else the client went away first)
            status = writer.result()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await _send(ws, protocol, CHANNEL_ERROR, orjson.dumps(status))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close()
    log.debug("exec in %s ended", what)
    return ws


async def _write_output(
    ws: web.WebSocketResponse, protocol: str, session: ExecStream, opts: ExecOptions
) -> dict[str, object]:
    """Forward output; the final Status."""
    try:
        async for fd, data in session.output():
            if (fd == CHANNEL_STDOUT and opts.stdout) or (fd == CHANNEL_STDERR and opts.stderr):
                await _send(ws, protocol, fd, data)
    except ConnectionError as e:
        return exec_status(-1, str(e))
    end = session.exit or ExecExit(exitCode=-1, error="the exec ended without an exit code")
    return exec_status(end["exitCode"], end.get("error", ""))


async def _read_input(
    ws: web.WebSocketResponse, protocol: str, session: ExecStream, opts: ExecOptions
) -> None:
    """Forward stdin and resizes until the client closes its side."""
    async for msg in ws:
        if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
            continue
        frame = _decode(protocol, msg.type, msg.data)
        if frame is None:
            continue
        channel, data = frame
        try:
            if channel == CHANNEL_STDIN and opts.stdin and data:
                await session.write(data)
            elif channel == CHANNEL_RESIZE and opts.tty:
                size = orjson.loads(data)
                await session.resize(int(size["Width"]), int(size["Height"]))
            elif channel == CLOSE_CHANNEL and protocol == V5 and data[:1] == bytes([CHANNEL_STDIN]):
                await session.close_stdin()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.debug("dropped a malformed resize message")
        except ConnectionError:
            pass  # the link is down: the output side reports it
