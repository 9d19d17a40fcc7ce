"""Request bodies: JSON or YAML objects, and patches by their content type.

`decode` is the one place a body's media type is read; a type the server
does not speak is 415 Unsupported Media Type.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson
import yaml
from aiohttp import web

from control import errors
from control.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from control.api.protobuf import decode as protobuf
from control.errors import ApiError
from control.objects.manifest import load_yaml

Patcher = Callable[[Any, Any], Any]
_PATCHERS: dict[str, Patcher] = {
    # The registry builds the object it stores anew from a patch's result.
    "application/merge-patch+json": functools.partial(merge_patch, share=True),
    "application/json-patch+json": json_patch,
    "application/strategic-merge-patch+json": strategic_merge_patch,
}


JSON = "application/json"
YAML = "application/yaml"
# The body types read as JSON: objects, and the patches.
_JSON_TYPES = frozenset({JSON, *_PATCHERS})


async def read_body(request: web.Request) -> tuple[str, bytes]:
    """The body's media type (JSON when the request names none, as
    Kubernetes reads it) and its bytes."""
    content_type = request.content_type if "Content-Type" in request.headers else JSON
    return content_type, await request.read()


def decode(content_type: str, raw: bytes) -> Any:
    """A body in `content_type` (a media type without parameters) as JSON values."""
    if content_type == protobuf.CONTENT_TYPE:
        return protobuf.decode_object(raw)
    if content_type not in _JSON_TYPES and content_type != YAML:
        raise errors.unsupported_media_type(content_type)
    try:
        if content_type == YAML:
            return load_yaml(raw)
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as e:
        what = "YAML" if content_type == YAML else "JSON"
        raise errors.bad_request(f"the request body is not valid {what}: {e}") from e


async def body(request: web.Request) -> Any:
    content_type, raw = await read_body(request)
    if not raw:
        raise errors.bad_request("the request has no body")
    return decode(content_type, raw)


async def optional_body(request: web.Request) -> Any:
    """The decoded body, or None when there is none."""
    content_type, raw = await read_body(request)
    return decode(content_type, raw) if raw else None


async def patch_change(request: web.Request) -> Callable[[Any], Any]:
    """What a PATCH request asks: its patch applied, by the patcher of its
    content type, to the object it is given."""
    patcher = _PATCHERS.get(request.content_type)
    if patcher is None:
        raise errors.unsupported_media_type(request.content_type)
    patch = await body(request)

    def change(obj: Any) -> Any:
        try:
            return patcher(obj, patch)
        except PatchError as e:
            raise ApiError(422, "Invalid", f"the patch could not be applied: {e}") from e

    return change
