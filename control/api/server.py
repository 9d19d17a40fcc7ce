"""The HTTP face of the API server: Kubernetes REST paths over the registry.

It parses paths, query parameters and bodies, checks bearer tokens on TCP,
and serializes answers. Stored objects are served as the raw bytes the store
holds, so a list of 10,000 pods is spliced together rather than re-encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import ssl
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
import yaml
from aiohttp import web

from agent.protocol import (
    INVALID_PARAMS,
    NOT_FOUND,
    NOT_SUPPORTED,
    ExecParams,
    ExecResult,
    LogsParams,
    LogsResult,
    Params,
    RpcError,
    StatsParams,
    StatsResult,
)
from control import errors
from control.api import discovery, execws
from control.api.deletion import RETURNS_DELETED_OBJECT, Deletion
from control.api.images import IMAGE_IMPORT_PATH, import_images
from control.api.options import (
    WRITE,
    DeleteOptions,
    WriteOptions,
    delete_options,
    write_options,
)
from control.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from control.api.registry import Registry, now_rfc3339
from control.errors import ApiError, Cause
from control.objects.kinds import NODE, POD, ResourceType, by_path
from control.objects.selectors import SelectorError, build_matcher
from control.store.interface import Matcher

log = logging.getLogger(__name__)

JSON = "application/json"
_TRUE = {"1", "true", "True"}
_READ_METHODS = {"GET", "HEAD"}
_PATCHERS: dict[str, Callable[[Any, Any], Any]] = {
    # The registry builds the object it stores anew from a patch's result.
    "application/merge-patch+json": functools.partial(merge_patch, share=True),
    "application/json-patch+json": json_patch,
    "application/strategic-merge-patch+json": strategic_merge_patch,
}
_ROLE_KEY = web.AppKey("role", str)
ROLE = web.RequestKey("role", str)  # the request's role, set by the auth middleware
METRICS_PREFIX = "/apis/metrics.k8s.io/v1beta1"
# How long a stats request to one node may take before `top` leaves it out.
STATS_TIMEOUT = 5.0
TEXT = "text/plain"
# Watch lines waiting to be written; ready ones are written together.
WATCH_BATCH = 256


class AgentLink(Protocol):
    """What the API server needs from one node link (control.nodes.link.NodeLink)."""

    async def logs(self, params: LogsParams, timeout: float | None = None) -> LogsResult: ...  # noqa: ASYNC109

    def follow_logs(self, params: LogsParams) -> AsyncGenerator[str, None]: ...

    async def exec(self, params: ExecParams, timeout: float | None = None) -> ExecResult: ...  # noqa: ASYNC109

    async def stats(self, params: StatsParams | None = None) -> StatsResult: ...

    async def exec_session(self, params: ExecParams) -> execws.ExecStream: ...
    async def request(self, method: str, params: Params, timeout: float | None = None) -> Any: ...  # noqa: ASYNC109


class NodeAgents(Protocol):
    """The node links by node name (control.nodes.manager.NodeLinks)."""

    def link(self, node: str) -> AgentLink | None: ...


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


def raw_response(raw: bytes, status: int = 200) -> web.Response:
    return web.Response(body=raw, status=status, content_type=JSON)


@dataclass(frozen=True, slots=True)
class Target:
    """What a request path names."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str


def parse_path(path: str) -> Target | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        inner = by_path(group, version, rest[2])
        if inner is not None and inner.namespaced:
            namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rt = by_path(group, version, rest[0])
    if rt is None:
        return None
    if rt.namespaced is False and namespace is not None:
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    return Target(rt, namespace, name, sub)


