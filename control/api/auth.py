"""Who a request is: the unix socket is trusted (admin); on TCP a bearer token
names a role, and the read-only role may only read. Without credentials only
the health endpoints answer, and every user may ask about itself (the self
reviews), as Kubernetes' system:public-info-viewer and system:basic-user allow."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from control import errors

TRUSTED_ROLE = web.AppKey("trusted-role", str)  # "admin" on the unix socket, else ""
ROLE = web.RequestKey("role", str)  # the request's role, set by authorize ("": anonymous)
_READ_METHODS = {"GET", "HEAD"}
# What anyone may read without credentials.
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz")
# What every authenticated user may create: questions about itself.
SELF_REVIEW_PATHS = frozenset(
    {
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
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


def authorize(request: web.Request, role_of_token: Callable[[str], str | None] | None) -> None:
    """Set the request's ROLE, or raise 401 (no role) or 403 (a read-only write)."""
    role = request.app[TRUSTED_ROLE]
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
        raise errors.forbidden(
            f'User "readonly" cannot {request.method.lower()} {request.path}: the read-only role may only read'
        )
