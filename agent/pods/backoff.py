"""kubelet-style restart and pull back-off."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """kubelet's restart backoff: first restart at once, then base, doubling to cap."""

    base: float = 10.0
    cap: float = 300.0
    entries: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (delay, updated)

    def _entry(self, key: str, now: float) -> tuple[float, float] | None:
        e = self.entries.get(key)
        if e is not None and now - e[1] > 2 * self.cap:
            del self.entries[key]
            return None
        return e

    def remaining(self, key: str, since: float, now: float | None = None) -> float:
        """Seconds left in back-off for an event at `since` (0: go)."""
        now = time.time() if now is None else now
        e = self._entry(key, now)
        if e is None:
            return 0.0
        return max(0.0, since + e[0] - now)

    def delay(self, key: str) -> float:
        e = self.entries.get(key)
        return e[0] if e else 0.0

    def next(self, key: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        e = self._entry(key, now)
        delay = self.base if e is None else min(e[0] * 2, self.cap)
        self.entries[key] = (delay, now)
