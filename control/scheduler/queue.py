"""The scheduling queue, in kube-scheduler's shape.

- active: pods ready to be tried, highest spec.priority first, then oldest.
- backoff: pods that failed recently wait 1 s, doubling per attempt to 10 s.
- unschedulable: pods no node could take. They stay parked until the cluster
  changes in a way that could help the plugins that rejected them (a node
  added or changed, resources freed by a pod that left), and are flushed back
  after 5 minutes regardless, as kube-scheduler does. Nothing polls them.

A cluster change that arrives while a pod is being tried sends that pod to
backoff instead of the unschedulable set, so the change is not missed.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import time
from dataclasses import dataclass, field

from control.scheduler.podinfo import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE_SECONDS = 300.0
_FLUSH_EVERY = 30.0


class ClusterEvent(enum.Flag):
    NODE_ADDED = enum.auto()
    NODE_CHANGED = enum.auto()  # allocatable, labels, taints or cordon changed
    POD_FREED = enum.auto()  # an assigned pod left a node, or asks for less


_NODE = ClusterEvent.NODE_ADDED | ClusterEvent.NODE_CHANGED
# Which cluster events may make a node pass each filter plugin.
PLUGIN_EVENTS: dict[str, ClusterEvent] = {
    "NodeUnschedulable": _NODE,
    "NodeName": ClusterEvent.NODE_ADDED,
    "TaintToleration": _NODE,
    "NodeAffinity": _NODE,
    "NodePorts": ClusterEvent.NODE_ADDED | ClusterEvent.POD_FREED,
    "NodeResourcesFit": _NODE | ClusterEvent.POD_FREED,
}
_ANY = _NODE | ClusterEvent.POD_FREED


class State(enum.Enum):
    ACTIVE = "active"
    BACKOFF = "backoff"
    UNSCHEDULABLE = "unschedulable"
    IN_FLIGHT = "in flight"


@dataclass(slots=True, eq=False)
class QueuedPod:
    info: PodInfo
    seq: int  # arrival order, the last tie-breaker
    state: State = State.ACTIVE
    attempts: int = 0
    cycle: int = 0  # the scheduling cycle of the latest attempt
    token: int = 0  # which heap entry is current
    backoff_until: float = 0.0
    parked_at: float = 0.0
    rejected_by: ClusterEvent = _ANY  # events that may help, from the rejecting plugins
    updated: bool = False  # the pod changed while it was being tried
    deleted: bool = False
    reported: str = ""  # the last unschedulable message written for it
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return self.info.key


def backoff_seconds(attempts: int) -> float:
    return min(MAX_BACKOFF, INITIAL_BACKOFF * 2 ** max(0, attempts - 1))


class SchedulingQueue:
    def __init__(self) -> None:
        self._pods: dict[str, QueuedPod] = {}
        self._heap: list[tuple[int, str, int, int, str]] = []
        self._unschedulable: dict[str, QueuedPod] = {}
        self._wake = asyncio.Event()
        self._seq = itertools.count()
        self._tokens = itertools.count(1)
        self._cycle = 0
        self._moved_at_cycle = 0  # cycle current when the latest move request came
        self._pending_moves = ClusterEvent(0)
        self._move_scheduled = False
        self._flush_timer: asyncio.TimerHandle | None = None
        self.moves = 0  # pods moved out of the unschedulable set, for tests and stats

    def __len__(self) -> int:
        return len(self._pods)

    def get(self, key: str) -> QueuedPod | None:
        return self._pods.get(key)

    # -- informer side -------------------------------------------------------

    def add(self, info: PodInfo) -> None:
        """A pending pod was added or updated."""
        qp = self._pods.get(info.key)
        if qp is None:
            qp = QueuedPod(info, next(self._seq))
            self._pods[info.key] = qp
            self._push(qp)
            return
        changed = _changed_for_scheduling(qp.info, info)
        qp.info = info
        if not changed:
            return
        if qp.state is State.IN_FLIGHT:
            qp.updated = True
        elif qp.state is State.UNSCHEDULABLE:
            self._unpark(qp)

    def delete(self, key: str) -> None:
        qp = self._pods.pop(key, None)
        if qp is None:
            return
        qp.deleted = True
        self._unschedulable.pop(key, None)
        if qp.timer is not None:
            qp.timer.cancel()
            qp.timer = None

    def move(self, event: ClusterEvent) -> None:
        """The cluster changed: unpark the pods this may help (coalesced per loop turn)."""
        self._moved_at_cycle = self._cycle
        if not self._unschedulable:
            return
        self._pending_moves |= event
        if not self._move_scheduled:
            self._move_scheduled = True
            asyncio.get_running_loop().call_soon(self._apply_moves)

    def _apply_moves(self) -> None:
        events, self._pending_moves = self._pending_moves, ClusterEvent(0)
        self._move_scheduled = False
        for qp in [p for p in self._unschedulable.values() if p.rejected_by & events]:
            self._unpark(qp)

    # -- scheduler side ------------------------------------------------------

    async def pop(self) -> QueuedPod:
        """The next pod to try; it stays in flight until done() or a requeue."""
        while True:
            while self._heap:
                _, _, _, token, key = heapq.heappop(self._heap)
                qp = self._pods.get(key)
                if qp is None or qp.state is not State.ACTIVE or qp.token != token:
                    continue  # stale entry
                self._cycle += 1
                qp.state = State.IN_FLIGHT
                qp.cycle = self._cycle
                qp.attempts += 1
                qp.updated = False
                return qp
            self._wake.clear()
            await self._wake.wait()

    def done(self, qp: QueuedPod) -> None:
        """The pod was assumed onto a node; the queue forgets it."""
        if self._pods.get(qp.key) is qp:
            del self._pods[qp.key]

    def requeue_unschedulable(self, qp: QueuedPod, rejected_by: set[str]) -> None:
        if qp.deleted:
            return
        self._pods[qp.key] = qp
        events = ClusterEvent(0)
        for plugin in rejected_by:
            events |= PLUGIN_EVENTS.get(plugin, _ANY)
        qp.rejected_by = events or _ANY
        qp.backoff_until = time.monotonic() + backoff_seconds(qp.attempts)
        if qp.updated or self._moved_at_cycle >= qp.cycle:
            self._to_backoff(qp)  # something changed while it was tried
            return
        qp.state = State.UNSCHEDULABLE
        qp.parked_at = time.monotonic()
        self._unschedulable[qp.key] = qp
        self._arm_flush()

    def requeue_backoff(self, qp: QueuedPod) -> None:
        """An error (not a verdict of the filters): try again after the backoff."""
        if qp.deleted:
            return
        self._pods[qp.key] = qp
        qp.backoff_until = time.monotonic() + backoff_seconds(qp.attempts)
        self._to_backoff(qp)

    def close(self) -> None:
        for qp in self._pods.values():
            if qp.timer is not None:
                qp.timer.cancel()
                qp.timer = None
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None

    # -- internals -----------------------------------------------------------

    def _push(self, qp: QueuedPod) -> None:
        qp.state = State.ACTIVE
        qp.token = next(self._tokens)
        heapq.heappush(self._heap, (-qp.info.priority, qp.info.created, qp.seq, qp.token, qp.key))
        self._wake.set()

    def _unpark(self, qp: QueuedPod) -> None:
        self._unschedulable.pop(qp.key, None)
        self.moves += 1
        if time.monotonic() < qp.backoff_until:
            self._to_backoff(qp)
        else:
            self._push(qp)

    def _to_backoff(self, qp: QueuedPod) -> None:
        self._unschedulable.pop(qp.key, None)
        delay = qp.backoff_until - time.monotonic()
        if delay <= 0:
            self._push(qp)
            return
        qp.state = State.BACKOFF
        if qp.timer is not None:
            qp.timer.cancel()
        qp.timer = asyncio.get_running_loop().call_later(delay, self._backoff_done, qp)

    def _backoff_done(self, qp: QueuedPod) -> None:
        qp.timer = None
        if self._pods.get(qp.key) is qp and qp.state is State.BACKOFF:
            self._push(qp)

    def _arm_flush(self) -> None:
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(_FLUSH_EVERY, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        cutoff = time.monotonic() - MAX_UNSCHEDULABLE_SECONDS
        for qp in [p for p in self._unschedulable.values() if p.parked_at <= cutoff]:
            self._unpark(qp)
        if self._unschedulable:
            self._arm_flush()


def _changed_for_scheduling(old: PodInfo, new: PodInfo) -> bool:
    if old.obj is new.obj:
        return False
    old_meta = old.obj.get("metadata") or {}
    new_meta = new.obj.get("metadata") or {}
    return old.obj.get("spec") != new.obj.get("spec") or old_meta.get(
        "ownerReferences"
    ) != new_meta.get("ownerReferences")