class ApiServer:
    """The aiohttp application and its listeners (unix socket, TLS TCP)."""

    def __init__(
        self,
        registry: Registry,
        *,
        role_of_token: Callable[[str], str | None] | None = None,
        nodes: NodeAgents | None = None,
    ) -> None:
        """`nodes` reaches the node agents, for pod logs, exec and metrics;
        without it those answer 503."""
        self.registry = registry
        self.role_of_token = role_of_token
        self.nodes = nodes
        self._runners: list[web.AppRunner] = []
        self.tcp_port: int | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------

    def make_app(self, *, trusted: bool) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app[_ROLE_KEY] = "admin" if trusted else ""
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
        site = web.SockSite(runner, sock)
        await site.start()
        self._runners.append(runner)

    async def start_tcp(self, host: str, port: int, ssl_context: ssl.SSLContext) -> int:
        runner = web.AppRunner(
            self.make_app(trusted=False), handler_cancellation=True, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.tcp_port = sockets[0].getsockname()[1] if sockets else port
        return self.tcp_port

    async def stop(self) -> None:
        self._stopping.set()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    # -- every request -----------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Authorize, dispatch, and answer errors as Status objects. (One
        handler rather than two middlewares: a request passes through fewer
        frames.)"""
        try:
            self._authorize(request)
            return await self._dispatch(request)
        except ApiError as e:
            return json_response(e.status(), e.code)
        except web.HTTPException:
            raise
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("internal error serving %s %s", request.method, request.path)
            err = ApiError(500, "InternalError", "an internal error occurred; see the server log")
            return json_response(err.status(), 500)

    def _authorize(self, request: web.Request) -> None:
        role = request.app[_ROLE_KEY]
        if not role:
            header = request.headers.get("Authorization", "")
            token = header[7:].strip() if header.startswith("Bearer ") else ""
            role = (self.role_of_token(token) if token and self.role_of_token else None) or ""
            if not role:
                raise errors.unauthorized()
        request[ROLE] = role
        if role == "readonly" and request.method not in _READ_METHODS:
            raise errors.forbidden(
                f'User "readonly" cannot {request.method.lower()} {request.path}: the read-only role may only read'
            )

    # -- routing -------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        method = request.method
        if method == "GET":
            doc = _discovery(path)
            if doc is not None:
                return json_response(doc)
            if path.startswith(METRICS_PREFIX + "/"):
                return await self._metrics(path.removeprefix(METRICS_PREFIX).strip("/"))
        elif method == "POST" and path == IMAGE_IMPORT_PATH:
            return await import_images(request, self.registry, self.nodes)
        target = parse_path(path)
        if target is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rt, ns, name, sub = target.rt, target.namespace, target.name, target.subresource
        # Every write's options, parsed here once: no verb can go without them.
        options = await _write_options(request)
        if name is None:
            if method == "GET":
                return await self._list_or_watch(request, rt, ns)
            if method == "POST":
                kv = await self.registry.create(rt, ns, await _body(request), options)
                return raw_response(kv.raw, 201)
            if method == "DELETE" and _serves_delete_collection(rt, ns):
                return await self._delete_collection(request, rt, ns, _as_delete(options))
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        if sub == "scale":
            return await self._scale(request, target, name, options)
        if sub == "binding" and rt.kind == "Pod" and method == "POST":
            return await self._bind(request, ns or "default", name, options)
        if sub == "eviction" and rt.kind == "Pod" and method == "POST":
            return await self._evict(request, ns or "default", name)
        if sub == "log" and rt.kind == "Pod" and method == "GET":
            return await self._pod_log(request, ns or "default", name)
        if sub == "exec" and rt.kind == "Pod" and execws.is_websocket(request):
            return await self._pod_exec_stream(request, ns or "default", name)
        if sub == "exec" and rt.kind == "Pod" and method == "POST":
            return await self._pod_exec(request, ns or "default", name)
        if sub not in ("", "status"):
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({sub})"
            )
        if sub == "status" and not rt.status:
            raise ApiError(404, "NotFound", f"{rt.plural} has no status subresource")
        if method == "GET":
            return raw_response((await self.registry.get(rt, ns, name)).raw)
        if method == "PUT":
            kv = await self.registry.update(
                rt, ns, name, await _body(request), subresource=sub, options=options
            )
            return raw_response(kv.raw)
        if method == "PATCH":
            patcher, patch = await _patch_body(request)
            kv = await self.registry.patch(
                rt,
                ns,
                name,
                lambda obj: _apply(patcher, obj, patch),
                subresource=sub,
                options=options,
                pure=True,  # the patchers leave their target as it is
            )
            return raw_response(kv.raw)
        if method == "DELETE" and not sub:
            delete = _as_delete(options)
            return _deleted(
                rt, name, await self.registry.delete_object(rt, ns, name, delete), delete
            )
        raise errors.method_not_allowed(f"{method} is not supported on {rt.plural}/{sub or name}")

    # -- handlers ------------------------------------------------------------

    async def _list_or_watch(
        self, request: web.Request, rt: ResourceType, ns: str | None
    ) -> web.StreamResponse:
        q = request.query
        match = _matcher(q.get("labelSelector"), q.get("fieldSelector"))
        if q.get("watch") in _TRUE:
            return await self._watch(request, rt, ns, match)
        limit = _int_param(q, "limit", 0)
        listed = await self.registry.list(
            rt, ns, match=match, limit=limit, continue_token=q.get("continue") or None
        )
        meta: dict[str, Any] = {"resourceVersion": str(listed.revision)}
        if listed.continue_token:
            meta["continue"] = listed.continue_token
            if listed.remaining is not None:
                meta["remainingItemCount"] = listed.remaining
        head = orjson.dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
        body = b"".join((head[:-1], b',"items":[', b",".join(kv.raw for kv in listed.items), b"]}"))
        return raw_response(body)

    async def _watch(
        self, request: web.Request, rt: ResourceType, ns: str | None, match: Matcher | None
    ) -> web.StreamResponse:
        q = request.query
        timeout = _int_param(q, "timeoutSeconds", 0) or None
        resp = web.StreamResponse(headers={"Content-Type": JSON, "Cache-Control": "no-cache"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        events = self._watch_events(rt, ns, match, q.get("resourceVersion") or "")
        try:
            async with asyncio.timeout(timeout):
                await _write_batched(resp, events)
        except TimeoutError:
            pass
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    async def _watch_events(
        self, rt: ResourceType, ns: str | None, match: Matcher | None, rv: str
    ) -> AsyncGenerator[bytes, None]:
        """The watch's lines: ADDED for the current objects unless `rv` names a
        revision, then every change; an error ends it with an ERROR line."""
        # Keys this stream has shown as present: one that stops matching the
        # selector is reported DELETED, as Kubernetes does.
        shown: set[str] = set()
        try:
            if rv in ("", "0"):
                listed = await self.registry.list(rt, ns, match=match)
                for kv in listed.items:
                    shown.add(kv.key)
                    yield _event(b"ADDED", kv.raw)
                start = listed.revision
            else:
                try:
                    start = int(rv)
                except ValueError as e:
                    raise errors.bad_request(f"invalid resourceVersion: {rv!r}") from e
            async for ev in self.registry.watch(rt, ns, start):
                kind = ev.type
                if match is not None and ev.type != "DELETED" and not match(ev.kv.obj):
                    if ev.kv.key not in shown:
                        continue
                    kind = "DELETED"
                elif (
                    match is not None
                    and ev.type == "DELETED"
                    and ev.kv.key not in shown
                    and not match(ev.kv.obj)
                ):
                    continue
                if kind == "DELETED":
                    shown.discard(ev.kv.key)
                else:
                    shown.add(ev.kv.key)
                yield _event(kind.encode(), ev.kv.raw)
        except ApiError as e:
            yield _event(b"ERROR", orjson.dumps(e.status()))

    async def _delete_collection(
        self, request: web.Request, rt: ResourceType, ns: str | None, options: DeleteOptions
    ) -> web.Response:
        q = request.query
        match = _matcher(q.get("labelSelector"), q.get("fieldSelector"))
        deleted = await self.registry.delete_collection(rt, ns, options, match)
        head = orjson.dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": {}})
        items = b",".join(kv.raw for kv in deleted)
        return raw_response(b"".join((head[:-1], b',"items":[', items, b"]}")))

    async def _bind(
        self, request: web.Request, ns: str, name: str, options: WriteOptions
    ) -> web.Response:
        body = await _body(request)
        target = body.get("target") if isinstance(body, dict) else None
        node = target.get("name") if isinstance(target, dict) else None
        if not isinstance(node, str) or not node:
            raise errors.invalid(
                "Binding", name, [Cause("target.name", "required", "FieldValueRequired")]
            )
        await self.registry.bind(ns, name, node, options)
        return _created()

    async def _evict(self, request: web.Request, ns: str, name: str) -> web.Response:
        """`POST pods/{name}/eviction` (policy/v1 Eviction): a graceful delete
        with the Eviction's deleteOptions; the query's dryRun counts when
        they have none."""
        body = await _body(request)
        if not isinstance(body, dict) or body.get("kind", "Eviction") != "Eviction":
            raise errors.bad_request("the request body must be a policy/v1 Eviction")
        meta = body.get("metadata") or {}
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"name in URL does not match name in Eviction object: {name} != {meta.get('name')}"
            )
        options = delete_options(
            request.query,
            body.get("deleteOptions"),
            path="deleteOptions.",
            query_fields=("dryRun",),
        )
        await self.registry.evict(ns, name, options)
        return _created()

    # -- pods on their nodes: log, exec, metrics -------------------------------

    async def _pod_link(self, ns: str, name: str) -> tuple[dict[str, Any], AgentLink, str]:
        """The pod, the link to its node and the node's name; 400 when the pod
        is not bound to a node or there is no link to it."""
        pod = (await self.registry.get(POD, ns, name)).obj
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            raise errors.bad_request(f"pod {name} does not have a host assigned")
        if self.nodes is None:
            raise ApiError(503, "ServiceUnavailable", "this API server has no node links")
        link = self.nodes.link(node)
        if link is None:
            raise errors.bad_request(f"node {node} of pod {name} has no link to its agent")
        return pod, link, node

    async def _pod_log(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        """`GET pods/{name}/log` with Kubernetes' query parameters; text/plain.
        With follow, chunks are written as they come until the container ends
        or the client goes away."""
        q = request.query
        pod, link, node = await self._pod_link(ns, name)
        params = LogsParams(namespace=ns, name=name)
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            params["uid"] = uid
        params["container"] = _pick_container(pod, q.get("container"), init=True)
        if q.get("tailLines") not in (None, ""):
            params["tailLines"] = _int_param(q, "tailLines", 0)
        if q.get("sinceSeconds") not in (None, ""):
            since = _int_param(q, "sinceSeconds", 0)
            if since < 1:
                raise errors.bad_request("sinceSeconds: must be greater than 0")
            params["sinceSeconds"] = since
        if q.get("timestamps") in _TRUE:
            params["timestamps"] = True
        if q.get("previous") in _TRUE:
            params["previous"] = True
        if q.get("follow") not in _TRUE or params.get("previous"):
            try:
                result = await link.logs(params)
            except (RpcError, ConnectionError, TimeoutError) as e:
                raise _agent_error(e, node) from e
            return web.Response(text=result.get("data", ""), content_type=TEXT, charset="utf-8")
        chunks = link.follow_logs(params)
        try:
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                first = ""
            except (RpcError, ConnectionError, TimeoutError) as e:
                raise _agent_error(e, node) from e
            resp = web.StreamResponse(
                headers={"Content-Type": f"{TEXT}; charset=utf-8", "Cache-Control": "no-cache"}
            )
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            if first:
                await resp.write(first.encode())
            try:
                async for chunk in chunks:
                    await resp.write(chunk.encode())
            except (RpcError, ConnectionError, TimeoutError) as e:
                if isinstance(e, ConnectionResetError):
                    raise
                log.info("log stream of %s/%s from node %s ended: %s", ns, name, node, e)
            with contextlib.suppress(ConnectionResetError):
                await resp.write_eof()
            return resp
        finally:
            await chunks.aclose()

    async def _pod_exec(self, request: web.Request, ns: str, name: str) -> web.Response:
        """`POST pods/{name}/exec`, a pilothouse extension: Kubernetes streams
        exec over a WebSocket; this runs one command to completion. The body
        is {"command": [...], "container": "...", "timeoutSeconds": N}; the
        answer is {"stdout": ..., "stderr": ..., "exitCode": N}."""
        content_type, raw = await _read_body(request)
        if not raw and "command" in request.query:
            # Kubernetes' own exec, without the WebSocket upgrade it needs.
            await self.registry.get(POD, ns, name)
            raise errors.bad_request(
                "Upgrade request required: exec with query parameters runs over a WebSocket "
                '(v4.channel.k8s.io); or POST a JSON body {"command": [...]} to run one command'
            )
        if not raw:
            raise errors.bad_request("the request has no body")
        body = _decode(content_type, raw)
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be an object with a command")
        command = body.get("command")
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(c, str) for c in command)
        ):
            raise errors.bad_request("command: a non-empty array of strings is required")
        container = body.get("container")
        if container is not None and not isinstance(container, str):
            raise errors.bad_request("container: must be a string")
        timeout = body.get("timeoutSeconds", 0)
        if not isinstance(timeout, int) or timeout < 0:
            raise errors.bad_request("timeoutSeconds: must be an integer >= 0")
        pod, link, node = await self._pod_link(ns, name)
        params = ExecParams(
            namespace=ns, name=name, command=command, container=_pick_container(pod, container)
        )
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            params["uid"] = uid
        if timeout:
            params["timeoutSeconds"] = timeout
        try:
            # The agent enforces timeoutSeconds; the request waits a little longer.
            result = await link.exec(params, timeout=(timeout + 10) if timeout else None)
        except (RpcError, ConnectionError, TimeoutError) as e:
            raise _agent_error(e, node) from e
        return json_response(
            {
                "stdout": result.get("stdout", ""),
                "stderr": result.get("stderr", ""),
                "exitCode": int(result.get("exitCode", 0)),
            }
        )

    async def _pod_exec_stream(
        self, request: web.Request, ns: str, name: str
    ) -> web.StreamResponse:
        """Kubernetes' exec: `GET`/`POST pods/{name}/exec?command=..` upgraded
        to a WebSocket (see control.api.execws). Admin only: a shell can change
        anything the pod can reach. An error before the upgrade is a Status,
        also summed up in headers (WebSocket clients rarely read the body)."""
        try:
            session, opts, what = await self._open_exec(request, ns, name)
        except ApiError as e:
            return execws.refuse(e)
        return await execws.serve(request, session, opts, what)

    async def _open_exec(
        self, request: web.Request, ns: str, name: str
    ) -> tuple[execws.ExecStream, execws.ExecOptions, str]:
        if request.get(ROLE) != "admin":
            raise errors.forbidden(
                f'User "{request.get(ROLE) or "anonymous"}" cannot create pods/exec: '
                "the read-only role may only read"
            )
        opts = execws.exec_options(request)
        pod, link, node = await self._pod_link(ns, name)
        params = ExecParams(
            namespace=ns,
            name=name,
            command=opts.command,
            container=_pick_container(pod, opts.container),
            stdin=opts.stdin,
            tty=opts.tty,
        )
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            params["uid"] = uid
        try:
            session = await link.exec_session(params)
        except (RpcError, ConnectionError, TimeoutError) as e:
            raise _agent_error(e, node) from e
        return session, opts, f"pod {ns}/{name} on node {node}"

    async def _metrics(self, rest: str) -> web.Response:
        """The metrics.k8s.io/v1beta1 API, read-only, from the agents' `stats`:
        nodes, nodes/{name}, pods, namespaces/{ns}/pods, namespaces/{ns}/pods/{name}.
        Nodes whose agent does not answer are left out, as metrics-server does."""
        parts = rest.split("/") if rest else []
        if parts[:1] == ["nodes"] and len(parts) <= 2:
            items = [_node_metrics(n, s) for n, s in (await self._all_stats()).items()]
            if len(parts) == 2:
                return json_response(_one(items, "nodes", parts[1]))
            return json_response(_metrics_list("NodeMetricsList", items))
        ns: str | None = None
        if len(parts) >= 3 and parts[0] == "namespaces":
            ns, parts = parts[1], parts[2:]
        if parts[:1] == ["pods"] and len(parts) <= 2:
            items = [
                _pod_metrics(p)
                for stats in (await self._all_stats()).values()
                for p in stats.get("pods", [])
                if ns is None or p.get("namespace") == ns
            ]
            items.sort(key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))
            if len(parts) == 2:
                return json_response(_one(items, "pods", parts[1]))
            return json_response(_metrics_list("PodMetricsList", items))
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    async def _all_stats(self) -> dict[str, StatsResult]:
        if self.nodes is None:
            raise ApiError(503, "ServiceUnavailable", "this API server has no node links")
        nodes = self.nodes
        names = sorted(
            str(kv.obj["metadata"]["name"]) for kv in (await self.registry.list(NODE, None)).items
        )

        async def one(node: str) -> StatsResult | None:
            link = nodes.link(node)
            if link is None:
                return None
            try:
                async with asyncio.timeout(STATS_TIMEOUT):
                    return await link.stats()
            except (RpcError, ConnectionError, TimeoutError) as e:
                log.debug("no stats from node %s: %s", node, e)
                return None

        results = await asyncio.gather(*(one(n) for n in names))
        return {n: r for n, r in zip(names, results, strict=True) if r is not None}

    async def _scale(
        self, request: web.Request, target: Target, name: str, options: WriteOptions
    ) -> web.Response:
        rt, ns = target.rt, target.namespace
        if not rt.scale:
            raise ApiError(404, "NotFound", f"{rt.plural} has no scale subresource")
        method = request.method
        if method == "GET":
            return json_response(await self.registry.get_scale(rt, ns, name))
        if method == "PUT":
            body = await _body(request)
            scale = await self.registry.update_scale(rt, ns, name, lambda _s: body, options=options)
            return json_response(scale)
        if method == "PATCH":
            patcher, patch = await _patch_body(request)
            scale = await self.registry.update_scale(
                rt, ns, name, lambda s: _apply(patcher, s, patch), options=options
            )
            return json_response(scale)
        raise errors.method_not_allowed(f"{method} is not supported on {rt.plural}/scale")


# -- helpers -----------------------------------------------------------------


def _pick_container(pod: dict[str, Any], name: str | None, *, init: bool = False) -> str:
    """The container a log or exec request means, checked as Kubernetes does."""
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    pod_name = (pod.get("metadata") or {}).get("name")
    if name:
        known = names + ([c.get("name") for c in spec.get("initContainers") or []] if init else [])
        if name not in known:
            raise errors.bad_request(f"container {name} is not valid for pod {pod_name}")
        return name
    if len(names) == 1:
        return str(names[0])
    raise errors.bad_request(
        f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(map(str, names))}]"
    )


def _agent_error(e: Exception, node: str) -> ApiError:
    """An agent's answer, or its absence, as an API error."""
    if isinstance(e, RpcError):
        if e.code in (NOT_FOUND, INVALID_PARAMS, NOT_SUPPORTED):
            return errors.bad_request(e.message)
        return ApiError(500, "InternalError", f"node {node}: {e.message}")
    if isinstance(e, TimeoutError):
        return ApiError(504, "Timeout", f"node {node} did not answer in time")
    return errors.bad_request(f"node {node} is not reachable: {e}")


