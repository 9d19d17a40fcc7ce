"""Watch: a chunked stream of JSON event lines, Kubernetes' watch protocol.

With `sendInitialEvents=true` (the watch-list protocol of client-go's
reflectors) the stream starts with ADDED for every current object, then a
BOOKMARK annotated `k8s.io/initial-events-end` carrying the revision those
events show, then live events. With `allowWatchBookmarks` a BOOKMARK with
the newest revision the stream has passed goes out whenever it has been
quiet for BOOKMARK_INTERVAL seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import orjson
from aiohttp import web

from control.api.batching import StreamStalled, write_batched
from control.api.limits import LIMITS
from control.api.listoptions import ListOptions, require_reached
from control.api.query import int_param
from control.api.registry import Registry
from control.api.responses import JSON
from control.api.tables import TableRequest, table_events
from control.errors import ApiError
from control.objects.kinds import ResourceType
from control.store.interface import Matcher, WatchEvent

# Seconds of quiet after which a watch that allows bookmarks gets one.
BOOKMARK_INTERVAL = 60.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


async def serve_watch(
    request: web.Request,
    registry: Registry,
    rt: ResourceType,
    ns: str | None,
    match: Matcher | None,
    opts: ListOptions,
    table: TableRequest | None = None,
) -> web.StreamResponse:
    """With `table`, each event's object is a Table of one row. The events
    waiting for the client are bounded in bytes (`[api.limits]`): a client
    that stops reading has its stream cut."""
    timeout = int_param(request.query, "timeoutSeconds", 0) or None
    limits = request.app[LIMITS]
    resp = web.StreamResponse(headers={"Content-Type": JSON, "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    events = watch_events(registry, rt, ns, match, opts)
    if table is not None:
        events = table_events(events, rt, table)

    def cut() -> None:
        if request.transport is not None:
            request.transport.abort()

    try:
        async with asyncio.timeout(timeout):
            await write_batched(
                resp,
                events,
                limit_bytes=limits.watch_buffer_bytes,
                stall_timeout=limits.watch_stall_timeout,
                cut=cut,
            )
    except TimeoutError:
        pass
    except (StreamStalled, ConnectionResetError):
        return resp
    try:
        async with asyncio.timeout(limits.watch_stall_timeout):
            await resp.write_eof()
    except TimeoutError:
        cut()  # the client reads nothing: what the socket holds goes
    except ConnectionResetError:
        pass
    return resp


async def watch_events(
    registry: Registry,
    rt: ResourceType,
    ns: str | None,
    match: Matcher | None,
    opts: ListOptions,
) -> AsyncGenerator[bytes, None]:
    """The watch's lines: ADDED for the current objects when asked for
    (sendInitialEvents, or by default when the resourceVersion is "" or "0"),
    then every change; an error ends it with an ERROR line."""
    # Keys this stream has shown as present: one that stops matching the
    # selector is reported DELETED, as Kubernetes does.
    shown: set[str] = set()
    try:
        rv = opts.revision()
        initial = rv is None if opts.send_initial_events is None else opts.send_initial_events
        if initial:
            if rv is not None:
                await require_reached(registry, rv)
            listed = await registry.list(rt, ns, match=match)
            for kv in listed.items:
                shown.add(kv.key)
                yield _event(b"ADDED", kv.raw)
            start = listed.revision
            if opts.send_initial_events and opts.allow_bookmarks:
                yield _bookmark(rt, start, initial_end=True)
        elif rv is None:
            start = await registry.store.revision()
        else:
            start = rv
        changes = registry.watch(rt, ns, start)
        if opts.allow_bookmarks:
            stream: AsyncIterator[WatchEvent | None] = _with_quiet_ticks(changes)
        else:
            stream = changes
        last = start
        async for ev in stream:
            if ev is None:
                yield _bookmark(rt, last)
                continue
            last = ev.revision
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


async def _with_quiet_ticks(
    events: AsyncIterator[WatchEvent],
) -> AsyncGenerator[WatchEvent | None, None]:
    """`events`, with a None whenever BOOKMARK_INTERVAL passes without one.
    The pending read is kept across ticks, never cancelled, so no event is lost."""
    pending: asyncio.Future[WatchEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=BOOKMARK_INTERVAL)
            if not done:
                yield None
                continue
            finished, pending = pending, None
            try:
                ev = finished.result()
            except StopAsyncIteration:
                return
            yield ev
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def _bookmark(rt: ResourceType, revision: int, *, initial_end: bool = False) -> bytes:
    meta: dict[str, object] = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
    return _event(b"BOOKMARK", orjson.dumps(obj))


def _event(kind: bytes, raw: bytes) -> bytes:
    return b'{"type":"' + kind + b'","object":' + raw + b"}\n"
