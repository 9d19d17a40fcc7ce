"""The HTTP face of the API server: Kubernetes REST paths over the registry.

One aiohttp handler serves every request: it authorizes (control.api.auth),
answers discovery, metrics (control.api.metrics), ingress traffic
(control.api.ingressstats) and image import, and hands
resource paths to the dispatch table (control.api.routing), whose handlers
are the resource verbs (control.api.resources, control.api.watch) and the
pod proxy (control.api.podproxy). Errors are answered as Status objects.
Each user's requests are capped (control.api.limits); the listeners bound
each connection in time (control.api.listeners).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from control import errors
from control.api import aggregated, discovery, openapi, selfreview
from control.api.agents import NodeAgents
from control.api.auth import ROLE, TRUSTED_ROLE, authorize, bearer_token
from control.api.health import Health
from control.api.images import import_images
from control.api.ingressstats import IngressStatsApi
from control.api.leaderproxy import LeaderForwarder
from control.api.limits import ANONYMOUS, LIMITS, UNIX, Holder, RequestLimits
from control.api.listeners import TlsSite, UnixSite
from control.api.metrics import METRICS_PREFIX, MetricsApi
from control.api.podproxy import PodProxy
from control.api.registry import Registry
from control.api.resources import ResourceHandlers
from control.api.responses import error_response, json_response, raw_response
from control.api.routing import COLLECTION, CONNECT, Router, parse_path
from control.config import ApiLimits
from control.errors import ApiError
from control.wire import IMAGE_IMPORT_PATH, INGRESS_STATS_PATH

log = logging.getLogger(__name__)

# The largest request body, as Kubernetes' (3 MiB); larger ones are answered 413.
MAX_REQUEST_BYTES = 3 * 1024 * 1024


class ApiServer:
    """The aiohttp application and its listeners (unix socket, TLS TCP)."""

    def __init__(
        self,
        registry: Registry,
        *,
        role_of_token: Callable[[str], str | None] | None = None,
        user_of_token: Callable[[str], str | None] | None = None,
        nodes: NodeAgents | None = None,
        leader: LeaderForwarder | None = None,
        limits: ApiLimits | None = None,
    ) -> None:
        """`nodes` reaches the node agents, for pod logs, exec, metrics and
        ingress traffic; without it those answer 503. `user_of_token` names a
        token's user (for `kubectl auth whoami`, and the per-user caps). With
        `leader`, one of several control planes passes those requests on to the
        leader while it does not lead itself."""
        self.registry = registry
        self.role_of_token = role_of_token
        self.user_of_token = user_of_token
        self.nodes = nodes
        self.leader = leader
        self.limits = RequestLimits(limits or ApiLimits())
        self.metrics = MetricsApi(registry, nodes)
        self.ingress_stats = IngressStatsApi(registry, nodes)
        self.router = _routes(ResourceHandlers(registry), PodProxy(registry, nodes))
        self._runners: list[web.AppRunner] = []
        self.tcp_port: int | None = None
        self._stopping = asyncio.Event()
        self.health = Health(registry.store, self._stopping)

    # -- lifecycle -----------------------------------------------------------

    def make_app(self, *, trusted: bool) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app[TRUSTED_ROLE] = "admin" if trusted else ""
        app[LIMITS] = self.limits.limits
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start_unix(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # noqa: ASYNC240 - once, at start-up
        runner = web.AppRunner(
            self.make_app(trusted=True), handler_cancellation=True, access_log=None
        )
        await runner.setup()
        # Create the socket with mode 0600 from the start: no window where others can connect.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        site = UnixSite(runner, sock, self.limits.limits)
        await site.start()
        self._runners.append(runner)

    async def start_tcp(self, host: str, port: int, ssl_context: ssl.SSLContext) -> int:
        runner = web.AppRunner(
            self.make_app(trusted=False), handler_cancellation=True, access_log=None
        )
        await runner.setup()
        site = TlsSite(runner, host, port, ssl_context, self.limits.limits)
        await site.start()
        self._runners.append(runner)
        self.tcp_port = site.port
        return self.tcp_port

    def open_connections(self) -> int:
        """The connections being served, on every listener."""
        return sum(len(r.server.connections) for r in self._runners if r.server is not None)

    async def stop(self) -> None:
        self._stopping.set()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self.leader is not None:
            await self.leader.close()

    # -- every request -----------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Authorize, dispatch, and answer errors as Status objects. (One
        handler rather than two middlewares: a request passes through fewer
        frames.)"""
        try:
            authorize(request, self.role_of_token, self.user_of_token)
            held = self.limits.acquire(self._holder(request), request)
            try:
                return await self._dispatch(request)
            finally:
                self.limits.release(held)
        except ApiError as e:
            return error_response(e)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return error_response(_http_error(e))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("internal error serving %s %s", request.method, request.path)
            return error_response(errors.internal_error())

    def _holder(self, request: web.Request) -> Holder:
        """Whom the request counts against: the unix socket, or the token's user."""
        if request.app[TRUSTED_ROLE]:
            return UNIX
        token = bearer_token(request)
        user = self.user_of_token(token) if token and self.user_of_token else None
        return ("tls", user or request[ROLE] or ANONYMOUS)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        method = request.method
        if method == "GET":
            health = await self.health.response(request, path)
            if health is not None:
                return health
        if not request[ROLE]:
            raise errors.unauthorized()  # anonymous: the health endpoints alone
        if self.leader is not None and self.leader.applies(path):
            return await self.leader.forward(request)
        if method == "GET":
            aggregated_doc = aggregated.response(request, path)
            if aggregated_doc is not None:
                return aggregated_doc
            doc = discovery.document(path)
            if doc is not None:
                return json_response(doc)
            spec = openapi.document(path)
            if spec is not None:
                return raw_response(spec)
            if path.startswith(METRICS_PREFIX + "/"):
                return await self.metrics.serve(
                    path.removeprefix(METRICS_PREFIX).strip("/"), request.query
                )
            if path == INGRESS_STATS_PATH:
                return json_response(await self.ingress_stats.collect())
        elif method == "POST" and path == IMAGE_IMPORT_PATH:
            return await import_images(request, self.registry, self.nodes)
        elif method == "POST":
            review = await selfreview.answer(request, path, self.user_of_token)
            if review is not None:
                return review
        target = parse_path(path)
        if target is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return await self.router.resolve(request, target)(request, target)


