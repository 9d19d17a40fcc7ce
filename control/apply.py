"""Client-side apply, as `kubectl apply` does it.

The manifest last applied is kept in the `kubectl.kubernetes.io/last-applied-configuration`
annotation. Applying again sends a patch made of the new manifest plus an
explicit null for every field the last manifest had and this one dropped, so
fields that others own (replicas set by `scale`, a Service's clusterIP, status)
are left alone.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from control.client import Client
from control.errors import ApiError
from control.objects.kinds import by_kind
from control.objects.revisions import LAST_APPLIED

Outcome = Literal["created", "configured", "unchanged"]


def removals(last: Any, new: Any) -> Any:
    """A merge patch setting to null what `last` had and `new` lacks (maps only)."""
    if not isinstance(last, dict) or not isinstance(new, dict):
        return new
    out: dict[str, Any] = {}
    for key, value in new.items():
        out[key] = removals(last.get(key), value) if isinstance(value, dict) else value
    for key in last:
        if key not in new:
            out[key] = None
    return out


def _with_annotation(manifest: dict[str, Any]) -> dict[str, Any]:
    obj = dict(manifest)
    meta = dict(obj.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    stripped = {
        **obj,
        "metadata": {**meta, "annotations": annotations}
        if annotations
        else {k: v for k, v in meta.items() if k != "annotations"},
    }
    try:
        annotations[LAST_APPLIED] = orjson.dumps(stripped, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError as e:  # a number past 64 bits, say
        raise _bad_manifest(f"cannot be sent as JSON: {e}") from None
    meta["annotations"] = annotations
    obj["metadata"] = meta
    return obj


def _bad_manifest(why: str) -> ApiError:
    """A manifest refused before it is sent, as the server would refuse it."""
    return ApiError(400, "BadRequest", f"the manifest's {why}")


async def apply_one(
    client: Client, manifest: dict[str, Any], namespace: str | None
) -> tuple[str, Outcome]:
    """Create or patch one object; returns (`kind.group/name`, outcome)."""
    rt = by_kind(str(manifest.get("apiVersion")), str(manifest.get("kind")))
    if rt is None:
        raise ApiError(
            400,
            "BadRequest",
            f'no matches for kind "{manifest.get("kind")}" in version "{manifest.get("apiVersion")}"',
        )
    meta = manifest.get("metadata") or {}
    if not isinstance(meta, dict) or not isinstance(meta.get("annotations") or {}, dict):
        raise _bad_manifest("metadata and metadata.annotations must be objects")
    for field in ("name", "namespace"):
        value = meta.get(field)
        if value is not None and (not isinstance(value, str) or "/" in value):
            # It goes into the request's path.
            raise _bad_manifest(f"metadata.{field} must be a string without '/', not {value!r}")
    name = str(meta.get("name") or "")
    ns = (meta.get("namespace") or namespace or "default") if rt.namespaced else None
    label = f"{rt.singular}{'.' + rt.group if rt.group else ''}/{name}"
    desired = _with_annotation(manifest)
    if rt.namespaced:
        desired["metadata"]["namespace"] = ns
    try:
        current = await client.get(rt, name, ns) if name else None
    except ApiError as e:
        if e.code != 404:
            raise
        current = None
    if current is None:
        await client.create(rt, desired, ns)
        return label, "created"
    last_raw = ((current.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        last = orjson.loads(last_raw) if last_raw else {}
    except orjson.JSONDecodeError:
        last = None
    if not isinstance(last, dict):
        raise ApiError(
            400, "BadRequest", f"{label}: its {LAST_APPLIED} annotation is not a JSON object"
        )
    patch = removals(_with_annotation(last) if last else {}, desired)
    updated = await client.patch(rt, name, patch, ns, patch_type="strategic")
    same = updated["metadata"].get("resourceVersion") == current["metadata"].get("resourceVersion")
    return label, "unchanged" if same else "configured"
