"""Who a request is: the unix socket is trusted (admin); on TCP a bearer token
names a role, whose rights control.api.roles holds (the read-only role reads
all but Secrets). Without credentials only the health endpoints answer, and
every user may ask about itself (the self reviews), as Kubernetes'
system:public-info-viewer and system:basic-user allow."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from control import errors
from control.api import execws, roles
from control.api.routing import Target, parse_path
from control.errors import ApiError

TRUSTED_ROLE = web.AppKey("trusted-role", str)  # "admin" on the unix socket, else ""
ROLE = web.RequestKey("role", str)  # the request's role, set by authorize ("": anonymous)
USER = web.RequestKey("user", str)  # the request's user name, set by authorize
_READ_METHODS = {"GET", "HEAD"}
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# What anyone may read without credentials.
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz")
# What every authenticated user may create: questions about itself.
SELF_REVIEW_PATHS = frozenset(
    {
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    }
)


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else ""


def is_public(request: web.Request) -> bool:
    path = request.path
    return request.method in _READ_METHODS and any(
        path == p or path.startswith(p + "/") for p in PUBLIC_PATHS
    )


def authorize(
    request: web.Request,
    role_of_token: Callable[[str], str | None] | None,
    user_of_token: Callable[[str], str | None] | None = None,
) -> None:
    """Set the request's ROLE and USER, or raise 401 (no role) or 403 (what
    control.api.roles does not let the role do)."""
    role = request.app[TRUSTED_ROLE]
    token = ""
    if not role:
        token = bearer_token(request)
        if not token and "Authorization" not in request.headers and is_public(request):
            request[ROLE] = ""
            request[USER] = ""
            return
        role = (role_of_token(token) if token and role_of_token else None) or ""
        if not role:
            raise errors.unauthorized()
    request[ROLE] = role
    request[USER] = (user_of_token(token) if token and user_of_token else None) or role
    if role == "admin":
        return
    path = request.path.rstrip("/")
    target = parse_path(path)
    if target is None:
        if request.method == "POST" and path in SELF_REVIEW_PATHS:
            return
        if not roles.path_decision(role, request.method.lower())[0]:
            raise forbidden(request, request.method.lower(), None)
        return
    rt, sub = target.rt, target.subresource
    if sub in ("exec", "attach") and execws.is_websocket(request):
        return  # control.api.podproxy refuses these, with the WebSocket's headers
    verb = _verb(request, target)
    if not roles.resource_decision(role, verb, rt.group, rt.plural, sub)[0]:
        raise forbidden(request, verb, target)


def _verb(request: web.Request, target: Target) -> str:
    """The request's verb, as Kubernetes' authorizers see it."""
    if request.method in _READ_METHODS:
        if target.name is not None:
            return "get"
        return "watch" if request.query.get("watch") in ("1", "true") else "list"
    if request.method == "DELETE" and target.name is None:
        return "deletecollection"
    return _WRITE_VERBS.get(request.method, request.method.lower())


def forbidden(request: web.Request, verb: str, target: Target | None) -> ApiError:
    """A refusal in kube-apiserver's words (RBAC's denial)."""
    user = request.get(USER) or "system:anonymous"
    if target is None:  # a non-resource path: the verb is the HTTP method's
        return errors.forbidden(f'forbidden: User "{user}" cannot {verb} path "{request.path}"')
    rt = target.rt
    resource = f"{rt.plural}/{target.subresource}" if target.subresource else rt.plural
    scope = f'in the namespace "{target.namespace}"' if target.namespace else "at the cluster scope"
    subject = f'{rt.group_resource} "{target.name}"' if target.name else rt.group_resource
    return ApiError(
        403,
        "Forbidden",
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{rt.group}" {scope}',
        kind=rt.plural,
        name=target.name or "",
        group=rt.group,
    )
