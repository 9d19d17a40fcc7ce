"""Kubernetes primitives, one copy for the whole project: resource quantities,
durations, RFC 3339 times, DNS-1123 names and label keys, and owner references.

They follow Kubernetes (apimachinery's resource.Quantity, Go's
time.ParseDuration, metav1.Time, validation.IsDNS1123Label, ...). This module
sits in agent.protocol because both sides of the protocol use it; like the rest
of the package it needs the standard library only.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction
from functools import lru_cache
from typing import Any

# --- quantities --------------------------------------------------------------------
# "100m", "0.5", "2", "64Mi", "1G", "1e3": a signed decimal number with an optional
# suffix, binary SI (Ki Mi Gi Ti Pi Ei), decimal SI (n u m k M G T P E) or a decimal
# exponent (e3, E-2). Values are exact fractions, rounded up to whole units the way
# Quantity.Value() and MilliValue() do.

QUANTITY = re.compile(
    r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(?P<bin>[KMGTPE]i)|(?P<exp>[eE][+-]?\d+)|(?P<dec>[numkMGTPE]))?",
    re.ASCII,
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}


def is_quantity(text: str) -> bool:
    """Whether `text` has the syntax of a quantity (no surrounding spaces)."""
    return QUANTITY.fullmatch(text) is not None


def _parse_quantity(text: str) -> Fraction:
    m = QUANTITY.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a valid quantity: {text!r}")
    value = Fraction(m.group("num"))
    if m.group("bin"):
        return value * _BINARY[m.group("bin")]
    if m.group("exp"):
        exponent = int(m.group("exp")[1:])
        if abs(exponent) > 64:
            raise ValueError(f"quantity exponent out of range: {text!r}")
        return value * Fraction(10) ** exponent
    if m.group("dec"):
        return value * _DECIMAL[m.group("dec")]
    return value


def parse_quantity(q: str | int | float) -> Fraction:
    """The exact value of a quantity (a string, or a number as YAML gives it).
    Raises ValueError when it is not one."""
    if isinstance(q, bool):
        raise ValueError(f"not a valid quantity: {q!r}")
    if isinstance(q, int):
        return Fraction(q)
    if isinstance(q, float):
        if not math.isfinite(q):
            raise ValueError(f"not a valid quantity: {q!r}")
        return Fraction(str(q))
    if not isinstance(q, str):
        raise ValueError(f"not a valid quantity: {q!r}")
    return _parse_quantity(q)


def _ceil(value: Fraction) -> int:
    # Kubernetes rounds away from zero.
    return math.ceil(value) if value >= 0 else math.floor(value)


def quantity_value(q: str | int | float) -> int:
    """The quantity in whole units, rounded up (memory in bytes, pods, ...)."""
    return _value(q) if isinstance(q, str) else _ceil(parse_quantity(q))


def quantity_milli_value(q: str | int | float) -> int:
    """The quantity in thousandths, rounded up (cpu in millicores)."""
    return _milli_value(q) if isinstance(q, str) else _ceil(parse_quantity(q) * 1000)


# The same few strings ("100m", "128Mi") come with every replica.
@lru_cache(maxsize=4096)
def _value(text: str) -> int:
    return _ceil(_parse_quantity(text))


@lru_cache(maxsize=4096)
def _milli_value(text: str) -> int:
    return _ceil(_parse_quantity(text) * 1000)


# --- durations ---------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", re.ASCII)
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,  # Go takes both micro signs, U+00B5 and U+03BC
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Seconds from a Go duration string: "15s", "5m", "1m30s", "1.5h", "250ms",
    "0". Surrounding spaces are ignored; a sign is not accepted (no caller
    wants a negative duration). Raises ValueError."""
    s = text.strip()
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not s or pos < len(s):
        raise ValueError(f"not a valid duration: {text!r}")
    return total


# --- time ------------------------------------------------------------------------
# metav1.Time: RFC 3339 in UTC, to the second ("2024-05-01T12:00:00Z").

RFC3339_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.ASCII)


def format_rfc3339(seconds: float) -> str:
    """A time (seconds since the epoch) as metav1.Time writes it: fractions of
    a second are dropped."""
    return time.strftime(RFC3339_FORMAT, time.gmtime(math.floor(seconds)))


_stamp_second = -1
_stamp_text = ""


def now_rfc3339() -> str:
    """The current time, as format_rfc3339 writes it.

    Formatted once per second: the API server stamps a time on every write, and
    strftime is not cheap next to the rest of a write."""
    global _stamp_second, _stamp_text
    second = int(time.time())
    if second != _stamp_second:
        _stamp_text = time.strftime(RFC3339_FORMAT, time.gmtime(second))
        _stamp_second = second
    return _stamp_text


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 time ("2024-05-01T12:00:00Z", with a fraction of up to
    nanoseconds, or an offset) as an aware datetime; fractions beyond
    microseconds are dropped. Raises ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    return _parse_rfc3339(text)


# Controllers read the same few timestamps over and over.
@lru_cache(maxsize=4096)
def _parse_rfc3339(text: str) -> datetime:
    if _RFC3339.fullmatch(text) is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    return datetime.fromisoformat(text)


def rfc3339_seconds(value: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 time, or None when `value` is
    not one (absent, empty, another type, malformed)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return _parse_rfc3339(value).timestamp()
    except ValueError:
        return None


# --- names -------------------------------------------------------------------------
# Object names, label and annotation keys, label values, as validation.IsDNS1123Label,
# IsDNS1123Subdomain, IsQualifiedName and IsValidLabelValue check them. The *_FMT
# patterns are unanchored, for composing and for pydantic's `pattern`.

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_FMT = rf"{DNS1123_LABEL_FMT}(\.{DNS1123_LABEL_FMT})*"
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63

DNS1123_LABEL = re.compile(DNS1123_LABEL_FMT)
DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN_FMT)
QUALIFIED_NAME = re.compile(QUALIFIED_NAME_FMT)


def is_dns1123_label(value: str) -> bool:
    return len(value) <= DNS1123_LABEL_MAX_LENGTH and DNS1123_LABEL.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    return (
        len(value) <= DNS1123_SUBDOMAIN_MAX_LENGTH
        and DNS1123_SUBDOMAIN.fullmatch(value) is not None
    )


def is_qualified_name(value: str) -> bool:
    """A label or annotation key: `name` or `prefix/name`, the prefix a DNS-1123
    subdomain, the name at most 63 of [A-Za-z0-9-_.] starting and ending with an
    alphanumeric."""
    prefix, slash, name = value.rpartition("/")
    if slash and not is_dns1123_subdomain(prefix):
        return False
    return len(name) <= QUALIFIED_NAME_MAX_LENGTH and QUALIFIED_NAME.fullmatch(name) is not None


def is_label_value(value: str) -> bool:
    """Empty, or at most 63 characters with the syntax of a qualified name."""
    return len(value) <= LABEL_VALUE_MAX_LENGTH and (
        not value or QUALIFIED_NAME.fullmatch(value) is not None
    )


# --- owner references ----------------------------------------------------------------


def controller_ref(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with `controller: true`, or None (metav1.GetControllerOf)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return None
    for ref in meta.get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """A controller ownerReference to `owner`, as a workload controller sets it
    (metav1.NewControllerRef)."""
    meta = owner.get("metadata")
    m = meta if isinstance(meta, dict) else {}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": m.get("name"),
        "uid": m.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }
