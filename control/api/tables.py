"""meta.k8s.io/v1 Table answers: the server-side printing `kubectl get` asks for.

Every kind's Table comes from its columns in control.objects.columns (NAME
and AGE for a kind that declares none); priority 1 marks the `-o wide` ones.
`includeObject` says what each row carries: the object's metadata (the
default), the whole object, or nothing.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from control import errors
from control.api.negotiation import TABLE_GROUP, TABLE_VERSION, Answer, negotiate
from control.objects import Obj
from control.objects.columns import Column, columns_for
from control.objects.kinds import ResourceType
from control.store.interface import KV

API_VERSION = f"{TABLE_GROUP}/{TABLE_VERSION}"
INCLUDE_NONE, INCLUDE_METADATA, INCLUDE_OBJECT = "None", "Metadata", "Object"
_INCLUDE = (INCLUDE_NONE, INCLUDE_METADATA, INCLUDE_OBJECT)
# Watch events that carry an object to print; ERROR carries a Status, BOOKMARK only a version.
_PRINTED_EVENTS = (b"ADDED", b"MODIFIED", b"DELETED")


@dataclass(frozen=True, slots=True)
class TableRequest:
    """A read that asked for a Table, and what its rows include."""

    include: str = INCLUDE_METADATA


def table_request(request: web.Request) -> TableRequest | None:
    """The Table a read asks for, or None for the objects themselves (406
    when its Accept header names nothing the server speaks)."""
    if negotiate(request.headers.get("Accept")) is not Answer.TABLE:
        return None
    include = request.query.get("includeObject") or INCLUDE_METADATA
    if include not in _INCLUDE:
        supported = ", ".join(f'"{v}"' for v in _INCLUDE)
        raise errors.bad_request(
            f'includeObject: Unsupported value: "{include}": supported values: {supported}'
        )
    return TableRequest(include)


def column_definitions(rt: ResourceType) -> list[dict[str, Any]]:
    return [_definition(c) for c in columns_for(rt.kind, wide=True)]


def _definition(column: Column) -> dict[str, Any]:
    return {
        "name": column.title,
        "type": column.type,
        "format": column.format,
        "description": column.description,
        "priority": 1 if column.wide else 0,
    }


def _cell(column: Column, obj: Obj) -> Any:
    text = column.cell(obj)
    if column.type == "integer":
        try:
            return int(text)
        except ValueError:
            return text
    return text


def row(rt: ResourceType, kv: KV, include: str) -> dict[str, Any]:
    obj = kv.obj
    out: dict[str, Any] = {"cells": [_cell(c, obj) for c in columns_for(rt.kind, wide=True)]}
    if include == INCLUDE_OBJECT:
        out["object"] = orjson.Fragment(kv.raw)
    elif include == INCLUDE_METADATA:
        out["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": API_VERSION,
            "metadata": obj.get("metadata") or {},
        }
    return out


def table(
    rt: ResourceType,
    items: Iterable[KV],
    meta: dict[str, Any],
    asked: TableRequest,
    *,
    definitions: bool = True,
) -> dict[str, Any]:
    """The Table of `items`. Without `definitions` its columnDefinitions are
    empty: a watch sends them once, and kubectl keeps the last ones."""
    return {
        "kind": "Table",
        "apiVersion": API_VERSION,
        "metadata": meta,
        "columnDefinitions": column_definitions(rt) if definitions else [],
        "rows": [row(rt, kv, asked.include) for kv in items],
    }


def table_response(
    rt: ResourceType, items: Iterable[KV], meta: dict[str, Any], asked: TableRequest
) -> web.Response:
    return web.Response(
        body=orjson.dumps(table(rt, items, meta, asked)), content_type="application/json"
    )


async def table_events(
    events: AsyncGenerator[bytes, None], rt: ResourceType, asked: TableRequest
) -> AsyncGenerator[bytes, None]:
    """A watch's event lines with each object turned into a Table of one row."""
    first = True
    try:
        async for line in events:
            event = orjson.loads(line)
            kind = str(event.get("type", "")).encode()
            if kind not in _PRINTED_EVENTS:
                yield line
                continue
            obj = event["object"]
            kv = KV("", orjson.dumps(obj), 0, 0)
            meta = {"resourceVersion": str((obj.get("metadata") or {}).get("resourceVersion", ""))}
            event["object"] = table(rt, [kv], meta, asked, definitions=first)
            first = False
            yield orjson.dumps(event) + b"\n"
    finally:
        await events.aclose()
