"""REST paths: what a path names, and the table of handlers that serve it.

Each route is registered as a read, a write or a delete. The router parses a
write's options (CreateOptions, UpdateOptions, PatchOptions) from the query,
and a delete's DeleteOptions from the body and the query, before it calls the
handler, which takes them: no write can be served without its options.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from control import errors
from control.api import execws
from control.api.bodies import optional_body
from control.api.options import DeleteOptions, WriteOptions, delete_options, write_options
from control.errors import ApiError
from control.objects.kinds import RESOURCES, ResourceType, by_path


@dataclass(frozen=True, slots=True)
class Target:
    """What a request path names."""

    rt: ResourceType
    namespace: str | None
    name: str | None  # None: the collection
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


Response = Awaitable[web.StreamResponse]
Handler = Callable[[web.Request, Target], Response]
WriteHandler = Callable[[web.Request, Target, WriteOptions], Response]
DeleteHandler = Callable[[web.Request, Target, DeleteOptions], Response]

# The route of a collection; an object's routes are named by subresource ("" for itself).
COLLECTION = "{collection}"
# A WebSocket upgrade (exec, attach) is Kubernetes' `connect` verb, whatever its HTTP method.
CONNECT = "CONNECT"
# What a write method's query carries.
_OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}
_NOT_ALLOWED = "the server does not allow this method on the requested resource"


class Router:
    """The dispatch table: (route, method, kind) -> handler."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str, str], Handler] = {}
        self._served: set[tuple[str, str]] = set()  # (route, kind)

    def read(self, route: str, method: str, handler: Handler, kind: str = "") -> None:
        """A route that writes nothing to the store (or a connect)."""
        self._add(route, method, kind, handler)

    def write(self, route: str, method: str, handler: WriteHandler, kind: str = "") -> None:
        options_kind = _OPTIONS_KIND[method]

        async def with_options(request: web.Request, target: Target) -> web.StreamResponse:
            return await handler(request, target, write_options(request.query, options_kind))

        self._add(route, method, kind, with_options)

    def delete(self, route: str, handler: DeleteHandler, kind: str = "") -> None:
        async def with_options(request: web.Request, target: Target) -> web.StreamResponse:
            options = delete_options(request.query, await optional_body(request))
            return await handler(request, target, options)

        self._add(route, "DELETE", kind, with_options)

    def _add(self, route: str, method: str, kind: str, handler: Handler) -> None:
        for k in (kind,) if kind else tuple(rt.kind for rt in RESOURCES):
            self._routes[(route, method, k)] = handler
            self._served.add((route, k))

    def serves(self, route: str, kind: str) -> bool:
        """Whether some method of `route` is served for `kind`."""
        return (route, kind) in self._served

    def resolve(self, request: web.Request, target: Target) -> Handler:
        """The handler of the request, to call with (request, target); 404 or
        405 when there is none."""
        rt = target.rt
        route = COLLECTION if target.name is None else target.subresource
        if route == "status" and not rt.status:
            raise ApiError(404, "NotFound", f"{rt.plural} has no status subresource")
        if route == "scale" and not rt.scale:
            raise ApiError(404, "NotFound", f"{rt.plural} has no scale subresource")
        method = request.method
        if route in ("exec", "attach") and execws.is_websocket(request):
            method = CONNECT
        handler = self._routes.get((route, method, rt.kind))
        if handler is not None:
            return handler
        if route == COLLECTION:
            raise errors.method_not_allowed(_NOT_ALLOWED)
        if (route, rt.kind) in self._served:
            raise errors.method_not_allowed(
                f"{method} is not supported on {rt.plural}/{route or target.name}"
            )
        raise ApiError(
            404, "NotFound", f"the server could not find the requested resource ({route})"
        )
