"""Query parameters shared by several handlers."""

from __future__ import annotations

from typing import Any

from control import errors
from control.errors import ApiError, Cause
from control.objects.meta import INT64_MAX, INT64_MIN
from control.objects.selectors import SelectorError, build_matcher, unsupported_field
from control.store.interface import Matcher

TRUE = {"1", "true", "True"}


def matcher(label: str | None, field: str | None, kind: str = "") -> Matcher | None:
    """labelSelector and fieldSelector as one predicate; None selects
    everything. With `kind`, a field that kind cannot be selected by is 400."""
    try:
        unsupported = unsupported_field(kind, field) if kind and field else None
        built = build_matcher(label or None, field or None)
    except SelectorError as e:
        raise errors.bad_request(f"unable to parse requirement: {e}") from e
    if unsupported is not None:
        message = f"field label not supported: {unsupported}"
        raise ApiError(400, "BadRequest", message, causes=[Cause("fieldSelector", message)])
    return built


def int_param(q: Any, name: str, default: int) -> int:
    """A non-negative integer parameter; `default` when absent or empty."""
    value = nonnegative_int(q.get(name), name)
    return default if value is None else value


def nonnegative_int(value: Any, field: str) -> int | None:
    """A non-negative int64, given as a number or a string (a query parameter,
    a body field); None when absent or empty."""
    number = int64(value, field)
    if number is not None and number < 0:
        raise errors.bad_request(f"{field}: must be >= 0")
    return number


def int64(value: Any, field: str) -> int | None:
    """An integer in int64's range, given as a number or a string; None when
    absent or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise errors.bad_request(f"{field}: must be an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError as e:
        raise errors.bad_request(f"{field}: must be an integer, got {value!r}") from e
    if not INT64_MIN <= number <= INT64_MAX:
        raise errors.bad_request(f"{field}: {value} is out of range for an int64")
    return number


def revision(value: Any, field: str = "resourceVersion") -> int:
    """A resourceVersion (a decimal string, or a number) as a store revision:
    a non-negative int64, else 400 naming `field`."""
    number = -1
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            number = int(value)
        except ValueError:
            pass
    if not 0 <= number <= INT64_MAX:
        message = f"invalid resource version: {value!r}"
        raise ApiError(400, "BadRequest", message, causes=[Cause(field, message)])
    return number
