"""The API server's JSON answers. Stored objects go out as the raw bytes the
store holds, never parsed and encoded again."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from control.errors import ApiError, status_body

JSON = "application/json"


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


def raw_response(raw: bytes, status: int = 200) -> web.Response:
    return web.Response(body=raw, status=status, content_type=JSON)


def status_response(status: dict[str, Any], code: int) -> web.Response:
    """A `Status` object as kube-apiserver writes one: JSON and a newline."""
    return web.Response(body=orjson.dumps(status) + b"\n", status=code, content_type=JSON)


def error_response(e: ApiError) -> web.Response:
    resp = status_response(e.status(), e.code)
    if e.retry_after is not None and (e.code == 429 or e.code >= 500):
        # As kube-apiserver: the header too, for clients that read only it.
        resp.headers["Retry-After"] = str(e.retry_after)
    return resp


def created() -> web.Response:
    """The Status a subresource POST (binding, eviction) answers with."""
    return status_response(status_body("Success", code=201), 201)