def _cpu(nano: int) -> str:
    return f"{int(nano)}n"


def _memory(n: int) -> str:
    return f"{int(n) // 1024}Ki"


def _node_metrics(node: str, stats: StatsResult) -> dict[str, Any]:
    usage = stats.get("node") or {}
    return {
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": node},
        "timestamp": now_rfc3339(),
        "window": "10s",
        "usage": {
            "cpu": _cpu(usage.get("cpuNanoCores", 0)),
            "memory": _memory(usage.get("memoryWorkingSetBytes", 0)),
        },
    }


def _pod_metrics(p: Any) -> dict[str, Any]:
    return {
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": p.get("name"), "namespace": p.get("namespace")},
        "timestamp": now_rfc3339(),
        "window": "10s",
        "containers": [
            {
                "name": c.get("name"),
                "usage": {
                    "cpu": _cpu(c.get("cpuNanoCores", 0)),
                    "memory": _memory(c.get("memoryWorkingSetBytes", 0)),
                },
            }
            for c in p.get("containers") or []
        ],
    }


def _metrics_list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}


def _one(items: list[dict[str, Any]], resource: str, name: str) -> dict[str, Any]:
    for item in items:
        if item["metadata"]["name"] == name:
            return item
    raise errors.not_found(resource, name, "metrics.k8s.io")


