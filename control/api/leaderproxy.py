"""Requests only the leader can answer, passed on to it by the other API servers.

Of several control planes on one store, only the leader holds the node links
(control.leader), so pod logs, exec and attach, metrics, ingress traffic and
image imports must reach the agents through it. Another API server passes
such a request on to the leader's HTTPS endpoint, which the leader advertises
in the Lease, read from the store for each request, and streams the answer back: chunked bodies as they come, and
exec and attach WebSockets message by message. The caller's bearer token goes
with it (a unix-socket caller, trusted here, is sent with this control plane's
admin token): the control planes share their CA and tokens, so the leader
authorizes the request as this server did. A passed-on request carries
FORWARDED_HEADER and is never passed on again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote

import aiohttp
from aiohttp import WSMsgType, web

from control.api import execws
from control.api.metrics import METRICS_PREFIX
from control.api.registry import Registry
from control.errors import ApiError
from control.objects.coordination import lease_holder
from control.objects.kinds import LEASE
from control.wire import (
    FORWARDED_HEADER,
    IMAGE_IMPORT_PATH,
    INGRESS_STATS_PATH,
    LEADER_ENDPOINT_ANNOTATION,
    LEADER_LEASE_NAME,
    LEADER_LEASE_NAMESPACE,
    MAX_MESSAGE_BYTES,
    MESSAGE_HEADER,
    REASON_HEADER,
)

log = logging.getLogger(__name__)

# Sub-paths of a pod that reach its node's agent.
_POD_AGENT_SUBRESOURCES = ("log", "exec", "attach")
# Request headers passed on (others, such as Host and Connection, are the hop's own).
_REQUEST_HEADERS = ("Accept", "Content-Type", "Content-Length", "Content-Encoding")
# Answer headers passed back.
_ANSWER_HEADERS = ("Content-Type", "Cache-Control", REASON_HEADER, MESSAGE_HEADER, "Warning")
_CHUNK = 64 * 1024


class Leadership(Protocol):
    """Whether this control plane leads (control.leader.election.LeaderElector)."""

    @property
    def leading(self) -> bool: ...


def needs_leader(path: str) -> bool:
    """Whether the request is answered through the node links."""
    if path.startswith(METRICS_PREFIX + "/") or path in (INGRESS_STATS_PATH, IMAGE_IMPORT_PATH):
        return True
    parts = path.rsplit("/", 3)
    return len(parts) == 4 and parts[1] == "pods" and parts[3] in _POD_AGENT_SUBRESOURCES


@dataclass(eq=False)
class LeaderForwarder:
    """Passes requests on to the leader as `identity` (FORWARDED_HEADER), over
    TLS trusting `ssl_context`; `admin_token` stands for unix-socket callers."""

    registry: Registry
    leadership: Leadership
    identity: str
    ssl_context: ssl.SSLContext
    admin_token: str
    _session: aiohttp.ClientSession | None = field(default=None, init=False)

    def applies(self, path: str) -> bool:
        """Whether this request must be passed on to the leader."""
        return not self.leadership.leading and needs_leader(path)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _leader_url(self, request: web.Request) -> str:
        """The leader's endpoint, from the Lease as the store holds it now (an
        elector's own view lags a takeover by up to a retry period)."""
        if FORWARDED_HEADER in request.headers:
            raise ApiError(
                503,
                "ServiceUnavailable",
                "this control plane does not lead (any more): retry through another one",
            )
        try:
            lease = (await self.registry.get(LEASE, LEADER_LEASE_NAMESPACE, LEADER_LEASE_NAME)).obj
        except ApiError as e:
            if e.code != 404:
                raise
            lease = {}
        holder = lease_holder(lease)
        if not holder:
            raise ApiError(503, "ServiceUnavailable", "no control plane leads yet: retry shortly")
        annotations = (lease.get("metadata") or {}).get("annotations") or {}
        endpoint = str(annotations.get(LEADER_ENDPOINT_ANNOTATION) or "")
        if not endpoint:
            raise ApiError(
                503,
                "ServiceUnavailable",
                f"the leading control plane {holder} advertises no HTTPS endpoint",
            )
        return endpoint

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl_context),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                auto_decompress=False,
            )
        return self._session

    def _headers(self, request: web.Request) -> dict[str, str]:
        headers = {k: v for k in _REQUEST_HEADERS if (v := request.headers.get(k)) is not None}
        headers["Authorization"] = request.headers.get("Authorization") or (
            f"Bearer {self.admin_token}"
        )
        headers[FORWARDED_HEADER] = self.identity
        return headers

    async def forward(self, request: web.Request) -> web.StreamResponse:
        websocket = execws.is_websocket(request)
        try:
            url = await self._leader_url(request) + request.path_qs
            try:
                if websocket:
                    return await self._forward_websocket(request, url)
                return await self._forward_http(request, url)
            except aiohttp.ClientError as e:
                raise ApiError(
                    503, "ServiceUnavailable", f"the leading control plane is not reachable: {e}"
                ) from e
        except ApiError as e:
            if websocket:
                return execws.refuse(e)
            raise

    async def _forward_http(self, request: web.Request, url: str) -> web.StreamResponse:
        body: AsyncIterator[bytes] | None = None
        if request.body_exists:
            body = request.content.iter_chunked(_CHUNK)
        async with self._sess().request(
            request.method, url, headers=self._headers(request), data=body
        ) as answer:
            resp = web.StreamResponse(
                status=answer.status,
                headers={k: v for k in _ANSWER_HEADERS if (v := answer.headers.get(k)) is not None},
            )
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            async for chunk in answer.content.iter_any():
                await resp.write(chunk)
            with contextlib.suppress(ConnectionResetError):
                await resp.write_eof()
            return resp

    async def _forward_websocket(self, request: web.Request, url: str) -> web.StreamResponse:
        offered = [
            p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p
        ]
        try:
            upstream = await self._sess().ws_connect(
                url,
                method=request.method,
                headers=self._headers(request),
                protocols=offered,
                max_msg_size=0,
                autoping=True,
            )
        except aiohttp.WSServerHandshakeError as e:
            # The leader refused the upgrade: its Status travels in headers.
            headers: Mapping[str, str] = e.headers or {}
            raise ApiError(
                e.status,
                str(headers.get(REASON_HEADER) or "ServiceUnavailable"),
                unquote(str(headers.get(MESSAGE_HEADER) or e.message)),
            ) from None
        async with upstream:
            chosen = upstream.protocol
            ws = web.WebSocketResponse(
                protocols=(chosen,) if chosen else (), max_msg_size=MAX_MESSAGE_BYTES
            )
            await ws.prepare(request)
            pumps = [
                asyncio.create_task(_pump(ws, upstream)),
                asyncio.create_task(_pump(upstream, ws)),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.close()
            return ws


class _Socket(Protocol):
    def __aiter__(self) -> AsyncIterator[aiohttp.WSMessage]: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def send_str(self, data: str) -> None: ...


async def _pump(source: _Socket, sink: _Socket) -> None:
    """Data messages from one WebSocket to the other, until `source` closes."""
    async for msg in source:
        if msg.type is WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type is WSMsgType.TEXT:
            await sink.send_str(msg.data)
        elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return
