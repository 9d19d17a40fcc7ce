"""Reading the metadata every stored object carries."""

from __future__ import annotations

from typing import Any

from control.objects import Obj


def meta(obj: Obj) -> dict[str, Any]:
    """The object's `metadata` (empty when missing or malformed)."""
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def labels_of(obj: Obj) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def is_deleting(obj: Obj) -> bool:
    """Marked for deletion (a deletionTimestamp), waiting on finalizers or grace."""
    return bool(meta(obj).get("deletionTimestamp"))
