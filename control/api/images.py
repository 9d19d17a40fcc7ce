"""`POST /apis/pilothouse.io/v1/images/import`, a pilothouse extension: load
an OCI or docker image archive onto nodes.

The body is the archive (with a Content-Length); `?node=NAME` (repeatable)
names the nodes, all Ready nodes by default. The answer streams as
`application/x-ndjson`, one event per line, while the upload goes to the
agents (control.api.imagepush):

    {"phase": "started", "nodes": [...], "size": N}
    {"node": "n1", "phase": "sending", "sent": N, "size": N}
    {"node": "n1", "phase": "imported", "images": ["docker.io/..."]}
    {"node": "n2", "phase": "failed", "error": "..."}
    {"phase": "finished", "imported": [...], "failed": [...]}

Errors found before the upload starts (no such node, no Ready node, no
Content-Length) answer as ordinary `Status` errors. Mutating: the read-only
role gets 403 from control.api.auth.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

import orjson
from aiohttp import web

from control import errors
from control.api.imagepush import Event, ImageLink, push_image, read_chunks
from control.api.registry import Registry
from control.errors import ApiError
from control.objects.conditions import ready_condition
from control.objects.kinds import NODE

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"


class ImageNodes(Protocol):
    """The node links by name (control.nodes.manager.NodeLinks)."""

    def link(self, node: str) -> ImageLink | None: ...


async def _chosen_nodes(registry: Registry, names: list[str]) -> list[str]:
    if names:
        for name in names:
            await registry.get(NODE, None, name)  # 404 names the missing node
        return list(dict.fromkeys(names))
    ready = sorted(
        str(kv.obj["metadata"]["name"])
        for kv in (await registry.list(NODE, None)).items
        if (ready_condition(kv.obj) or {}).get("status") == "True"
    )
    if not ready:
        raise errors.bad_request("there is no Ready node to import the image into")
    return ready


async def import_images(
    request: web.Request, registry: Registry, nodes: ImageNodes | None
) -> web.StreamResponse:
    if nodes is None:
        raise ApiError(503, "ServiceUnavailable", "this API server has no node links")
    size = request.content_length
    if size is None:
        raise ApiError(411, "LengthRequired", "send the archive with a Content-Length")
    chosen = await _chosen_nodes(registry, request.query.getall("node", []))
    links: dict[str, ImageLink | None] = {n: nodes.link(n) for n in chosen}

    resp = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)

    async def emit(event: Event) -> None:
        await resp.write(orjson.dumps(event) + b"\n")

    await emit({"phase": "started", "nodes": chosen, "size": size})
    result = await push_image(links, read_chunks(request.content.read), size, emit)
    await emit(
        {
            "phase": "finished",
            "imported": [n for n, r in result.items() if not r.error],
            "failed": [n for n, r in result.items() if r.error],
        }
    )
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp
