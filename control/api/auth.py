"""Who a request is: the unix socket is trusted (admin); on TCP a bearer token
names a role, and the read-only role may only read."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from control import errors

TRUSTED_ROLE = web.AppKey("trusted-role", str)  # "admin" on the unix socket, else ""
ROLE = web.RequestKey("role", str)  # the request's role, set by authorize
_READ_METHODS = {"GET", "HEAD"}


def authorize(request: web.Request, role_of_token: Callable[[str], str | None] | None) -> None:
    """Set the request's ROLE, or raise 401 (no role) or 403 (a read-only write)."""
    role = request.app[TRUSTED_ROLE]
    if not role:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        role = (role_of_token(token) if token and role_of_token else None) or ""
        if not role:
            raise errors.unauthorized()
    request[ROLE] = role
    if role == "readonly" and request.method not in _READ_METHODS:
        raise errors.forbidden(
            f'User "readonly" cannot {request.method.lower()} {request.path}: the read-only role may only read'
        )
