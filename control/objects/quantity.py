"""Kubernetes resource quantities: "100m", "0.5", "2", "64Mi", "1G", "1e3".

A quantity is a signed decimal number with an optional suffix: a binary SI
suffix (Ki Mi Gi Ti Pi Ei), a decimal SI suffix (n u m k M G T P E) or a
decimal exponent (e3, E-2). Values are parsed exactly, as fractions, and
rounded up to whole units the way Kubernetes' `Value()` and `MilliValue()` do.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

_QUANTITY = re.compile(
    r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(?P<bin>[KMGTPE]i)|(?P<exp>[eE][+-]?\d+)|(?P<dec>[numkMGTPE]))?"
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


def _parse(text: str) -> Fraction:
    m = _QUANTITY.fullmatch(text.strip())
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
    """The exact value of a quantity. Raises ValueError when it is not one."""
    if isinstance(q, bool):
        raise ValueError(f"not a valid quantity: {q!r}")
    if isinstance(q, int):
        return Fraction(q)
    if isinstance(q, float):
        if not math.isfinite(q):
            raise ValueError(f"not a valid quantity: {q!r}")
        return Fraction(str(q))
    return _parse(q)


def _ceil(value: Fraction) -> int:
    # Kubernetes rounds away from zero.
    return math.ceil(value) if value >= 0 else math.floor(value)


def value(q: str | int | float) -> int:
    """The quantity in whole units, rounded up (memory in bytes, pods, ...)."""
    return _value(q) if isinstance(q, str) else _ceil(parse_quantity(q))


def milli_value(q: str | int | float) -> int:
    """The quantity in thousandths, rounded up (cpu in millicores)."""
    return _milli_value(q) if isinstance(q, str) else _ceil(parse_quantity(q) * 1000)


# The same few strings ("100m", "128Mi") come with every replica.
@lru_cache(maxsize=4096)
def _value(text: str) -> int:
    return _ceil(_parse(text))


@lru_cache(maxsize=4096)
def _milli_value(text: str) -> int:
    return _ceil(_parse(text) * 1000)


def cpu_millis(q: str | int | float) -> int:
    return milli_value(q)


def memory_bytes(q: str | int | float) -> int:
    return value(q)
