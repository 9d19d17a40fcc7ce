"""Two leader election candidates against one API server, through the
registry and the Lease (short timings): exactly one leads; when the leader
stops renewing, the other takes over within the lease duration and about two
retry periods, and the two never lead at once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from control.controlplane import ControlPlane
from control.leader.election import JITTER_FACTOR, ElectionTiming, LeaderElector, LeaderRecord
from control.leader.leaselock import RegistryLeaseLock
from control.objects.kinds import LEASE
from control.wire import LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE
from tests.polling import eventually

TIMING = ElectionTiming(lease_duration=2.0, renew_deadline=1.0, retry_period=0.25)


class CuttableLock:
    """A candidate's lock whose calls fail once cut, as when it loses the API."""

    def __init__(self, lock: RegistryLeaseLock) -> None:
        self.lock = lock
        self.cut = False

    def _check(self) -> None:
        if self.cut:
            raise ConnectionError("cut off from the API")

    async def get(self) -> LeaderRecord | None:
        self._check()
        return await self.lock.get()

    async def create(self, record: LeaderRecord) -> None:
        self._check()
        await self.lock.create(record)

    async def update(self, record: LeaderRecord) -> None:
        self._check()
        await self.lock.update(record)


class Candidate:
    def __init__(self, plane: ControlPlane, name: str, log: list[tuple[float, str, str]]) -> None:
        self.name = name
        self.lock = CuttableLock(
            RegistryLeaseLock(plane.registry, LEADER_LEASE_NAMESPACE, LEADER_LEASE_NAME)
        )
        self.elector = LeaderElector(
            self.lock, name, TIMING, endpoint=f"https://{name}.example:6443"
        )
        self.log = log
        self.task: asyncio.Task[None] | None = None

    async def lead(self) -> None:
        self.log.append((time.monotonic(), self.name, "start"))
        try:
            await asyncio.Event().wait()
        finally:
            self.log.append((time.monotonic(), self.name, "stop"))

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run(self.lead))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def never_two_at_once(log: list[tuple[float, str, str]]) -> None:
    leading: set[str] = set()
    for _at, name, what in sorted(log):
        if what == "start":
            leading.add(name)
            assert len(leading) == 1, f"two leaders at once: {sorted(leading)}"
        else:
            leading.discard(name)


@contextlib.asynccontextmanager
async def two_candidates(
    plane: ControlPlane,
) -> AsyncIterator[tuple[Candidate, Candidate, list[tuple[float, str, str]]]]:
    """cp-a, leading, and cp-b, following; their terms logged; both stopped after."""
    log: list[tuple[float, str, str]] = []
    a, b = Candidate(plane, "cp-a", log), Candidate(plane, "cp-b", log)
    a.start()
    try:
        await eventually(lambda: a.elector.leading, "cp-a to lead")
        b.start()
        yield a, b, log
    finally:
        await a.stop()
        await b.stop()


async def stored_lease(plane: ControlPlane) -> dict[str, Any]:
    return (await plane.registry.get(LEASE, LEADER_LEASE_NAMESPACE, LEADER_LEASE_NAME)).obj


async def test_one_leader_then_takeover_when_it_stops_renewing(plane: ControlPlane) -> None:
    async with two_candidates(plane) as (a, b, log):
        # Several lease durations: a keeps renewing, b keeps following.
        for _ in range(12):
            await asyncio.sleep(TIMING.lease_duration / 4)
            assert a.elector.leading and not b.elector.leading
            seen = b.elector.leader
            assert seen is not None and seen.holder == "cp-a"
            assert seen.endpoint == "https://cp-a.example:6443"
        lease = await stored_lease(plane)
        assert lease["spec"]["holderIdentity"] == "cp-a"
        assert lease["spec"]["leaseTransitions"] == 0
        acquired = lease["spec"]["acquireTime"]
        assert lease["spec"]["renewTime"] > acquired

        a.lock.cut = True  # a stops renewing
        cut_at = time.monotonic()
        await eventually(lambda: b.elector.leading, "cp-b to take over", within=10)
        took = time.monotonic() - cut_at
        longest_retry = TIMING.retry_period * (1 + JITTER_FACTOR)
        assert took <= TIMING.lease_duration + 2 * longest_retry + 0.5, took
        assert took >= TIMING.lease_duration - TIMING.retry_period, took
        await eventually(lambda: not a.elector.leading, "cp-a to stop leading")

        lease = await stored_lease(plane)
        spec = lease["spec"]
        assert spec["holderIdentity"] == "cp-b" and spec["leaseTransitions"] == 1
        assert spec["acquireTime"] > acquired and spec["leaseDurationSeconds"] == 2
        annotations = lease["metadata"]["annotations"]
        assert annotations["pilothouse.io/leader-endpoint"] == "https://cp-b.example:6443"

        # a comes back: it follows b now.
        a.lock.cut = False
        await asyncio.sleep(TIMING.lease_duration)
        assert b.elector.leading and not a.elector.leading
        seen = a.elector.leader
        assert seen is not None and seen.holder == "cp-b"
        never_two_at_once(log)
        assert [(name, what) for _at, name, what in sorted(log)] == [
            ("cp-a", "start"),
            ("cp-a", "stop"),
            ("cp-b", "start"),
        ]


async def test_a_clean_stop_hands_over_at_once(plane: ControlPlane) -> None:
    async with two_candidates(plane) as (a, b, log):
        await asyncio.sleep(TIMING.retry_period * 3)
        stopped_at = time.monotonic()
        await a.stop()  # releases the lease
        await eventually(lambda: b.elector.leading, "cp-b to take over", within=10)
        # No lease duration to wait out: b's next try takes it.
        assert time.monotonic() - stopped_at <= TIMING.retry_period * (1 + JITTER_FACTOR) + 0.5
        never_two_at_once(log)
        lease = await stored_lease(plane)
        assert lease["spec"]["holderIdentity"] == "cp-b"
        assert lease["spec"]["leaseTransitions"] == 1
