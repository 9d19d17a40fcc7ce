"""The score board gives what filtering and scoring node by node gives."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from control.scheduler.cache import NodeInfo, SchedulerCache
from control.scheduler.filters import find_feasible
from control.scheduler.podinfo import PodInfo
from control.scheduler.scoreboard import ScoreBoard
from control.scheduler.scores import score_nodes
from tests.scheduler.helpers import node_obj, pod


def reference(p: PodInfo, nodes: list[NodeInfo], start: int, to_find: int) -> tuple[set[str], int]:
    """The names of the best-scoring feasible nodes, and the nodes looked at."""
    feasible, processed, _, _ = find_feasible(p, nodes, start, to_find)
    if not feasible:
        return set(), processed
    scores = score_nodes(p, feasible)
    top = max(scores)
    return {n.name for n, s in zip(feasible, scores, strict=True) if s == top}, processed


def make_cluster(n: int, seed: int) -> SchedulerCache:
    rng = random.Random(seed)
    cache = SchedulerCache()
    for i in range(n):
        cache.set_node(
            node_obj(
                f"n{i:03d}",
                cpu=str(rng.choice([2, 4, 8])),
                memory=rng.choice(["4Gi", "8Gi", "16Gi"]),
                pods=str(rng.choice([3, 10, 110])),
                labels={"zone": rng.choice("ab")},
                unschedulable=rng.random() < 0.1,
                taints=[{"key": "t", "effect": "NoSchedule"}] if rng.random() < 0.1 else None,
            )
        )
    return cache


SHAPES: list[dict[str, Any]] = [
    {"cpu": "500m", "memory": "512Mi"},
    {"cpu": "500m", "memory": "512Mi", "owner_uid": "rs-a"},
    {"cpu": "1", "owner_uid": "rs-b"},
    {"memory": "1Gi", "node_selector": {"zone": "a"}},
    {"cpu": "100m", "tolerations": [{"key": "t", "operator": "Exists"}]},
    {"host_port": 80},
    {},
    {"cpu": "200m", "owner_uid": "rs-c"},
    {"owner_uid": "rs-d"},
    {"memory": "100Mi", "owner_uid": "rs-e"},
]


@pytest.mark.parametrize("seed", range(6))
def test_same_choices_as_node_by_node(seed: int) -> None:
    rng = random.Random(seed)
    cache = make_cluster(150, seed)
    board = ScoreBoard(cache, shapes=4)  # fewer lists than shapes and owners: eviction too
    start = 0
    placed: list[PodInfo] = []
    for i in range(400):
        p = pod(f"p{i}", **rng.choice(SHAPES))
        to_find = rng.choice([1, 5, 100, len(cache.order)])
        want, want_processed = reference(p, cache.order, start, to_find)
        chosen, processed = board.select(p, start, to_find)
        assert processed == want_processed
        if chosen is None:
            assert not want
        else:
            assert chosen.name in want
            cache.assume(p, chosen.name)
            placed.append(p)
        start = (start + processed) % len(cache.order)
        if placed and rng.random() < 0.2:  # pods leave too
            gone = placed.pop(rng.randrange(len(placed)))
            cache.remove_pod(gone.key)
        if rng.random() < 0.02:  # and nodes come and go
            cache.remove_node(rng.choice(cache.order).name)
            cache.set_node(node_obj(f"new{i}", cpu="8", memory="16Gi"))


def test_ties_are_broken_uniformly() -> None:
    cache = SchedulerCache()
    for i in range(4):
        cache.set_node(node_obj(f"n{i}"))
    board = ScoreBoard(cache)
    random.seed(3)
    picks = Counter(board.select(pod(), 0, 4)[0].name for _ in range(400))  # type: ignore[union-attr]
    assert set(picks) == {"n0", "n1", "n2", "n3"}
    assert min(picks.values()) > 60


def test_only_changed_nodes_are_recomputed() -> None:
    cache = SchedulerCache()
    for i in range(1000):
        cache.set_node(node_obj(f"n{i}", cpu="32", memory="128Gi"))
    board = ScoreBoard(cache)
    start = 0
    for i in range(100):
        p = pod(f"p{i}", cpu="100m", memory="128Mi")
        chosen, processed = board.select(p, start, 100)
        assert chosen is not None
        cache.assume(p, chosen.name)
        start = (start + processed) % 1000
    # The first lap over the 1000 nodes computes each once; later cycles only
    # recompute the node that took the previous pod in their window.
    assert board.computed < 1000 + 100
