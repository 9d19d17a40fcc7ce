"""Filter and score verdicts per pod shape, kept across scheduling cycles.

Pods of one shape (`PodInfo.shape`: requests, ports, tolerations, selectors)
get the same filter verdict and the same LeastAllocated + BalancedAllocation
score on a given node. Replicas share a shape, so the board keeps, per recent
shape, one list parallel to `SchedulerCache.order` holding each node's score
or INFEASIBLE; a change to a node marks its entry stale in every list. A cycle
recomputes only the stale entries of its window (usually one or two) and finds
the window's end, the best score and its ties with list operations that run
in C. Replica counts per node, for the spread score, are kept the same way for
recent owners.

The result is what filtering then scoring node by node gives
(`filters.find_feasible`, then `scores.score_nodes`), including the round
robin window, the early exit and uniform random tie-breaking.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from itertools import compress
from operator import add
from typing import Any

from control.scheduler.cache import NodeInfo, SchedulerCache
from control.scheduler.filters import run_filters
from control.scheduler.podinfo import PodInfo
from control.scheduler.scores import (
    BALANCED_ALLOCATION_WEIGHT,
    LEAST_ALLOCATED_WEIGHT,
    SPREAD_WEIGHT,
    balanced_allocation,
    least_allocated,
    spread_score,
)

# Below any score, even with the spread score added.
INFEASIBLE = -(10**6)
_FEASIBLE = (INFEASIBLE).__lt__
_COMPACT_AFTER = 64  # stale entries refreshed at once after which `stale` is rebuilt
DEFAULT_SHAPES = 64  # lists kept per kind; the least recently used goes first


class _Board:
    __slots__ = ("entries", "stale")

    def __init__(self, n: int) -> None:
        self.entries: list[int] = [INFEASIBLE] * n  # valid where not stale
        self.stale: set[int] = set(range(n))


class ScoreBoard:
    def __init__(self, cache: SchedulerCache, shapes: int = DEFAULT_SHAPES) -> None:
        self.cache = cache
        self.capacity = max(1, shapes)
        self._boards: OrderedDict[tuple[Any, ...], _Board] = OrderedDict()
        self._replicas: OrderedDict[str, list[int]] = OrderedDict()  # owner -> per node
        self.computed = 0  # entries computed, for tests and profiling
        cache.listeners.append(self)

    # -- CacheListener ---------------------------------------------------------

    def node_added(self) -> None:
        index = len(self.cache.order) - 1
        for board in self._boards.values():
            board.entries.append(INFEASIBLE)
            board.stale.add(index)
        for owner, counts in self._replicas.items():
            counts.append(self.cache.order[index].owners.get(owner, 0))

    def node_changed(self, index: int) -> None:
        for board in self._boards.values():
            board.stale.add(index)
        if self._replicas:
            owners = self.cache.order[index].owners
            for owner, counts in self._replicas.items():
                counts[index] = owners.get(owner, 0)

    def node_removed(self, index: int) -> None:
        last = len(self.cache.order)  # the old last position, now gone
        for board in self._boards.values():
            moved = board.entries.pop()
            if index < last:
                board.entries[index] = moved
                if last in board.stale:
                    board.stale.add(index)
                else:
                    board.stale.discard(index)
            board.stale.discard(last)
        for counts in self._replicas.values():
            moved = counts.pop()
            if index < last:
                counts[index] = moved

    # -- a scheduling cycle ----------------------------------------------------

    def select(self, pod: PodInfo, start: int, to_find: int) -> tuple[NodeInfo | None, int]:
        """The node for `pod` and how many nodes the cycle looked at.

        None when no node is feasible (every node was looked at, then).
        """
        nodes = self.cache.order
        n = len(nodes)
        if n == 0 or to_find <= 0:
            return None, 0
        board = self._board(pod.shape, n)
        entries = board.entries
        segments: list[tuple[int, int]] = []
        window: list[int] = []
        found = 0
        for lo, hi in ((start, n), (0, start)):
            p = lo
            while p < hi and found < to_find:
                end = min(hi, p + to_find - found)
                if board.stale:
                    self._refresh(board, pod, p, end)
                chunk = entries[p:end]
                found += len(chunk) - chunk.count(INFEASIBLE)
                window += chunk
                p = end
            if p > lo:
                segments.append((lo, p))
            if found >= to_find:
                break
        if found == 0:
            return None, len(window)
        if pod.owner_uid:
            window = self._with_spread(pod.owner_uid, window, segments, found)
        best = _pick(window, max(window))
        return nodes[_position(segments, best)], len(window)

    def _board(self, shape: tuple[Any, ...], n: int) -> _Board:
        board = self._boards.get(shape)
        if board is None:
            board = self._boards[shape] = _Board(n)
            if len(self._boards) > self.capacity:
                self._boards.popitem(last=False)
        else:
            self._boards.move_to_end(shape)
        return board

    def _refresh(self, board: _Board, pod: PodInfo, lo: int, hi: int) -> None:
        stale = board.stale
        if len(stale) < hi - lo:
            due = [i for i in stale if lo <= i < hi]
        else:
            due = [i for i in range(lo, hi) if i in stale]
        nodes = self.cache.order
        for i in due:
            board.entries[i] = self._entry(pod, nodes[i])
            stale.discard(i)
        if len(due) > _COMPACT_AFTER:
            # A set never shrinks its table, and iterating it walks the whole
            # table: after a big refresh, copy it into one sized for what is left.
            board.stale = set(stale)

    def _entry(self, pod: PodInfo, node: NodeInfo) -> int:
        self.computed += 1
        if run_filters(pod, node) is not None:
            return INFEASIBLE
        return LEAST_ALLOCATED_WEIGHT * least_allocated(
            pod, node
        ) + BALANCED_ALLOCATION_WEIGHT * balanced_allocation(pod, node)

    def _with_spread(
        self, owner: str, window: list[int], segments: list[tuple[int, int]], feasible: int
    ) -> list[int]:
        """The window's totals with the owner's spread score added."""
        counts = self._replica_counts(owner)
        in_window: list[int] = []
        for lo, hi in segments:
            in_window += counts[lo:hi]
        highest = max(in_window)
        if highest == 0:
            return window  # no replica in the window: the same spread score everywhere
        if feasible == len(window):
            most = highest
        else:  # the most crowded node counts only if it is a candidate
            most = max(compress(in_window, map(_FEASIBLE, window)), default=0)
            if most == 0:
                return window
        # Counts above `most` belong to infeasible nodes; they stay below zero.
        bonus = [SPREAD_WEIGHT * spread_score(most, c) for c in range(highest + 1)]
        return list(map(add, window, map(bonus.__getitem__, in_window)))

    def _replica_counts(self, owner: str) -> list[int]:
        counts = self._replicas.get(owner)
        if counts is not None:
            self._replicas.move_to_end(owner)
            return counts
        counts = [0] * len(self.cache.order)
        for node in self.cache.owner_nodes.get(owner, ()):
            if node.index >= 0:
                counts[node.index] = node.owners.get(owner, 0)
        self._replicas[owner] = counts
        if len(self._replicas) > self.capacity:
            self._replicas.popitem(last=False)
        return counts


def _pick(window: list[int], value: int) -> int:
    """The position of a uniformly random occurrence of `value`."""
    count = window.count(value)
    r = random.randrange(count) if count > 1 else 0
    if count == len(window):
        return r
    if count <= 16:
        pos = window.index(value)
        for _ in range(r):
            pos = window.index(value, pos + 1)
        return pos
    # Many occurrences: grow a prefix until it holds r + 1 of them; each step
    # adds as many entries as are still missing, and counts them in C.
    end = r + 1
    seen = window[:end].count(value)
    while seen < r + 1:
        step = r + 1 - seen
        seen += window[end : end + step].count(value)
        end += step
    return end - 1


def _position(segments: list[tuple[int, int]], pos: int) -> int:
    for lo, hi in segments:
        if pos < hi - lo:
            return lo + pos
        pos -= hi - lo
    raise IndexError(pos)
