"""client-go's (UID-tracking) ControllerExpectations."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

# Expectations older than this are presumed lost (a missed watch event) and ignored.
EXPECTATIONS_TTL = 300.0


@dataclass
class _Expected:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    since: float = field(default_factory=time.monotonic)


class Expectations:
    """The creates and deletes a controller issued and has not yet seen.

    A controller records the creates and deletes it issues; its informer's
    events lower them. Until they are all seen, the cache does not reflect the
    controller's own writes, and acting on it would create or delete twice.
    """

    def __init__(self, ttl: float = EXPECTATIONS_TTL) -> None:
        self._ttl = ttl
        self._by_key: dict[str, _Expected] = {}

    def satisfied(self, key: str) -> bool:
        e = self._by_key.get(key)
        if e is None or (e.adds <= 0 and not e.deletes):
            return True
        return time.monotonic() - e.since > self._ttl

    def expect(self, key: str, adds: int = 0, deletes: Iterable[str] = ()) -> None:
        self._by_key[key] = _Expected(adds, set(deletes))

    def creation_observed(self, key: str) -> None:
        e = self._by_key.get(key)
        if e is not None and e.adds > 0:
            e.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.deletes.discard(pod_key)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)
