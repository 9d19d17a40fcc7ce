"""The scheduler's view of the cluster: one NodeInfo per node, kept incrementally.

Node and Pod informer events update it one object at a time, and so do the
scheduler's own decisions: a pod it has bound but not yet seen back in the
watch is "assumed" onto its node, so the next decision already counts it.
Nothing here rescans all pods; a decision reads only the nodes it looks at.
"""

from __future__ import annotations

import enum
from typing import Any, Protocol

from agent.protocol.primitives import quantity_milli_value, quantity_value
from control.objects import Obj
from control.scheduler.podinfo import PodInfo, same_for_scheduling

HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


class NodeChange(enum.Enum):
    ADDED = "added"
    CHANGED = "changed"  # something a filter or score reads
    UNCHANGED = "unchanged"


class NodeInfo:
    """A node's allocatable resources and what its pods take from them."""

    __slots__ = (
        "alloc_cpu",
        "alloc_memory",
        "alloc_pods",
        "alloc_scalars",
        "exists",
        "index",
        "labels",
        "name",
        "nonzero_cpu",
        "nonzero_memory",
        "owners",
        "plain",
        "pod_count",
        "ports",
        "req_cpu",
        "req_memory",
        "req_scalars",
        "signature",
        "taints",
        "unschedulable",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.exists = False  # False: only pods name it; no Node object (yet)
        self.index = -1  # position in SchedulerCache.order
        self.labels: dict[str, str] = {}
        self.taints: tuple[tuple[str, str, str], ...] = ()  # NoSchedule/NoExecute only
        self.unschedulable = False
        self.alloc_cpu = 0
        self.alloc_memory = 0
        self.alloc_pods = 0
        self.alloc_scalars: dict[str, int] = {}
        self.req_cpu = 0
        self.req_memory = 0
        self.req_scalars: dict[str, int] = {}
        self.nonzero_cpu = 0
        self.nonzero_memory = 0
        self.pod_count = 0
        # (protocol, port) -> {hostIP: pods using it}
        self.ports: dict[tuple[str, int], dict[str, int]] = {}
        self.owners: dict[str, int] = {}  # controller uid -> pods on this node
        self.plain = True  # schedulable and without NoSchedule/NoExecute taints
        self.signature: tuple[Any, ...] = ()

    def __repr__(self) -> str:
        return (
            f"NodeInfo({self.name!r}, cpu {self.req_cpu}/{self.alloc_cpu}m, "
            f"memory {self.req_memory}/{self.alloc_memory}, pods {self.pod_count}/{self.alloc_pods})"
        )

    def set_node(self, obj: Obj) -> bool:
        """Take the scheduling-relevant fields of a Node; True if any changed."""
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        meta = obj.get("metadata") or {}
        capacity = status.get("capacity") or {}
        resources = {**capacity, **(status.get("allocatable") or {})}
        labels = dict(meta.get("labels") or {})
        taints = tuple(
            (str(t.get("key") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))
            for t in spec.get("taints") or ()
            if isinstance(t, dict) and t.get("effect") in HARD_EFFECTS
        )
        unschedulable = bool(spec.get("unschedulable"))
        signature = (resources, labels, taints, unschedulable)
        if self.exists and signature == self.signature:
            return False
        self.signature = signature
        self.exists = True
        self.labels = labels
        self.taints = taints
        self.unschedulable = unschedulable
        self.plain = not (taints or unschedulable)
        self.alloc_cpu = _amount(resources, "cpu")
        self.alloc_memory = _amount(resources, "memory")
        self.alloc_pods = _amount(resources, "pods")
        self.alloc_scalars = {
            k: _amount(resources, k) for k in resources if k not in ("cpu", "memory", "pods")
        }
        return True

    def add_pod(self, pod: PodInfo) -> None:
        self._account(pod, 1)

    def remove_pod(self, pod: PodInfo) -> None:
        self._account(pod, -1)

    def _account(self, pod: PodInfo, sign: int) -> None:
        self.pod_count += sign
        self.req_cpu += sign * pod.cpu
        self.req_memory += sign * pod.memory
        self.nonzero_cpu += sign * pod.nonzero_cpu
        self.nonzero_memory += sign * pod.nonzero_memory
        for name, amount in pod.scalars.items():
            self.req_scalars[name] = self.req_scalars.get(name, 0) + sign * amount
        for ip, protocol, port in pod.host_ports:
            ips = self.ports.setdefault((protocol, port), {})
            n = ips.get(ip, 0) + sign
            if n > 0:
                ips[ip] = n
            else:
                ips.pop(ip, None)
                if not ips:
                    del self.ports[(protocol, port)]
        if pod.owner_uid:
            n = self.owners.get(pod.owner_uid, 0) + sign
            if n > 0:
                self.owners[pod.owner_uid] = n
            else:
                self.owners.pop(pod.owner_uid, None)


def _amount(resources: dict[str, Any], name: str) -> int:
    q = resources.get(name)
    if q is None:
        return 0
    try:
        return quantity_milli_value(q) if name == "cpu" else quantity_value(q)
    except ValueError:
        return 0


class CacheListener(Protocol):
    """Told about every change to `SchedulerCache.order`, by position."""

    def node_added(self) -> None: ...  # appended at the end

    def node_changed(self, index: int) -> None: ...

    def node_removed(self, index: int) -> None: ...  # the last node moved into `index`


class SchedulerCache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        # Nodes that exist, in scan order; a removed node's slot takes the last one.
        self.order: list[NodeInfo] = []
        self.owner_nodes: dict[str, set[NodeInfo]] = {}  # controller uid -> nodes with its pods
        self.listeners: list[CacheListener] = []
        self._pods: dict[str, tuple[PodInfo, NodeInfo]] = {}
        self._assumed: set[str] = set()

    def __len__(self) -> int:
        return len(self.order)

    # -- nodes ---------------------------------------------------------------

    def set_node(self, obj: Obj) -> NodeChange:
        name = str((obj.get("metadata") or {}).get("name"))
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name)
        existed = info.exists
        if not info.set_node(obj):
            return NodeChange.UNCHANGED
        if not existed:
            info.index = len(self.order)
            self.order.append(info)
            for listener in self.listeners:
                listener.node_added()
            return NodeChange.ADDED
        self._touch(info)
        return NodeChange.CHANGED

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None or not info.exists:
            return
        last = self.order.pop()
        if last is not info:
            self.order[info.index] = last
            last.index = info.index
        for listener in self.listeners:
            listener.node_removed(info.index)
        info.index = -1
        info.exists = False
        info.signature = ()
        if info.pod_count == 0:
            del self.nodes[name]

    # -- pods ----------------------------------------------------------------

    def add_pod(self, pod: PodInfo) -> bool:
        """An assigned pod seen in the watch (it confirms an assumption).

        Returns True when it freed resources somewhere (it moved, or shrank).
        """
        self._assumed.discard(pod.key)
        old = self._pods.get(pod.key)
        freed = False
        if old is not None:
            old_pod, old_node = old
            self._unplace(old_pod, old_node)
            freed = old_node.name != pod.node_name or _shrank(old_pod, pod)
        self._place(pod, pod.node_name)
        return freed

    def remove_pod(self, key: str) -> bool:
        """The pod is gone or terminal; True if it held resources on a node."""
        self._assumed.discard(key)
        old = self._pods.pop(key, None)
        if old is None:
            return False
        pod, node = old
        self._unplace(pod, node)
        return True

    def assume(self, pod: PodInfo, node_name: str) -> None:
        """Count `pod` on `node_name` now, before the binding is written."""
        self.remove_pod(pod.key)
        self._place(pod, node_name)
        self._assumed.add(pod.key)

    def confirm(self, key: str, obj: Obj) -> bool:
        """The watch shows `obj`, the pod assumed under `key`, bound to the node
        it was assumed onto and otherwise as it was: the assumption stands as
        is, with no recount. False (nothing done) if that is not the case."""
        entry = self._pods.get(key)
        if key not in self._assumed or entry is None:
            return False
        pod, node = entry
        if not _bound_as_assumed(pod.obj, obj, node.name):
            return False
        self._assumed.discard(key)
        pod.obj = obj
        pod.node_name = node.name
        return True

    def forget(self, key: str) -> bool:
        """Undo an assumption whose binding failed. True if it was still assumed."""
        if key not in self._assumed:
            return False
        return self.remove_pod(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def pod_node(self, key: str) -> str | None:
        entry = self._pods.get(key)
        return entry[1].name if entry is not None else None

    def _place(self, pod: PodInfo, node_name: str) -> None:
        node = self.nodes.get(node_name)
        if node is None:
            node = self.nodes[node_name] = NodeInfo(node_name)
        node.add_pod(pod)
        self._pods[pod.key] = (pod, node)
        if pod.owner_uid:
            self.owner_nodes.setdefault(pod.owner_uid, set()).add(node)
        self._touch(node)

    def _unplace(self, pod: PodInfo, node: NodeInfo) -> None:
        node.remove_pod(pod)
        owner = pod.owner_uid
        if owner and owner not in node.owners:
            nodes = self.owner_nodes.get(owner)
            if nodes is not None:
                nodes.discard(node)
                if not nodes:
                    del self.owner_nodes[owner]
        if not node.exists and node.pod_count == 0:
            self.nodes.pop(node.name, None)
        self._touch(node)

    def _touch(self, node: NodeInfo) -> None:
        if node.index >= 0:
            for listener in self.listeners:
                listener.node_changed(node.index)


def _bound_as_assumed(old: Obj, new: Obj, node: str) -> bool:
    """`new` is `old` with spec.nodeName set to `node`, and nothing else that
    the scheduler reads changed."""
    old_spec = old.get("spec") or {}
    new_spec = new.get("spec") or {}
    if old_spec.get("nodeName") or new_spec.get("nodeName") != node:
        return False
    unbound = {k: v for k, v in new_spec.items() if k != "nodeName"}
    return same_for_scheduling(old, {**new, "spec": unbound})


def _shrank(old: PodInfo, new: PodInfo) -> bool:
    return (
        new.cpu < old.cpu
        or new.memory < old.memory
        or set(old.host_ports) - set(new.host_ports) != set()
        or any(new.scalars.get(k, 0) < v for k, v in old.scalars.items())
    )
