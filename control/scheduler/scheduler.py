"""The scheduler: assigns pending pods to nodes, as kube-scheduler does.

One cycle per pod, without awaiting anything in between:
- filter nodes, starting where the previous cycle stopped and stopping once
  `percentageOfNodesToScore` worth of feasible nodes is found;
- score the feasible ones and pick the best (ties broken at random). The
  score board (`scoreboard.py`) remembers verdicts per pod shape and node, so
  a cycle recomputes only what changed since;
- assume the pod onto that node in the cache, so the next cycle counts it;
- bind it in a background task, with a bounded number of binds in flight.

A pod no node can take gets `PodScheduled=False` with kube-scheduler's message
and a FailedScheduling event (once per distinct message), then waits in the
queue's unschedulable set for a cluster change that could help.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from agent.protocol.primitives import now_rfc3339
from control.api.registry import Registry
from control.config import Config
from control.errors import ApiError
from control.machinery.events import EventRecorder
from control.machinery.informer import Informer
from control.objects import Obj
from control.objects.kinds import NODE, POD, ResourceType, object_key
from control.scheduler.cache import NodeChange, SchedulerCache
from control.scheduler.filters import FILTERS, find_feasible
from control.scheduler.podinfo import DEFAULT_SCHEDULER, PodInfo, pod_info, same_for_scheduling
from control.scheduler.queue import ClusterEvent, QueuedPod, SchedulingQueue
from control.scheduler.scoreboard import ScoreBoard

log = logging.getLogger(__name__)

COMPONENT = "default-scheduler"
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
BIND_CONCURRENCY = 64
EVENT_BACKLOG = 10000  # Events beyond this are dropped, as kube's broadcaster does
EVENT_WORKERS = 4
NO_NODES = "no nodes available to schedule pods"
_ALL_FILTERS = frozenset(name for name, _ in FILTERS)


def num_feasible_nodes_to_find(percentage: int, num_nodes: int) -> int:
    """kube-scheduler's early exit: how many feasible nodes are enough."""
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return num_nodes
    if percentage <= 0:  # adaptive: 50% on small clusters, less on big ones
        percentage = max(MIN_FEASIBLE_NODES_PERCENTAGE, 50 - num_nodes // 125)
    return max(MIN_FEASIBLE_NODES_TO_FIND, num_nodes * percentage // 100)


def unschedulable_message(num_nodes: int, reasons: dict[str, int]) -> str:
    """`0/3 nodes are available: 2 Insufficient cpu, 1 node(s) were unschedulable.`"""
    if num_nodes == 0:
        return f"0/0 nodes are available: {NO_NODES}."
    ordered = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    detail = ", ".join(f"{count} {reason}" for reason, count in ordered)
    return f"0/{num_nodes} nodes are available: {detail}."


class _EventSink:
    """Records Events off the scheduling path, with a bounded backlog."""

    def __init__(self, registry: Registry) -> None:
        self.recorder = EventRecorder(registry, COMPONENT)
        self._queue: asyncio.Queue[tuple[Obj, str, str, str]] = asyncio.Queue(EVENT_BACKLOG)
        self.dropped = 0

    def emit(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        try:
            self._queue.put_nowait((obj, type_, reason, message))
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        async def worker() -> None:
            while True:
                obj, type_, reason, message = await self._queue.get()
                await self.recorder.record(obj, type_, reason, message)

        await asyncio.gather(*(worker() for _ in range(EVENT_WORKERS)))


class Scheduler:
    def __init__(
        self,
        registry: Registry,
        config: Config,
        *,
        informers: Callable[[ResourceType], Informer] | None = None,
        bind_concurrency: int = BIND_CONCURRENCY,
    ) -> None:
        """`informers` gives shared informers that someone else runs (the
        controller manager's), not started yet so that the scheduler's handlers
        see every object; without it the scheduler runs its own."""
        self.registry = registry
        self.percentage = config.scheduler.percentage_of_nodes_to_score
        self.cache = SchedulerCache()
        self.board = ScoreBoard(self.cache)
        self.queue = SchedulingQueue()
        self._own_informers = informers is None
        get = informers or (lambda rt: Informer(registry, rt))
        self.node_informer = get(NODE)
        self.pod_informer = get(POD)
        self.node_informer.add_handler(self._on_node)
        self.pod_informer.add_handler(self._on_pod)
        self.events = _EventSink(registry)
        self._bind_slots = asyncio.Semaphore(bind_concurrency)
        self._background: set[asyncio.Task[None]] = set()
        self._next_start = 0
        self.synced = asyncio.Event()
        # Counters for tests and benchmarks.
        self.attempts = 0  # scheduling cycles run
        self.bound = 0
        self.unschedulable = 0

    async def run(self) -> None:
        """Watch nodes and pods, then schedule until cancelled."""
        tasks = [asyncio.create_task(self.events.run(), name="scheduler-events")]
        if self._own_informers:
            tasks += [
                asyncio.create_task(self.node_informer.run(), name="scheduler-nodes"),
                asyncio.create_task(self.pod_informer.run(), name="scheduler-pods"),
            ]
        try:
            await _wait_synced([self.node_informer, self.pod_informer], tasks)
            self.synced.set()
            log.info("scheduler: %d nodes, %d pods pending", len(self.cache), len(self.queue))
            loop = asyncio.create_task(self._schedule_loop(), name="scheduler-loop")
            tasks.append(loop)
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # an informer or the loop failed: surface it
        except Exception:
            log.exception("scheduler stopped")
            raise
        finally:
            self.queue.close()
            pending = [*tasks, *self._background]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- informer handlers -----------------------------------------------------

    def _on_node(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            if old is not None:
                self.cache.remove_node(str((old.get("metadata") or {}).get("name")))
            return
        change = self.cache.set_node(new)
        if change is NodeChange.ADDED:
            self.queue.move(ClusterEvent.NODE_ADDED)
        elif change is NodeChange.CHANGED:
            self.queue.move(ClusterEvent.NODE_CHANGED)

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            if old is not None:
                key = object_key(old)
                self.queue.delete(key)
                if self.cache.remove_pod(key):
                    self.queue.move(ClusterEvent.POD_FREED)
            return
        if old is not None and same_for_scheduling(old, new):
            queued = self.queue.get(object_key(new))
            if queued is not None:
                queued.info.obj = new  # keep the latest status for the condition check
            return
        key = object_key(new)
        if self.cache.confirm(key, new):
            self.queue.delete(key)
            return  # our binding, seen in the watch: nothing to recount
        spec = new.get("spec") or {}
        if not spec.get("nodeName") and (spec.get("schedulerName") or DEFAULT_SCHEDULER) != (
            DEFAULT_SCHEDULER
        ):
            # Another scheduler's pending pod: not ours to place, and it holds
            # nothing on a node yet; checked before the whole pod is read.
            self.queue.delete(key)
            return
        info = pod_info(new)
        if info.node_name:
            self.queue.delete(info.key)
            freed = self.cache.remove_pod(info.key) if info.terminal else self.cache.add_pod(info)
            if freed:
                self.queue.move(ClusterEvent.POD_FREED)
        elif self.cache.is_assumed(info.key):
            pass  # our binding is on its way; this event predates it
        elif info.wants_default_scheduler():
            self.queue.add(info)
        else:
            self.queue.delete(info.key)

    # -- scheduling ------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        while True:
            qp = await self.queue.pop()
            await self._bind_slots.acquire()
            try:
                node = self._schedule_one(qp)
            except Exception:
                log.exception("scheduler: scheduling %s failed", qp.key)
                self.queue.requeue_backoff(qp)
                node = None
            if node is None:
                self._bind_slots.release()
            else:
                self._spawn(self._bind(qp, node))
            await asyncio.sleep(0)  # let the API server and informers in

    def _schedule_one(self, qp: QueuedPod) -> str | None:
        """One scheduling cycle; the node the pod was assumed onto, or None."""
        pod = qp.info
        if qp.deleted or not pod.wants_default_scheduler():
            self.queue.done(qp)
            return None
        self.attempts += 1
        nodes = self.cache.order
        to_find = num_feasible_nodes_to_find(self.percentage, len(nodes))
        chosen, processed = self.board.select(pod, self._next_start, to_find)
        if nodes:
            self._next_start = (self._next_start + processed) % len(nodes)
        if chosen is None:
            # Every node said no; ask each filter why, for the message.
            _, _, reasons, rejected_by = find_feasible(pod, nodes, 0, to_find)
            self.unschedulable += 1
            if not nodes:
                rejected_by = set(_ALL_FILTERS)
            self.queue.requeue_unschedulable(qp, rejected_by)
            self._report_unschedulable(qp, unschedulable_message(len(nodes), reasons))
            return None
        self.cache.assume(pod, chosen.name)
        self.queue.done(qp)
        return chosen.name

    async def _bind(self, qp: QueuedPod, node: str) -> None:
        pod = qp.info
        try:
            await self.registry.bind(pod.namespace, pod.name, node)
        except ApiError as e:
            self._bind_failed(qp, e)
        except Exception as e:
            log.exception("scheduler: binding %s to %s failed", pod.key, node)
            self._bind_failed(qp, e)
        else:
            self.bound += 1
            self.events.emit(
                pod.obj,
                "Normal",
                "Scheduled",
                f"Successfully assigned {pod.namespace}/{pod.name} to {node}",
            )
        finally:
            self._bind_slots.release()

    def _bind_failed(self, qp: QueuedPod, error: Exception) -> None:
        key = qp.key
        if self.cache.forget(key):
            self.queue.move(ClusterEvent.POD_FREED)
        current = self.pod_informer.get(key)
        gone = current is None or (current.get("spec") or {}).get("nodeName")
        if isinstance(error, ApiError):
            gone = gone or error.code == 404 or "already assigned" in error.message
        if gone:
            return  # deleted, or bound by someone else meanwhile: nothing to do
        if isinstance(error, ApiError):
            log.info("scheduler: binding %s failed, will retry: %s", key, error)
        self.queue.requeue_backoff(qp)

    def _report_unschedulable(self, qp: QueuedPod, message: str) -> None:
        if message in (qp.reported, _scheduled_condition_message(qp.info.obj)):
            return
        qp.reported = message
        self._spawn(self._write_unschedulable(qp.info, message))

    async def _write_unschedulable(self, pod: PodInfo, message: str) -> None:
        pending = True

        def patch(obj: Obj) -> Obj:
            nonlocal pending
            if (obj.get("spec") or {}).get("nodeName"):
                pending = False
                return obj  # bound meanwhile; leave its condition alone
            status = obj.setdefault("status", {})
            conditions = list(status.get("conditions") or [])
            previous = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
            since = (
                previous.get("lastTransitionTime")
                if previous and previous.get("status") == "False"
                else None
            )
            conditions = [c for c in conditions if c.get("type") != "PodScheduled"]
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastTransitionTime": since or now_rfc3339(),
                }
            )
            status["conditions"] = conditions
            return obj

        try:
            await self.registry.patch(POD, pod.namespace, pod.name, patch, subresource="status")
        except ApiError as e:
            log.debug("scheduler: status of %s not written: %s", pod.key, e)
            return
        if pending:
            self.events.emit(pod.obj, "Warning", "FailedScheduling", message)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _wait_synced(informers: list[Informer], tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every informer's first list; an informer task that fails raises."""

    async def all_synced() -> None:
        await asyncio.gather(*(i.synced.wait() for i in informers))

    waiting = asyncio.create_task(all_synced())
    try:
        done, _ = await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if waiting not in done:
            for task in done:
                task.result()
            raise RuntimeError("an informer stopped before it synced")
    finally:
        waiting.cancel()


def _scheduled_condition_message(obj: Obj) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return str(c.get("message") or "")
    return None
