"""The leader elector's state machine (client-go's leaderelection) against a
fake clock and a fake lease: acquire, renew, expiry as observed locally,
compare-and-swap conflicts, the renew deadline, and leaseTransitions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from control.leader.election import ElectionTiming, LeaderElector, LeaderRecord

TIMING = ElectionTiming(lease_duration=15.0, renew_deadline=10.0, retry_period=2.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.now)

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Conflict(Exception):
    pass


@dataclass
class Stored:
    record: LeaderRecord | None = None
    version: int = 0
    down: bool = False  # every call fails, as an unreachable API would
    writes: int = 0


class FakeLock:
    """One candidate's view of a shared lease: updates are conditional on the
    version this candidate last read or wrote."""

    def __init__(self, stored: Stored) -> None:
        self.stored = stored
        self.seen = -1
        self.after_get: Callable[[], Awaitable[None]] | None = None  # runs once, after a read

    def _check(self) -> None:
        if self.stored.down:
            raise ConnectionError("the API is unreachable")

    async def get(self) -> LeaderRecord | None:
        self._check()
        self.seen = self.stored.version
        record = self.stored.record
        hook, self.after_get = self.after_get, None
        if hook is not None:
            await hook()
        return record

    async def create(self, record: LeaderRecord) -> None:
        self._check()
        if self.stored.record is not None:
            raise Conflict("AlreadyExists")
        self._write(record)

    async def update(self, record: LeaderRecord) -> None:
        self._check()
        if self.seen != self.stored.version:
            raise Conflict("the object has been modified")
        self._write(record)

    def _write(self, record: LeaderRecord) -> None:
        self.stored.version += 1
        self.stored.writes += 1
        self.stored.record = record
        self.seen = self.stored.version


async def until(condition: Callable[[], bool]) -> None:
    """Let the fake-clocked tasks run until `condition` holds."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def candidate(stored: Stored, clock: FakeClock, identity: str, endpoint: str = "") -> LeaderElector:
    return LeaderElector(
        FakeLock(stored), identity, TIMING, endpoint=endpoint, clock=clock, jitter=lambda: 0.0
    )


async def test_acquire_creates_the_lease_with_the_record() -> None:
    stored, clock = Stored(), FakeClock()
    a = candidate(stored, clock, "a", "https://a:6443")
    assert await a.try_acquire_or_renew()
    assert a.is_leader
    record = stored.record
    assert record is not None
    assert record.holder == "a" and record.endpoint == "https://a:6443"
    assert record.lease_duration_seconds == 15 and record.transitions == 0
    assert record.acquire_time == record.renew_time == "2026-01-01T00:16:40.000000Z"


async def test_renew_moves_renew_time_and_keeps_acquire_time_and_transitions() -> None:
    stored, clock = Stored(), FakeClock()
    a = candidate(stored, clock, "a")
    assert await a.try_acquire_or_renew()
    first = stored.record
    assert first is not None
    clock.advance(2)
    assert await a.try_acquire_or_renew()
    renewed = stored.record
    assert renewed is not None and renewed.holder == "a"
    assert renewed.acquire_time == first.acquire_time
    assert renewed.renew_time > first.renew_time
    assert renewed.transitions == 0


async def test_a_held_lease_is_not_taken_until_it_expires_as_observed_locally() -> None:
    stored, clock = Stored(), FakeClock()
    a, b = candidate(stored, clock, "a"), candidate(stored, clock, "b")
    assert await a.try_acquire_or_renew()
    clock.advance(100)  # b has never looked: expiry counts from b's first sight
    assert not await b.try_acquire_or_renew()
    assert b.leader is not None and b.leader.holder == "a" and not b.is_leader
    clock.advance(14.9)
    assert not await b.try_acquire_or_renew()  # unchanged for 14.9 s: still a's
    clock.advance(0.2)
    assert await b.try_acquire_or_renew()  # unchanged for 15.1 s: expired
    record = stored.record
    assert record is not None and record.holder == "b" and record.transitions == 1
    assert record.acquire_time == record.renew_time


async def test_each_renewal_seen_restarts_the_expiry() -> None:
    stored, clock = Stored(), FakeClock()
    a, b = candidate(stored, clock, "a"), candidate(stored, clock, "b")
    assert await a.try_acquire_or_renew()
    for _ in range(20):
        assert not await b.try_acquire_or_renew()
        clock.advance(10)
        assert await a.try_acquire_or_renew()
    assert stored.record is not None and stored.record.holder == "a"