def _discovery(path: str) -> dict[str, Any] | None:
    if path == "/version":
        return discovery.version()
    if path == "/api":
        return discovery.core_versions()
    if path == "/apis":
        return discovery.group_list()
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2 and parts[0] == "api":
        return discovery.resource_list("", parts[1])
    if len(parts) == 2 and parts[0] == "apis":
        return discovery.group(parts[1])
    if len(parts) == 3 and parts[0] == "apis":
        return discovery.resource_list(parts[1], parts[2])
    return None


# The options each write method's query carries (a DELETE's may be in its body too).
_OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}


async def _write_options(request: web.Request) -> WriteOptions:
    """The request's WriteOptions: a DeleteOptions for DELETE, from its body
    and query; CreateOptions, UpdateOptions or PatchOptions from the query;
    none for a read."""
    method = request.method
    if method == "DELETE":
        return delete_options(request.query, await _optional_body(request))
    kind = _OPTIONS_KIND.get(method)
    return write_options(request.query, kind) if kind else WRITE


def _as_delete(options: WriteOptions) -> DeleteOptions:
    assert isinstance(options, DeleteOptions)  # _write_options parses one for DELETE
    return options


def _serves_delete_collection(rt: ResourceType, ns: str | None) -> bool:
    """Where Kubernetes serves deletecollection: a namespaced kind only within
    one namespace, a cluster-scoped one at its root; never for Namespaces."""
    if rt.kind == "Namespace":
        return False
    return ns is not None if rt.namespaced else True


