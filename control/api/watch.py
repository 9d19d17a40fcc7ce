"""Watch: a chunked stream of JSON event lines, Kubernetes' watch protocol."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import orjson
from aiohttp import web

from control import errors
from control.api.batching import write_batched
from control.api.query import int_param
from control.api.registry import Registry
from control.api.responses import JSON
from control.api.tables import TableRequest, table_events
from control.errors import ApiError
from control.objects.kinds import ResourceType
from control.store.interface import Matcher


async def serve_watch(
    request: web.Request,
    registry: Registry,
    rt: ResourceType,
    ns: str | None,
    match: Matcher | None,
    table: TableRequest | None = None,
) -> web.StreamResponse:
    """With `table`, each event's object is a Table of one row."""
    q = request.query
    timeout = int_param(q, "timeoutSeconds", 0) or None
    resp = web.StreamResponse(headers={"Content-Type": JSON, "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    events = watch_events(registry, rt, ns, match, q.get("resourceVersion") or "")
    if table is not None:
        events = table_events(events, rt, table)
    try:
        async with asyncio.timeout(timeout):
            await write_batched(resp, events)
    except TimeoutError:
        pass
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp


async def watch_events(
    registry: Registry, rt: ResourceType, ns: str | None, match: Matcher | None, rv: str
) -> AsyncGenerator[bytes, None]:
    """The watch's lines: ADDED for the current objects unless `rv` names a
    revision, then every change; an error ends it with an ERROR line."""
    # Keys this stream has shown as present: one that stops matching the
    # selector is reported DELETED, as Kubernetes does.
    shown: set[str] = set()
    try:
        if rv in ("", "0"):
            listed = await registry.list(rt, ns, match=match)
            for kv in listed.items:
                shown.add(kv.key)
                yield _event(b"ADDED", kv.raw)
            start = listed.revision
        else:
            try:
                start = int(rv)
            except ValueError as e:
                raise errors.bad_request(f"invalid resourceVersion: {rv!r}") from e
        async for ev in registry.watch(rt, ns, start):
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


def _event(kind: bytes, raw: bytes) -> bytes:
    return b'{"type":"' + kind + b'","object":' + raw + b"}\n"
