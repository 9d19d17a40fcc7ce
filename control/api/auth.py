"""Who a request is: the unix socket is trusted (admin); on TCP a bearer token
names a role, and the read-only role may only read. Without credentials only
the health endpoints answer, and every user may ask about itself (the self
reviews), as Kubernetes' system:public-info-viewer and system:basic-user allow."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from control import errors
from control.api.routing import parse_path
from control.errors import ApiError

TRUSTED_ROLE = web.AppKey("trusted-role", str)  # "admin" on the unix socket, else ""
ROLE = web.RequestKey("role", str)  # the request's role, set by authorize ("": anonymous)
_READ_METHODS = {"GET", "HEAD"}
_WRITE_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_READ_ONLY = "the readonly role may only read"  # as control.api.selfreview says it
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
    """Set the request's ROLE, or raise 401 (no role) or 403 (a read-only write)."""
    role = request.app[TRUSTED_ROLE]
    token = ""
    if not role:
        token = bearer_token(request)
        if not token and "Authorization" not in request.headers and is_public(request):
            request[ROLE] = ""
            return
        role = (role_of_token(token) if token and role_of_token else None) or ""
        if not role:
            raise errors.unauthorized()
    request[ROLE] = role
    if (
        role == "readonly"
        and request.method not in _READ_METHODS
        and not (request.method == "POST" and request.path.rstrip("/") in SELF_REVIEW_PATHS)
    ):
        user = (user_of_token(token) if token and user_of_token else None) or role
        raise _forbidden(request, user)


def _forbidden(request: web.Request, user: str) -> ApiError:
    """A refused write, in kube-apiserver's words (RBAC's denial, with our reason)."""
    target = parse_path(request.path.rstrip("/"))
    if target is None:  # a non-resource path: the verb is the HTTP method's
        return errors.forbidden(
            f'forbidden: User "{user}" cannot {request.method.lower()} path "{request.path}": '
            + _READ_ONLY
        )
    verb = _WRITE_VERBS.get(request.method, request.method.lower())
    rt = target.rt
    if verb == "delete" and target.name is None:
        verb = "deletecollection"
    resource = f"{rt.plural}/{target.subresource}" if target.subresource else rt.plural
    scope = f'in the namespace "{target.namespace}"' if target.namespace else "at the cluster scope"
    subject = f'{rt.group_resource} "{target.name}"' if target.name else rt.group_resource
    return ApiError(
        403,
        "Forbidden",
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{rt.group}" {scope}: {_READ_ONLY}',
        kind=rt.plural,
        name=target.name or "",
        group=rt.group,
    )