def _deleted(rt: ResourceType, name: str, done: Deletion, options: DeleteOptions) -> web.Response:
    """A delete's answer as Kubernetes gives it: the object for the kinds
    that return it and while its deletion is pending, else a Status; 202 for
    a pending delete that asked for orphanDependents=false."""
    code = 202 if not done.gone and options.orphan_dependents is False else 200
    if not done.gone or rt.kind in RETURNS_DELETED_OBJECT:
        return raw_response(done.kv.raw, code)
    details = {"name": name, "group": rt.group, "kind": rt.plural, "uid": done.uid}
    if not rt.group:
        del details["group"]
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }
    return json_response(status, code)


def _created() -> web.Response:
    """The Status a subresource POST (binding, eviction) answers with."""
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    }
    return json_response(status, 201)


class _End:
    """The end of a stream of chunks, and the error that ended it, if one did."""

    __slots__ = ("error",)

    def __init__(self, error: Exception | None) -> None:
        self.error = error


async def _write_batched(resp: web.StreamResponse, chunks: AsyncGenerator[bytes, None]) -> None:
    """Write what `chunks` yields. Chunks that are ready together (a group
    commit's events) go out in one write, one system call, not one each. At
    most WATCH_BATCH chunks wait, so a slow reader slows `chunks` down."""
    ready: asyncio.Queue[bytes | _End] = asyncio.Queue(WATCH_BATCH)

    async def pump() -> None:
        end = _End(None)
        try:
            async for chunk in chunks:
                await ready.put(chunk)
        except Exception as e:
            end = _End(e)
        finally:
            await chunks.aclose()  # the watch stops now, not when collected
        await ready.put(end)

    task = asyncio.create_task(pump())
    try:
        while True:
            batch: list[bytes] = []
            item = await ready.get()
            while isinstance(item, bytes):
                batch.append(item)
                if ready.empty():
                    break
                item = ready.get_nowait()
            if batch:
                await resp.write(b"".join(batch))
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _event(kind: bytes, raw: bytes) -> bytes:
    return b'{"type":"' + kind + b'","object":' + raw + b"}\n"


