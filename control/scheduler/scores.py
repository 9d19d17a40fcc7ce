"""Score plugins: which of the feasible nodes suits the pod best.

Every plugin gives each node 0-100 (kube-scheduler's MaxNodeScore); the total
is their weighted sum, with kube-scheduler's default weights.
"""

from __future__ import annotations

from collections.abc import Sequence

from control.scheduler.cache import NodeInfo
from control.scheduler.podinfo import PodInfo

MAX_SCORE = 100
LEAST_ALLOCATED_WEIGHT = 1
BALANCED_ALLOCATION_WEIGHT = 1
SPREAD_WEIGHT = 2


def _least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_SCORE // capacity


def least_allocated(pod: PodInfo, node: NodeInfo) -> int:
    """More room left after placing the pod scores higher (cpu and memory, equal
    weight). Pods without requests count kube-scheduler's 100m / 200Mi."""
    cpu = _least_requested(node.nonzero_cpu + pod.nonzero_cpu, node.alloc_cpu)
    memory = _least_requested(node.nonzero_memory + pod.nonzero_memory, node.alloc_memory)
    return (cpu + memory) // 2


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> int:
    """Closer cpu and memory utilization after placing the pod scores higher."""
    fractions = []
    if node.alloc_cpu:
        fractions.append(min(1.0, (node.req_cpu + pod.cpu) / node.alloc_cpu))
    if node.alloc_memory:
        fractions.append(min(1.0, (node.req_memory + pod.memory) / node.alloc_memory))
    std = abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
    return int((1 - std) * MAX_SCORE)


def spread(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """Fewer pods of the same controller on a node scores higher, normalized
    over the candidates: the most crowded gets 0, an empty one 100."""
    owner = pod.owner_uid
    if not owner:
        return [0] * len(nodes)
    counts = [n.owners.get(owner, 0) for n in nodes]
    most = max(counts, default=0)
    if most == 0:
        return [MAX_SCORE] * len(nodes)
    return [spread_score(most, c) for c in counts]


def spread_score(most: int, count: int) -> int:
    """The spread score of a node with `count` replicas, when the most crowded
    candidate has `most` (> 0)."""
    return MAX_SCORE * (most - count) // most


def score_nodes(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """The weighted total of every score plugin, per node."""
    spreads = spread(pod, nodes)
    return [
        LEAST_ALLOCATED_WEIGHT * least_allocated(pod, n)
        + BALANCED_ALLOCATION_WEIGHT * balanced_allocation(pod, n)
        + SPREAD_WEIGHT * s
        for n, s in zip(nodes, spreads, strict=True)
    ]
