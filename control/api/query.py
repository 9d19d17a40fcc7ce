"""Query parameters shared by several handlers."""

from __future__ import annotations

from typing import Any

from control import errors
from control.objects.selectors import SelectorError, build_matcher
from control.store.interface import Matcher

TRUE = {"1", "true", "True"}


def matcher(label: str | None, field: str | None) -> Matcher | None:
    """labelSelector and fieldSelector as one predicate; None selects everything."""
    try:
        return build_matcher(label or None, field or None)
    except SelectorError as e:
        raise errors.bad_request(f"unable to parse requirement: {e}") from e


def int_param(q: Any, name: str, default: int) -> int:
    """A non-negative integer parameter; `default` when absent or empty."""
    raw = q.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as e:
        raise errors.bad_request(f"{name}: must be an integer, got {raw!r}") from e
    if value < 0:
        raise errors.bad_request(f"{name}: must be >= 0")
    return value
