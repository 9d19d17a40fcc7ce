"""The Kubernetes primitives: quantities, durations, RFC 3339 times, names and
owner references, as Kubernetes reads and writes them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from agent.protocol import primitives
from agent.protocol.primitives import (
    controller_ref,
    format_rfc3339,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    is_quantity,
    new_controller_ref,
    now_rfc3339,
    parse_duration,
    parse_quantity,
    parse_rfc3339,
    quantity_milli_value,
    quantity_value,
    rfc3339_seconds,
)

# --- quantities ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("100m", Fraction(1, 10)),
        ("0.5", Fraction(1, 2)),
        (".25", Fraction(1, 4)),
        ("1.", 1),
        ("250000u", Fraction(1, 4)),
        ("1n", Fraction(1, 10**9)),
        ("64Mi", 64 * 2**20),
        ("1.5Gi", 3 * 2**29),
        ("1Ei", 2**60),
        ("1k", 1000),
        ("1G", 10**9),
        ("1E", 10**18),  # exa, not an exponent without digits
        ("1e3", 1000),
        ("1E-2", Fraction(1, 100)),
        ("+5", 5),
        ("0.1", Fraction(1, 10)),
        ("-1.5", Fraction(-3, 2)),
        (" 2 ", 2),
    ],
)
def test_quantity_values(text: str, want: Fraction | int) -> None:
    assert parse_quantity(text) == want


def test_quantities_from_yaml_numbers() -> None:
    assert parse_quantity(2) == 2
    assert parse_quantity(0.1) == Fraction(1, 10)
    assert quantity_milli_value(2) == 2000
    assert quantity_milli_value(0.1) == 100
    assert quantity_value(1024) == 1024


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "1.2.3",
        "5 Mi",
        "1Xi",
        "Mi",
        "1e",
        "--1",
        "1mi",
        "1K",
        "1e3m",
        ".",
        "1e65",
        "\u0661",
    ],
)
def test_invalid_quantities(bad: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(bad)


@pytest.mark.parametrize("bad", [True, float("nan"), float("inf"), None, [1]])
def test_invalid_quantity_types(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(bad)  # type: ignore[arg-type]


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
def test_cpu_milli_values(text: str, millis: int) -> None:
    assert quantity_milli_value(text) == millis


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
def test_memory_values(text: str, nbytes: int) -> None:
    assert quantity_value(text) == nbytes


def test_values_round_up_away_from_zero() -> None:
    assert quantity_milli_value("1n") == 1
    assert quantity_milli_value("0.0001") == 1
    assert quantity_milli_value("250m") == 250
    assert quantity_value("100m") == 1  # a tenth of a byte is one byte
    assert quantity_value("-1.5") == -2
    assert quantity_value("128Mi") == 128 * 2**20


def test_the_exact_value_compares_with_a_decimal() -> None:
    assert parse_quantity("100m") == Decimal("0.1")


def test_quantity_syntax() -> None:
    assert is_quantity("1e100")  # syntax only: parse_quantity bounds the exponent
    assert is_quantity("64Mi") and is_quantity("-.5")
    assert not is_quantity(" 1") and not is_quantity("1 ") and not is_quantity("1Ki2")


# --- durations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15),
        ("5m", 300),
        ("1m30s", 90),
        ("1.5h", 5400),
        ("2h45m", 9900),
        ("250ms", 0.25),
        (".5s", 0.5),
        ("5.s", 5),
        ("1ns", 1e-9),
        ("10us", 1e-5),
        ("10µs", 1e-5),  # MICRO SIGN
        ("10μs", 1e-5),  # GREEK SMALL LETTER MU
        ("0", 0),
        (" 30s\n", 30),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["", " ", "5", "s", "5x", "-5s", "+5s", "5 s", "1m 30s", "1.2.3s", "5S", "00"]
)
def test_invalid_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid duration"):
        parse_duration(bad)


# --- time ------------------------------------------------------------------------


def test_format_drops_fractions() -> None:
    assert format_rfc3339(0) == "1970-01-01T00:00:00Z"
    assert format_rfc3339(1_700_000_000.999) == "2023-11-14T22:13:20Z"
    assert format_rfc3339(-0.5) == "1969-12-31T23:59:59Z"


def test_now_is_this_second(monkeypatch: pytest.MonkeyPatch) -> None:
    before = int(time.time())
    text = now_rfc3339()
    after = int(time.time())
    assert text in {format_rfc3339(before), format_rfc3339(after)}
    clock = [1_700_000_000.2]
    monkeypatch.setattr(primitives.time, "time", lambda: clock[0])
    assert now_rfc3339() == "2023-11-14T22:13:20Z"
    clock[0] = 1_700_000_000.9  # the same second: the same text
    assert now_rfc3339() == "2023-11-14T22:13:20Z"
    clock[0] = 1_700_000_001.0
    assert now_rfc3339() == "2023-11-14T22:13:21Z"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.5Z", datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)),
        (
            "2026-01-01T00:00:00.123456789Z",  # RFC3339Nano, as CRI logs write it
            datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
        ),
        (
            "2024-05-01T14:00:00+02:00",
            datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_parse_rfc3339(text: str, want: datetime) -> None:
    assert parse_rfc3339(text) == want


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "2024-05-01",
        "2024-05-01 12:00:00Z",
        "20240501T120000Z",
        "2024-05-01T12:00:00",  # no zone
        "2024-05-01t12:00:00z",
        "2024-05-01T25:00:00Z",
        "2024-05-01T12:00:00Z ",
    ],
)
def test_invalid_times(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(bad)
    assert rfc3339_seconds(bad) is None


def test_seconds_round_trip() -> None:
    assert rfc3339_seconds(format_rfc3339(1_700_000_000)) == 1_700_000_000
    assert rfc3339_seconds("1970-01-01T01:00:00+01:00") == 0
    for nothing in (None, "", 17, ["2024-05-01T12:00:00Z"]):
        assert rfc3339_seconds(nothing) is None


# --- names -----------------------------------------------------------------------


@pytest.mark.parametrize("good", ["a", "web-1", "0abc", "a" * 63])
def test_dns1123_labels(good: str) -> None:
    assert is_dns1123_label(good)


@pytest.mark.parametrize("bad", ["", "-a", "a-", "A", "a.b", "a_b", "a" * 64, "web\n"])
def test_not_dns1123_labels(bad: str) -> None:
    assert not is_dns1123_label(bad)


@pytest.mark.parametrize(
    "good", ["a", "example.com", "a-b.c-d.e", "web-1", ".".join(["a" * 63] * 3)]
)
def test_dns1123_subdomains(good: str) -> None:
    assert is_dns1123_subdomain(good)


@pytest.mark.parametrize(
    "bad", ["", ".a", "a.", "a..b", "Example.com", "a_b.c", "a" * 254, "a.com\n", "*.a.com"]
)
def test_not_dns1123_subdomains(bad: str) -> None:
    assert not is_dns1123_subdomain(bad)


@pytest.mark.parametrize(
    "good", ["app", "App_1.x", "example.com/app", "pilothouse.io/managed", "a" * 63]
)
def test_qualified_names(good: str) -> None:
    assert is_qualified_name(good)


@pytest.mark.parametrize(
    "bad", ["", "-app", "app-", "/app", "Example.com/app", "a/b/c", "example.com/", "a" * 64]
)
def test_not_qualified_names(bad: str) -> None:
    assert not is_qualified_name(bad)


def test_label_values() -> None:
    assert is_label_value("") and is_label_value("v1.2_3-x") and is_label_value("x" * 63)
    assert not is_label_value("x" * 64) and not is_label_value("-x") and not is_label_value("a b")


# --- owner references --------------------------------------------------------------


def test_controller_ref_is_the_one_with_controller_true() -> None:
    mine = {"uid": "u2", "kind": "ReplicaSet", "controller": True}
    obj = {"metadata": {"ownerReferences": [{"uid": "u1", "kind": "ConfigMap"}, mine]}}
    assert controller_ref(obj) is mine
    assert controller_ref({"metadata": {"ownerReferences": [{"uid": "u1"}]}}) is None
    assert controller_ref({"metadata": {}}) is None
    assert controller_ref({}) is None
    assert controller_ref({"metadata": {"ownerReferences": ["junk", None]}}) is None


def test_new_controller_ref() -> None:
    owner = {"metadata": {"name": "web", "uid": "u1", "namespace": "default"}}
    ref = new_controller_ref(owner, "apps/v1", "Deployment")
    assert ref == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": "u1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert controller_ref({"metadata": {"ownerReferences": [ref]}}) == ref
