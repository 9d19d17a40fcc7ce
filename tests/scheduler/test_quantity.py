from __future__ import annotations

from fractions import Fraction

import pytest

from control.objects.quantity import cpu_millis, memory_bytes, milli_value, parse_quantity, value


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("100m", 100),
        ("0.5", 500),
        ("2", 2000),
        ("1.5", 1500),
        (".25", 250),
        ("250000u", 250),
        ("1k", 1_000_000),
        ("1e-3", 1),
        ("1n", 1),  # rounded up, as MilliValue() does
        ("0", 0),
    ],
)
def test_cpu(text: str, millis: int) -> None:
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("64Mi", 64 * 2**20),
        ("1Gi", 2**30),
        ("128Gi", 128 * 2**30),
        ("1Ki", 1024),
        ("1G", 10**9),
        ("1M", 10**6),
        ("1k", 1000),
        ("1e3", 1000),
        ("1E3", 1000),
        ("1.5Gi", 3 * 2**29),
        ("12345", 12345),
        ("1E", 10**18),  # exa, not an exponent without digits
        ("1Ei", 2**60),
        ("100m", 1),  # a tenth of a byte rounds up to one
        ("+5", 5),
    ],
)
def test_memory(text: str, nbytes: int) -> None:
    assert memory_bytes(text) == nbytes


def test_numbers_from_yaml() -> None:
    assert cpu_millis(2) == 2000
    assert cpu_millis(0.1) == 100
    assert memory_bytes(1024) == 1024


def test_exact_values() -> None:
    assert parse_quantity("0.1") == Fraction(1, 10)
    assert parse_quantity("1Mi") == 2**20
    assert milli_value("0.0001") == 1
    assert value("-1.5") == -2  # away from zero


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "5 Mi", "1Xi", "Mi", "1e", "--1", "1mi"])
def test_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_invalid_types() -> None:
    with pytest.raises(ValueError):
        parse_quantity(True)
    with pytest.raises(ValueError):
        parse_quantity(float("nan"))
