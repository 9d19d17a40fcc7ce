"""`describe`: one object in detail with its events, as `kubectl describe` prints it.

The CLI's `describe` and the console's `d` both print this text.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from control.client import Client
from control.errors import ApiError
from control.objects import kinds
from control.objects.columns import aligned
from control.objects.kinds import ResourceType
from control.objects.yamltext import to_yaml
from control.operations.listing import list_all
from control.operations.routes import route_details_of
from control.operations.services import service_details_of

# kubectl keeps the last applied configuration out of `describe`: it repeats the object.
_HIDDEN_ANNOTATION_PREFIX = "kubectl.kubernetes.io/last"


async def describe(client: Client, rt: ResourceType, name: str, namespace: str | None) -> str:
    obj = await client.get(rt, name, namespace)
    ns = namespace or "default"
    try:
        events = await list_all(
            client,
            kinds.EVENT,
            ns,
            field=f"involvedObject.name={name},involvedObject.kind={rt.kind}",
        )
    except ApiError:
        events = []
    out = _header(rt, obj) + _body(rt, obj)
    if rt is kinds.SERVICE:
        try:
            out += await service_details_of(client, ns, name)
        except ApiError as err:
            out.append(f"Endpoints:    <unknown: {err.message}>")
    elif rt in (kinds.INGRESS, kinds.HTTPROUTE):
        try:
            out += await route_details_of(client, obj)
        except ApiError as err:
            out.append(f"Routes:       <unknown: {err.message}>")
    out += _events(events)
    return "\n".join(out) + "\n"


def _kv(d: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (d or {}).items()) or "<none>"


def _header(rt: ResourceType, obj: dict[str, Any]) -> list[str]:
    meta = obj.get("metadata") or {}
    out = [f"Name:         {meta.get('name')}"]
    if rt.namespaced:
        out.append(f"Namespace:    {meta.get('namespace')}")
    out.append(f"Kind:         {rt.kind}")
    out.append(f"Created:      {meta.get('creationTimestamp')}")
    out.append(f"Labels:       {_kv(meta.get('labels'))}")
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith(_HIDDEN_ANNOTATION_PREFIX)
    }
    out.append(f"Annotations:  {_kv(annotations)}")
    return out


def _body(rt: ResourceType, obj: dict[str, Any]) -> list[str]:
    if rt is kinds.SECRET:
        # As kubectl: a Secret's values are never printed, only their sizes.
        out = [f"Type:         {obj.get('type') or 'Opaque'}"]
        data = obj.get("data") or {}
        if data:
            out.append("Data:")
            out += [f"  {key}:  {_decoded_size(value)} bytes" for key, value in data.items()]
        return out
    out = []
    for section in ("spec", "data", "subsets", "status"):
        if obj.get(section):
            out.append(f"{section.capitalize()}:")
            out += [f"  {line}" for line in to_yaml(obj[section]).splitlines()]
    return out


def _decoded_size(value: object) -> int:
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(str(value))


def _events(events: list[dict[str, Any]]) -> list[str]:
    if not events:
        return ["Events:       <none>"]
    events.sort(key=lambda e: e.get("lastTimestamp") or "")
    body = [
        [
            f"  {e.get('type', 'Normal')}",
            str(e.get("reason", "")),
            str(e.get("count", 1)),
            str((e.get("source") or {}).get("component", "")),
            str(e.get("message", "")),
        ]
        for e in events
    ]
    return ["Events:", *aligned(["  TYPE", "REASON", "COUNT", "FROM", "MESSAGE"], body)]
