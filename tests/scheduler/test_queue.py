from __future__ import annotations

import asyncio

import pytest

from control.scheduler.queue import (
    ClusterEvent,
    SchedulingQueue,
    State,
    backoff_seconds,
)
from tests.scheduler.helpers import pod


async def _pop(q: SchedulingQueue) -> str:
    qp = await asyncio.wait_for(q.pop(), timeout=2)
    return qp.key


async def _empty(q: SchedulingQueue) -> bool:
    try:
        await asyncio.wait_for(q.pop(), timeout=0.05)
    except TimeoutError:
        return True
    return False


async def test_priority_then_fifo() -> None:
    q = SchedulingQueue()
    q.add(pod("low-1"))
    q.add(pod("high", priority=100))
    q.add(pod("low-2"))
    q.add(pod("negative", priority=-5))
    assert [await _pop(q) for _ in range(4)] == [
        "default/high",
        "default/low-1",
        "default/low-2",
        "default/negative",
    ]


async def test_creation_time_orders_equal_priority() -> None:
    q = SchedulingQueue()
    newer, older = pod("newer"), pod("older")
    newer.created, older.created = "2024-01-01T00:00:02Z", "2024-01-01T00:00:01Z"
    q.add(newer)
    q.add(older)
    assert await _pop(q) == "default/older"


def test_backoff_doubles_to_ten_seconds() -> None:
    assert [backoff_seconds(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


async def test_unschedulable_waits_for_a_helpful_event() -> None:
    q = SchedulingQueue()
    q.add(pod("p"))
    qp = await q.pop()
    q.requeue_unschedulable(qp, {"NodeAffinity"})
    assert qp.state is State.UNSCHEDULABLE
    qp.backoff_until = 0  # pretend the backoff is over
    q.move(ClusterEvent.POD_FREED)  # freed resources cannot fix a selector
    assert await _empty(q)
    q.move(ClusterEvent.NODE_ADDED)
    assert await _pop(q) == "default/p"
    assert q.moves == 1


async def test_event_during_attempt_is_not_lost() -> None:
    q = SchedulingQueue()
    q.add(pod("p"))
    qp = await q.pop()
    q.move(ClusterEvent.NODE_ADDED)  # arrives while the pod is being tried
    q.requeue_unschedulable(qp, {"NodeResourcesFit"})
    assert qp.state is State.BACKOFF


async def test_moved_pod_still_serves_its_backoff() -> None:
    q = SchedulingQueue()
    q.add(pod("p"))
    qp = await q.pop()
    q.requeue_unschedulable(qp, {"NodeResourcesFit"})
    q.move(ClusterEvent.NODE_ADDED)
    await asyncio.sleep(0)  # moves are applied on the next loop turn
    assert qp.state is State.BACKOFF
    assert await _empty(q)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await _pop(q) == "default/p"  # after the first attempt's 1 s backoff
    assert loop.time() - started > 0.5


async def test_spec_update_unparks_the_pod() -> None:
    q = SchedulingQueue()
    q.add(pod("p"))
    qp = await q.pop()
    q.requeue_unschedulable(qp, {"NodeAffinity"})
    qp.backoff_until = 0
    q.add(pod("p", node_selector={"disk": "ssd"}))
    assert await _pop(q) == "default/p"


async def test_delete_drops_a_pod_in_any_state() -> None:
    q = SchedulingQueue()
    q.add(pod("a"))
    q.add(pod("b"))
    q.delete("default/a")
    assert await _pop(q) == "default/b"
    assert await _empty(q)
    assert len(q) == 1  # b is in flight
    qp = q.get("default/b")
    assert qp is not None
    q.delete("default/b")
    q.requeue_backoff(qp)  # a deleted pod is not brought back
    assert len(q) == 0


@pytest.mark.parametrize("event", list(ClusterEvent))
async def test_resource_failures_move_on_every_event(event: ClusterEvent) -> None:
    q = SchedulingQueue()
    q.add(pod("p"))
    qp = await q.pop()
    q.requeue_unschedulable(qp, {"NodeResourcesFit"})
    qp.backoff_until = 0
    q.move(event)
    assert await _pop(q) == "default/p"