def _matcher(label: str | None, field: str | None) -> Matcher | None:
    try:
        return build_matcher(label or None, field or None)
    except SelectorError as e:
        raise errors.bad_request(f"unable to parse requirement: {e}") from e


def _int_param(q: Any, name: str, default: int) -> int:
    raw = q.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as e:
        raise errors.bad_request(f"{name}: must be an integer, got {raw!r}") from e
    if value < 0:
        raise errors.bad_request(f"{name}: must be >= 0")
    return value


async def _read_body(request: web.Request) -> tuple[str, bytes]:
    return request.content_type, await request.read()


def _decode(content_type: str, raw: bytes) -> Any:
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as e:
        raise errors.bad_request(
            f"the request body is not valid {('YAML' if 'yaml' in content_type else 'JSON')}: {e}"
        ) from e


async def _body(request: web.Request) -> Any:
    content_type, raw = await _read_body(request)
    if not raw:
        raise errors.bad_request("the request has no body")
    return _decode(content_type, raw)


async def _optional_body(request: web.Request) -> Any:
    """The decoded body, or None when there is none."""
    content_type, raw = await _read_body(request)
    return _decode(content_type, raw) if raw else None


async def _patch_body(request: web.Request) -> tuple[Callable[[Any, Any], Any], Any]:
    patcher = _PATCHERS.get(request.content_type)
    if patcher is None:
        raise errors.unsupported_media_type(request.content_type)
    return patcher, await _body(request)


def _apply(patcher: Callable[[Any, Any], Any], obj: Any, patch: Any) -> Any:
    try:
        return patcher(obj, patch)
    except PatchError as e:
        raise ApiError(422, "Invalid", f"the patch could not be applied: {e}") from e