def _http_error(e: web.HTTPException) -> ApiError:
    """An error aiohttp raised in a handler (a body over the limit, say) as a Status."""
    if e.status == 413:
        return errors.request_entity_too_large(f"limit is {MAX_REQUEST_BYTES}")
    return ApiError(e.status, e.reason.replace(" ", ""), e.text or e.reason)


def _routes(resources: ResourceHandlers, pods: PodProxy) -> Router:
    """The REST verbs each path serves."""
    r = Router()
    r.read(COLLECTION, "GET", resources.list)
    r.write(COLLECTION, "POST", resources.create)
    r.delete(COLLECTION, resources.delete_collection)
    for sub in ("", "status"):
        r.read(sub, "GET", resources.get)
        r.write(sub, "PUT", resources.update)
        r.write(sub, "PATCH", resources.patch)
    r.delete("", resources.delete)
    r.read("scale", "GET", resources.get_scale)
    r.write("scale", "PUT", resources.update_scale)
    r.write("scale", "PATCH", resources.patch_scale)
    r.write("finalize", "PUT", resources.update, kind="Namespace")
    r.write("binding", "POST", resources.bind, kind="Pod")
    r.write("eviction", "POST", resources.evict, kind="Pod")
    r.read("log", "GET", pods.log, kind="Pod")
    r.read("exec", CONNECT, pods.exec_stream, kind="Pod")
    r.read("exec", "POST", pods.exec, kind="Pod")
    r.read("attach", CONNECT, pods.attach_stream, kind="Pod")
    for method in ("GET", "POST"):
        r.read("attach", method, pods.upgrade_required, kind="Pod")
    return r