async def test_a_compare_and_swap_conflict_loses_the_race() -> None:
    stored, clock = Stored(), FakeClock()
    a, b, c = (candidate(stored, clock, n) for n in "abc")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert not await c.try_acquire_or_renew()
    clock.advance(16)

    async def b_writes_first() -> None:
        assert await b.try_acquire_or_renew()

    # c reads the expired lease, b takes it, then c's conditional write is refused.
    lock_c = c.lock
    assert isinstance(lock_c, FakeLock)
    lock_c.after_get = b_writes_first
    assert not await c.try_acquire_or_renew()
    assert not c.is_leader and b.is_leader
    assert stored.record is not None and stored.record.holder == "b"
    assert stored.record.transitions == 1
    assert not await c.try_acquire_or_renew()  # and now c sees b's fresh lease


async def test_the_leader_falls_back_to_reading_after_a_conflict() -> None:
    stored, clock = Stored(), FakeClock()
    a = candidate(stored, clock, "a")
    assert await a.try_acquire_or_renew()
    stored.version += 1  # someone touched the lease (same record): the fast path conflicts
    clock.advance(2)
    assert await a.try_acquire_or_renew()  # read, still ours, renewed
    assert stored.record is not None and stored.record.holder == "a"


async def test_transitions_count_every_change_of_holder() -> None:
    stored, clock = Stored(), FakeClock()
    a, b = candidate(stored, clock, "a"), candidate(stored, clock, "b")
    assert await a.try_acquire_or_renew()
    for expected, (winner, loser) in enumerate([(b, a), (a, b), (b, a)], start=1):
        assert not await winner.try_acquire_or_renew()
        clock.advance(16)
        assert await winner.try_acquire_or_renew()
        assert stored.record is not None and stored.record.transitions == expected
        assert not await loser.try_acquire_or_renew()
        assert not loser.is_leader


async def test_a_released_lease_is_taken_at_once() -> None:
    stored, clock = Stored(), FakeClock()
    a, b = candidate(stored, clock, "a"), candidate(stored, clock, "b")
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.release()
    assert stored.record is not None and stored.record.holder == ""
    assert stored.record.lease_duration_seconds == 1
    assert await b.try_acquire_or_renew()
    assert stored.record.holder == "b" and stored.record.transitions == 1


async def test_renew_returns_when_the_renew_deadline_passes() -> None:
    stored, clock = Stored(), FakeClock()
    a = candidate(stored, clock, "a")
    await a.acquire()
    renewing = asyncio.create_task(a.renew())
    for _ in range(50):
        await asyncio.sleep(0)
    assert not renewing.done()
    writes = stored.writes
    assert writes > 1  # renewed every retry period
    stored.down = True
    lost_from = clock.now
    await asyncio.wait_for(renewing, 5)
    # Lost within the renew deadline after the last renewal, before the lease expired.
    assert TIMING.renew_deadline <= clock.now - lost_from + TIMING.retry_period
    assert clock.now - lost_from <= TIMING.renew_deadline + TIMING.retry_period
    assert clock.now - lost_from < TIMING.lease_duration


async def test_renew_returns_when_another_holds_the_lease() -> None:
    stored, clock = Stored(), FakeClock()
    a = candidate(stored, clock, "a")
    await a.acquire()
    stored.record = replace(stored.record or LeaderRecord(), holder="b")
    stored.version += 1
    await asyncio.wait_for(a.renew(), 5)
    assert not a.is_leader


async def test_run_leads_stops_on_loss_and_stands_again() -> None:
    stored, clock = Stored(), FakeClock()
    a = candidate(stored, clock, "a")
    terms: list[str] = []

    async def lead() -> None:
        terms.append("start")
        try:
            await asyncio.Event().wait()
        finally:
            terms.append("stop")

    running = asyncio.create_task(a.run(lead))
    for _ in range(20):
        await asyncio.sleep(0)
    assert terms == ["start"] and a.leading
    stored.down = True
    await until(lambda: not a.leading)
    assert terms == ["start", "stop"]
    stored.down = False
    await until(lambda: len(terms) == 3)
    assert a.leading
    assert terms == ["start", "stop", "start"]
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert terms[-1] == "stop"
    # A clean stop released the lease: the next candidate need not wait.
    assert stored.record is not None and stored.record.holder == ""


async def test_a_leader_whose_work_ends_gives_the_lease_up() -> None:
    stored, clock = Stored(), FakeClock()
    a = candidate(stored, clock, "a")
    terms = 0

    async def lead() -> None:
        nonlocal terms
        terms += 1
        if terms == 1:
            raise RuntimeError("a component could not start")
        await asyncio.Event().wait()

    running = asyncio.create_task(a.run(lead))
    await until(lambda: terms == 2 and a.leading)
    # The first term released the lease; the second took it again as a new holder.
    assert stored.record is not None and stored.record.holder == "a"
    assert stored.record.transitions == 1
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


def test_an_identity_is_required() -> None:
    with pytest.raises(ValueError, match="identity"):
        LeaderElector(FakeLock(Stored()), "", TIMING)
