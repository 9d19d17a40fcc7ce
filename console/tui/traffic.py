"""The ingress routes' live traffic as the console samples it: each poll of
the API's merged `ingress_stats` (control.client.Client.ingress_stats) adds a
requests-per-second sample per route, for the sparkline, and gives the share
of 5xx answers among the requests since the poll before.

The counters are the proxies' totals since they started, summed over the
ingress nodes that answered; when they go down (a proxy restarted, a node left
out) the share is taken from the new totals alone.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

# How often the Ingress routes view asks for the traffic, in seconds.
POLL_SECONDS = 1.5
# Samples in a route's sparkline.
HISTORY = 20


@dataclass
class RouteSample:
    requests_per_second: float
    p99_ms: float | None
    error_share: float | None  # 5xx among the requests since the poll before; None: none
    requests: int
    http5xx: int


@dataclass
class RouteTraffic:
    routes: dict[str, RouteSample] = field(default_factory=dict)  # by route name
    history: dict[str, deque[float]] = field(default_factory=dict)  # requests per second
    error: str = ""  # why the last poll failed ("" when it did not)
    polls: int = 0  # successful polls

    def update(self, routes: dict[str, Any]) -> None:
        """Take one poll's merged statistics (route name -> RouteStatsWire)."""
        fresh: dict[str, RouteSample] = {}
        for name, stats in routes.items():
            requests, http5xx = int(stats.get("requests") or 0), int(stats.get("http5xx") or 0)
            before = self.routes.get(name)
            new, failed = requests, http5xx
            if before is not None and requests >= before.requests and http5xx >= before.http5xx:
                new, failed = requests - before.requests, http5xx - before.http5xx
            p99 = stats.get("p99Ms")
            rate = float(stats.get("requestsPerSecond") or 0.0)
            fresh[name] = RouteSample(
                rate,
                None if p99 is None else float(p99),
                failed / new if new else None,
                requests,
                http5xx,
            )
            self.history.setdefault(name, deque(maxlen=HISTORY)).append(rate)
        for gone in self.history.keys() - fresh.keys():
            del self.history[gone]
        self.routes = fresh
        self.error = ""
        self.polls += 1

    def failed(self, error: str) -> None:
        """The poll failed: the last samples stay, marked stale by `error`."""
        self.error = error

    def fractions(self, name: str) -> list[float]:
        """The route's samples as fractions of their peak, for a sparkline."""
        samples = self.history.get(name) or ()
        peak = max(samples, default=0.0)
        return [s / peak if peak else 0.0 for s in samples]
