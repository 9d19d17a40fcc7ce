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
    value = nonnegative_int(q.get(name), name)
    return default if value is None else value


def nonnegative_int(value: Any, field: str) -> int | None:
    """A non-negative integer, given as a number or a string (a query parameter,
    a body field); None when absent or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise errors.bad_request(f"{field}: must be an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError as e:
        raise errors.bad_request(f"{field}: must be an integer, got {value!r}") from e
    if number < 0:
        raise errors.bad_request(f"{field}: must be >= 0")
    return number
