"""The HTTP face of the API server: Kubernetes REST paths over the registry.

It parses paths, query parameters and bodies, checks bearer tokens on TCP,
and serializes answers. Stored objects are served as the raw bytes the store
holds, so a list of 10,000 pods is spliced together rather than re-encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from control import errors
from control.api import discovery
from control.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from control.api.registry import Registry
from control.errors import ApiError, Cause
from control.objects.kinds import ResourceType, by_path
from control.objects.selectors import SelectorError, build_matcher
from control.store.interface import Matcher

log = logging.getLogger(__name__)

JSON = "application/json"
_TRUE = {"1", "true", "True"}
_READ_METHODS = {"GET", "HEAD"}
_PATCHERS: dict[str, Callable[[Any, Any], Any]] = {
    "application/merge-patch+json": merge_patch,
    "application/json-patch+json": json_patch,
    "application/strategic-merge-patch+json": strategic_merge_patch,
}
_ROLE_KEY = web.AppKey("role", str)


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
        self, registry: Registry, *, role_of_token: Callable[[str], str | None] | None = None
    ) -> None:
        self.registry = registry
        self.role_of_token = role_of_token
        self._runners: list[web.AppRunner] = []
        self.tcp_port: int | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------

    def make_app(self, *, trusted: bool) -> web.Application:
        app = web.Application(
            middlewares=[self._error_middleware, self._auth_middleware],
            client_max_size=8 * 1024 * 1024,
        )
        app[_ROLE_KEY] = "admin" if trusted else ""
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
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

    # -- middlewares ---------------------------------------------------------

    @web.middleware
    async def _error_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            resp: web.StreamResponse = await handler(request)
            return resp
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

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        role = request.app[_ROLE_KEY]
        if not role:
            header = request.headers.get("Authorization", "")
            token = header[7:].strip() if header.startswith("Bearer ") else ""
            role = (self.role_of_token(token) if token and self.role_of_token else None) or ""
            if not role:
                raise errors.unauthorized()
        if role == "readonly" and request.method not in _READ_METHODS:
            raise errors.forbidden(
                f'User "readonly" cannot {request.method.lower()} {request.path}: the read-only role may only read'
            )
        resp: web.StreamResponse = await handler(request)
        return resp

    # -- routing -------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        method = request.method
        if method == "GET":
            doc = _discovery(path)
            if doc is not None:
                return json_response(doc)
        target = parse_path(path)
        if target is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rt, ns, name, sub = target.rt, target.namespace, target.name, target.subresource
        q = request.query
        dry_run = q.get("dryRun") == "All"
        if name is None:
            if method == "GET":
                return await self._list_or_watch(request, rt, ns)
            if method == "POST":
                kv = await self.registry.create(rt, ns, await _body(request), dry_run=dry_run)
                return raw_response(kv.raw, 201)
            if method == "DELETE":
                return await self._delete_collection(request, rt, ns)
            raise errors.method_not_allowed(f"{method} is not supported on a collection")
        if sub == "scale":
            return await self._scale(request, target, name, dry_run)
        if sub == "binding" and rt.kind == "Pod" and method == "POST":
            return await self._bind(request, ns or "default", name)
        if sub == "eviction" and rt.kind == "Pod" and method == "POST":
            return await self._evict(request, ns or "default", name, dry_run)
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
                rt, ns, name, await _body(request), subresource=sub, dry_run=dry_run
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
                dry_run=dry_run,
            )
            return raw_response(kv.raw)
        if method == "DELETE" and not sub:
            return await self._delete(request, rt, ns, name, dry_run)
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
        rv = q.get("resourceVersion") or ""
        # Keys this stream has shown as present: one that stops matching the
        # selector is reported DELETED, as Kubernetes does.
        shown: set[str] = set()
        try:
            async with asyncio.timeout(timeout):
                if rv in ("", "0"):
                    listed = await self.registry.list(rt, ns, match=match)
                    for kv in listed.items:
                        shown.add(kv.key)
                        await resp.write(_event(b"ADDED", kv.raw))
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
                    await resp.write(_event(kind.encode(), ev.kv.raw))
        except TimeoutError:
            pass
        except ApiError as e:
            await resp.write(_event(b"ERROR", orjson.dumps(e.status())))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    async def _delete(
        self, request: web.Request, rt: ResourceType, ns: str | None, name: str, dry_run: bool
    ) -> web.Response:
        opts = await _optional_body(request)
        pre = opts.get("preconditions") or {}
        rv = pre.get("resourceVersion")
        try:
            expected = int(rv) if rv else None
        except ValueError as e:
            raise errors.bad_request(f"invalid preconditions.resourceVersion: {rv!r}") from e
        kv = await self.registry.delete(
            rt,
            ns,
            name,
            expected_revision=expected,
            expected_uid=pre.get("uid"),
            dry_run=dry_run,
            grace_period_seconds=_grace_period(request, opts),
        )
        return raw_response(kv.raw)

    async def _delete_collection(
        self, request: web.Request, rt: ResourceType, ns: str | None
    ) -> web.Response:
        q = request.query
        match = _matcher(q.get("labelSelector"), q.get("fieldSelector"))
        listed = await self.registry.list(rt, ns, match=match)
        deleted: list[bytes] = []
        for kv in listed.items:
            obj = kv.obj
            meta = obj.get("metadata") or {}
            try:
                gone = await self.registry.delete(rt, meta.get("namespace"), meta["name"])
            except ApiError as e:
                if e.code == 404:
                    continue
                raise
            deleted.append(gone.raw)
        head = orjson.dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": {}})
        return raw_response(b"".join((head[:-1], b',"items":[', b",".join(deleted), b"]}")))

    async def _bind(self, request: web.Request, ns: str, name: str) -> web.Response:
        body = await _body(request)
        target = body.get("target") if isinstance(body, dict) else None
        node = target.get("name") if isinstance(target, dict) else None
        if not isinstance(node, str) or not node:
            raise errors.invalid(
                "Binding", name, [Cause("target.name", "required", "FieldValueRequired")]
            )
        await self.registry.bind(ns, name, node)
        return _created()

    async def _evict(self, request: web.Request, ns: str, name: str, dry_run: bool) -> web.Response:
        """`POST pods/{name}/eviction` (policy/v1 Eviction): a graceful delete."""
        body = await _body(request)
        if not isinstance(body, dict) or body.get("kind", "Eviction") != "Eviction":
            raise errors.bad_request("the request body must be a policy/v1 Eviction")
        meta = body.get("metadata") or {}
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"name in URL does not match name in Eviction object: {name} != {meta.get('name')}"
            )
        opts = body.get("deleteOptions") or {}
        if not isinstance(opts, dict):
            raise errors.bad_request("deleteOptions: must be an object")
        pre = opts.get("preconditions") or {}
        await self.registry.evict(
            ns,
            name,
            grace_period_seconds=_grace_period(request, opts),
            expected_uid=pre.get("uid") if isinstance(pre, dict) else None,
            dry_run=dry_run or opts.get("dryRun") == ["All"],
        )
        return _created()

    async def _scale(
        self, request: web.Request, target: Target, name: str, dry_run: bool
    ) -> web.Response:
        rt, ns = target.rt, target.namespace
        if not rt.scale:
            raise ApiError(404, "NotFound", f"{rt.plural} has no scale subresource")
        method = request.method
        if method == "GET":
            return json_response(await self.registry.get_scale(rt, ns, name))
        if method == "PUT":
            body = await _body(request)
            scale = await self.registry.update_scale(rt, ns, name, lambda _s: body, dry_run=dry_run)
            return json_response(scale)
        if method == "PATCH":
            patcher, patch = await _patch_body(request)
            scale = await self.registry.update_scale(
                rt, ns, name, lambda s: _apply(patcher, s, patch), dry_run=dry_run
            )
            return json_response(scale)
        raise errors.method_not_allowed(f"{method} is not supported on {rt.plural}/scale")


# -- helpers -----------------------------------------------------------------


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


def _grace_period(request: web.Request, opts: dict[str, Any]) -> int | None:
    """DeleteOptions.gracePeriodSeconds, from the body or the query."""
    raw = opts.get("gracePeriodSeconds")
    if raw is None:
        raw = request.query.get("gracePeriodSeconds")
    if raw is None or raw == "":
        return None
    try:
        grace = int(raw)
    except (TypeError, ValueError) as e:
        raise errors.bad_request(f"gracePeriodSeconds: must be an integer, got {raw!r}") from e
    if grace < 0:
        raise errors.bad_request("gracePeriodSeconds: must be >= 0")
    return grace


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


async def _optional_body(request: web.Request) -> dict[str, Any]:
    content_type, raw = await _read_body(request)
    if not raw:
        return {}
    body = _decode(content_type, raw)
    return body if isinstance(body, dict) else {}


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
