"""Leader election as Kubernetes' components do it (client-go's leaderelection).

Candidates share one lock, a Lease; its holder leads. Every candidate tries
to acquire it every retry period (with jitter). It may take the lease when
nobody holds it, or when the record it holds has not changed for the lease
duration *as observed locally*: time is measured on this process's monotonic
clock from the moment this candidate saw the record change, never from the
times written in it, so clocks need not agree. Every write is a
compare-and-swap on the version last read, so of two candidates one wins.

The leader renews every retry period; when renewing keeps failing for the
renew deadline (shorter than the lease duration), it stops leading, before any
other candidate may take over. A new holder adds one to leaseTransitions and
sets acquireTime; renewals keep both and move renewTime.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from control.objects.coordination import micro_time

log = logging.getLogger(__name__)

# client-go's JitterFactor: a candidate waits retry_period * (1 + up to 1.2).
JITTER_FACTOR = 1.2


@dataclass(frozen=True)
class ElectionTiming:
    """client-go's defaults, those of kube-scheduler and kube-controller-manager."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


@dataclass(frozen=True)
class LeaderRecord:
    """What the lock holds: client-go's LeaderElectionRecord, plus where the
    holder serves its API (`endpoint`)."""

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0
    endpoint: str = ""


class LeaseLock(Protocol):
    """The lock (control.leader.leaselock.RegistryLeaseLock over the API).
    Every method raises on failure; `update` is conditional on the version
    `get`, `create` or `update` last saw."""

    async def get(self) -> LeaderRecord | None: ...  # None: there is no lock yet

    async def create(self, record: LeaderRecord) -> None: ...

    async def update(self, record: LeaderRecord) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class LeaderElector:
    """One candidate. `run(lead)` campaigns for ever: `lead()` runs while this
    candidate leads and is cancelled (and waited for) as soon as it stops."""

    def __init__(
        self,
        lock: LeaseLock,
        identity: str,
        timing: ElectionTiming | None = None,
        *,
        endpoint: str = "",
        clock: Clock | None = None,
        jitter: Callable[[], float] = random.random,
        on_new_leader: Callable[[LeaderRecord], None] | None = None,
    ) -> None:
        if not identity:
            raise ValueError("a leader election candidate needs an identity")
        self.lock = lock
        self.identity = identity
        self.timing = timing or ElectionTiming()
        self.endpoint = endpoint
        self.clock: Clock = clock or SystemClock()
        self.jitter = jitter
        self.on_new_leader = on_new_leader
        self.observed = LeaderRecord()
        self.observed_time = 0.0  # when `observed` last changed, on the monotonic clock
        self._reported = ""  # the holder last reported to on_new_leader
        self.leading = False  # `lead` runs: from acquiring until the loss is noticed

    # -- what this candidate knows -------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.observed.holder == self.identity

    @property
    def leader(self) -> LeaderRecord | None:
        """The record of whoever holds the lock, as last observed; None when
        nobody does."""
        return self.observed if self.observed.holder else None

    def _lease_valid(self, now: float) -> bool:
        return self.observed_time + self.observed.lease_duration_seconds > now

    def _observe(self, record: LeaderRecord) -> None:
        self.observed = record
        self.observed_time = self.clock.monotonic()

    # -- one attempt -----------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the lock: client-go's tryAcquireOrRenew."""
        now = self.clock.monotonic()
        stamp = micro_time(self.clock.wall())
        record = LeaderRecord(
            holder=self.identity,
            lease_duration_seconds=int(self.timing.lease_duration),
            acquire_time=stamp,
            renew_time=stamp,
            endpoint=self.endpoint,
        )
        # 1. The leader's fast path: write over the version it last wrote.
        if self.is_leader and self._lease_valid(now):
            mine = replace(
                record,
                acquire_time=self.observed.acquire_time,
                transitions=self.observed.transitions,
            )
            if await self._write(self.lock.update, mine, "renew (the fast path; reading next)"):
                return True
        # 2. Read the lock, or create it.
        try:
            current = await self.lock.get()
        except Exception as e:
            log.warning("leader election: cannot read the lease: %s", e)
            return False
        if current is None:
            return await self._write(self.lock.create, record, "create")
        # 3. Someone else's record: it expires lease_duration after it last changed here.
        if current != self.observed:
            self._observe(current)
        if current.holder and self._lease_valid(now) and not self.is_leader:
            return False
        # 4. Take it (or keep it), conditional on the version just read.
        if self.is_leader:
            record = replace(
                record, acquire_time=current.acquire_time, transitions=current.transitions
            )
        else:
            record = replace(record, transitions=current.transitions + 1)
        return await self._write(self.lock.update, record, "write")

    async def _write(
        self, write: Callable[[LeaderRecord], Awaitable[None]], record: LeaderRecord, what: str
    ) -> bool:
        """`write(record)`; observed when it succeeds, logged when it fails."""
        try:
            await write(record)
        except Exception as e:
            log.info("leader election: cannot %s the lease: %s", what, e)
            return False
        self._observe(record)
        return True

    def _report(self) -> None:
        holder = self.observed.holder
        if holder == self._reported:
            return
        self._reported = holder
        if holder:
            log.info(
                "leader election: %s leads%s",
                "this control plane" if holder == self.identity else holder,
                f" at {self.observed.endpoint}" if self.observed.endpoint else "",
            )
        if self.on_new_leader is not None:
            self.on_new_leader(self.observed)

    # -- the loops ---------------------------------------------------------------

    async def acquire(self) -> None:
        """Try every retry period (plus jitter) until this candidate leads."""
        while True:
            acquired = await self.try_acquire_or_renew()
            self._report()
            if acquired:
                return
            period = self.timing.retry_period
            await self.clock.sleep(period + self.jitter() * JITTER_FACTOR * period)

    async def renew(self) -> None:
        """Renew every retry period; return when leadership is lost: no
        renewal succeeded for the renew deadline, or another holds the lock."""
        timing = self.timing
        while True:
            deadline = self.clock.monotonic() + timing.renew_deadline
            while True:
                left = deadline - self.clock.monotonic()
                if left <= 0:
                    log.warning(
                        "leader election: no renewal for %.1f s; stopping leading",
                        timing.renew_deadline,
                    )
                    self._report()
                    return
                try:
                    async with asyncio.timeout(left):
                        renewed = await self.try_acquire_or_renew()
                except TimeoutError:
                    renewed = False
                self._report()
                if renewed:
                    break
                if not self.is_leader:
                    # Observed another holder: ours has expired for the others already.
                    log.warning("leader election: %s took the lease", self.observed.holder)
                    return
                await self.clock.sleep(min(timing.retry_period, max(0.0, left)))
            await self.clock.sleep(timing.retry_period)

    async def release(self) -> bool:
        """Give the lock up (a clean stop), so another candidate takes over at
        once: client-go's ReleaseOnCancel."""
        if not self.is_leader:
            return True
        stamp = micro_time(self.clock.wall())
        record = LeaderRecord(
            lease_duration_seconds=1,
            acquire_time=stamp,
            renew_time=stamp,
            transitions=self.observed.transitions,
        )
        released = await self._write(self.lock.update, record, "release")
        if released:
            self._report()
        return released

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign, lead, and stand again after each loss, until cancelled.
        Cancelled while leading, or when `lead` ends by itself (a leader that
        no longer runs what it leads for must not hold the lock), it stops
        `lead` first, then releases the lock."""
        while True:
            await self.acquire()
            self.leading = True
            leading = asyncio.ensure_future(lead())
            renewing = asyncio.ensure_future(self.renew())
            gave_up = False
            try:
                await asyncio.wait((leading, renewing), return_when=asyncio.FIRST_COMPLETED)
                gave_up = leading.done() and not renewing.done()
                if gave_up:
                    error = None if leading.cancelled() else leading.exception()
                    log.error("leader election: leading ended (%r); giving the lease up", error)
            finally:
                for task in (renewing, leading):
                    task.cancel()
                await asyncio.gather(renewing, leading, return_exceptions=True)
                self.leading = False
                if gave_up or _cancelling():
                    await asyncio.shield(self.release())


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
