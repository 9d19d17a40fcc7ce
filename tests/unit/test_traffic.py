"""The console's samples of the ingress routes' traffic."""

from __future__ import annotations

from typing import Any

from console.tui.traffic import HISTORY, RouteTraffic


def _stats(requests: int, rps: float, http5xx: int, p99: float | None = None) -> dict[str, Any]:
    return {"requests": requests, "requestsPerSecond": rps, "http5xx": http5xx, "p99Ms": p99}


def test_5xx_share_is_of_the_requests_since_the_poll_before() -> None:
    t = RouteTraffic()
    t.update({"r": _stats(100, 4.0, 50)})
    assert t.routes["r"].error_share == 0.5  # the first poll: the totals
    t.update({"r": _stats(200, 8.0, 60, 12.5)})
    assert t.routes["r"].error_share == 0.1
    assert t.routes["r"].p99_ms == 12.5
    t.update({"r": _stats(200, 0.0, 60)})
    assert t.routes["r"].error_share is None  # no request since
    t.update({"r": _stats(10, 1.0, 1)})  # a proxy restarted: its counters went down
    assert t.routes["r"].error_share == 0.1
    assert t.fractions("r") == [0.5, 1.0, 0.0, 0.125]


def test_history_is_bounded_and_forgets_routes_gone() -> None:
    t = RouteTraffic()
    for i in range(HISTORY + 5):
        t.update({"a": _stats(i, float(i), 0), "b": _stats(0, 0.0, 0)})
    assert len(t.history["a"]) == HISTORY
    assert t.fractions("b") == [0.0] * HISTORY
    t.failed("HTTP 503")
    assert t.error == "HTTP 503" and "a" in t.routes  # the last samples stay
    t.update({"a": _stats(1, 1.0, 0)})
    assert t.error == "" and "b" not in t.history and t.fractions("b") == []
