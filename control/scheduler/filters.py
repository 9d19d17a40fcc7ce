"""Filter plugins: can this pod run on this node?

Each filter returns the reasons it rejects the node, in kube-scheduler's
words, or an empty tuple when the node passes. They run in kube-scheduler's
order and the first rejecting filter decides, so a node counts once per
reason of that filter in the "0/N nodes are available" message.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from control.objects.tolerations import UNSCHEDULABLE
from control.scheduler.cache import NodeInfo
from control.scheduler.podinfo import WILDCARD_IP, PodInfo

Reasons = tuple[str, ...]
Filter = Callable[[PodInfo, NodeInfo], Reasons]

PASS: Reasons = ()

ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_PORTS = "node(s) didn't have free ports for the requested pod ports"
ERR_TOO_MANY_PODS = "Too many pods"


def node_unschedulable(pod: PodInfo, node: NodeInfo) -> Reasons:
    if not node.unschedulable:
        return PASS
    if any(t.tolerates(UNSCHEDULABLE, "", "NoSchedule") for t in pod.tolerations):
        return PASS
    return (ERR_UNSCHEDULABLE,)


def node_name(pod: PodInfo, node: NodeInfo) -> Reasons:
    if pod.node_name and pod.node_name != node.name:
        return (ERR_NODE_NAME,)
    return PASS


def taint_toleration(pod: PodInfo, node: NodeInfo) -> Reasons:
    for key, value, effect in node.taints:  # only NoSchedule and NoExecute are kept
        if not any(t.tolerates(key, value, effect) for t in pod.tolerations):
            return (f"node(s) had untolerated taint {{{key}: {value}}}",)
    return PASS


def node_affinity(pod: PodInfo, node: NodeInfo) -> Reasons:
    labels = node.labels
    for key, want in pod.node_selector.items():
        if labels.get(key) != want:
            return (ERR_AFFINITY,)
    terms = pod.required_terms
    if terms is not None and not any(t.matches(labels, node.name) for t in terms):
        return (ERR_AFFINITY,)
    return PASS


def node_ports(pod: PodInfo, node: NodeInfo) -> Reasons:
    for ip, protocol, port in pod.host_ports:
        used = node.ports.get((protocol, port))
        if used and (ip == WILDCARD_IP or ip in used or WILDCARD_IP in used):
            return (ERR_PORTS,)
    return PASS


def node_resources_fit(pod: PodInfo, node: NodeInfo) -> Reasons:
    reasons: list[str] = []
    if node.pod_count + 1 > node.alloc_pods:
        reasons.append(ERR_TOO_MANY_PODS)
    cpu = pod.cpu
    if cpu > 0 and cpu > node.alloc_cpu - node.req_cpu:
        reasons.append("Insufficient cpu")
    memory = pod.memory
    if memory > 0 and memory > node.alloc_memory - node.req_memory:
        reasons.append("Insufficient memory")
    for name, amount in pod.scalars.items():
        if amount > node.alloc_scalars.get(name, 0) - node.req_scalars.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return tuple(reasons)


# kube-scheduler's default order.
FILTERS: tuple[tuple[str, Filter], ...] = (
    ("NodeUnschedulable", node_unschedulable),
    ("NodeName", node_name),
    ("TaintToleration", taint_toleration),
    ("NodeAffinity", node_affinity),
    ("NodePorts", node_ports),
    ("NodeResourcesFit", node_resources_fit),
)


def run_filters(pod: PodInfo, node: NodeInfo) -> tuple[str, Reasons] | None:
    """None if the node fits, else (the first rejecting plugin, its reasons)."""
    if (
        pod.plain
        and node.plain
        and node.pod_count < node.alloc_pods
        and node.req_cpu + pod.cpu <= node.alloc_cpu
        and node.req_memory + pod.memory <= node.alloc_memory
    ):
        return None  # the other filters cannot reject a plain pod on a plain node
    for name, check in FILTERS:
        reasons = check(pod, node)
        if reasons:
            return name, reasons
    return None


def find_feasible(
    pod: PodInfo, nodes: Sequence[NodeInfo], start: int, limit: int
) -> tuple[list[NodeInfo], int, dict[str, int], set[str]]:
    """Filter `nodes` round robin from `start` until `limit` of them fit.

    Returns the feasible nodes, how many nodes were looked at, how many nodes
    each reason rejected, and the names of the plugins that rejected any.
    """
    feasible: list[NodeInfo] = []
    reasons: dict[str, int] = {}
    rejected_by: set[str] = set()
    processed = 0
    if limit <= 0:
        return feasible, processed, reasons, rejected_by
    for node in itertools.chain(itertools.islice(nodes, start, None), nodes[:start]):
        processed += 1
        failed = run_filters(pod, node)
        if failed is None:
            feasible.append(node)
            if len(feasible) >= limit:
                break
        else:
            plugin, why = failed
            rejected_by.add(plugin)
            for reason in why:
                reasons[reason] = reasons.get(reason, 0) + 1
    return feasible, processed, reasons, rejected_by
