"""What the scheduler needs to know about a pod, computed once per pod version.

Quantities, tolerations, selectors and host ports are parsed here, when the
informer delivers the pod, so that filtering and scoring never parse anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.protocol.primitives import controller_ref, quantity_milli_value, quantity_value
from control.objects import Obj
from control.objects.nodeaffinity import Term, Toleration, required_terms, toleration

DEFAULT_SCHEDULER = "default-scheduler"
# kube-scheduler's stand-ins for a container without requests, used in scoring only.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
WILDCARD_IP = "0.0.0.0"
_TERMINAL = frozenset({"Succeeded", "Failed"})
_IGNORED_RESOURCES = frozenset({"pods"})


@dataclass(slots=True)
class PodInfo:
    key: str  # namespace/name
    namespace: str
    name: str
    uid: str
    obj: Obj  # the informer's object; never mutated
    priority: int
    created: str  # creationTimestamp, for FIFO among equal priorities
    scheduler_name: str
    node_name: str
    terminal: bool  # phase Succeeded or Failed: it no longer holds resources
    terminating: bool  # deletionTimestamp set
    cpu: int  # requested millicores
    memory: int  # requested bytes
    scalars: dict[str, int]  # other requested resources (ephemeral-storage, extended)
    nonzero_cpu: int  # requests with kube-scheduler's defaults for scoring
    nonzero_memory: int
    host_ports: tuple[tuple[str, str, int], ...]  # (hostIP, protocol, hostPort)
    tolerations: tuple[Toleration, ...]
    node_selector: dict[str, str]
    required_terms: tuple[Term, ...] | None  # None: no required node affinity
    owner_uid: str  # the controller owner's uid, or ""
    # No nodeName, selector, affinity, host ports or extended resources: only
    # cpu, memory and pod count decide whether a plain node fits.
    plain: bool
    # Everything filters and per-node scores read from the pod: pods with equal
    # shapes get equal verdicts and scores on every node.
    shape: tuple[Any, ...]

    def wants_default_scheduler(self) -> bool:
        return (
            not self.node_name
            and self.scheduler_name == DEFAULT_SCHEDULER
            and not self.terminating
            and not self.terminal
        )


def pod_info(obj: Obj) -> PodInfo:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    cpu, memory, nz_cpu, nz_memory, scalars = _requests(spec)
    tolerations = tuple(toleration(t) for t in spec.get("tolerations") or () if t)
    selector = {str(k): str(v) for k, v in (spec.get("nodeSelector") or {}).items()}
    terms = required_terms(spec.get("affinity"))
    ports = _host_ports(spec)
    namespace = meta.get("namespace") or "default"
    return PodInfo(
        key=f"{namespace}/{meta.get('name')}",
        namespace=namespace,
        name=str(meta.get("name")),
        uid=str(meta.get("uid") or ""),
        obj=obj,
        priority=_int(spec.get("priority")),
        created=str(meta.get("creationTimestamp") or ""),
        scheduler_name=spec.get("schedulerName") or DEFAULT_SCHEDULER,
        node_name=spec.get("nodeName") or "",
        terminal=status.get("phase") in _TERMINAL,
        terminating=bool(meta.get("deletionTimestamp")),
        cpu=cpu,
        memory=memory,
        scalars=scalars,
        nonzero_cpu=nz_cpu,
        nonzero_memory=nz_memory,
        host_ports=ports,
        tolerations=tolerations,
        node_selector=selector,
        required_terms=terms,
        owner_uid=_controller_uid(obj),
        plain=not (spec.get("nodeName") or ports or selector or terms is not None or scalars),
        shape=(
            cpu,
            memory,
            nz_cpu,
            nz_memory,
            tuple(sorted(scalars.items())),
            ports,
            tolerations,
            tuple(sorted(selector.items())),
            terms,
            spec.get("nodeName") or "",
        ),
    )


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _container_requests(container: Obj) -> dict[str, str]:
    resources = container.get("resources") or {}
    # A resource with only a limit requests its limit.
    merged = dict(resources.get("limits") or {})
    merged.update(resources.get("requests") or {})
    return merged


def _quantities(requests: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, q in requests.items():
        if name in _IGNORED_RESOURCES:
            continue
        try:
            out[name] = quantity_milli_value(q) if name == "cpu" else quantity_value(q)
        except ValueError:
            continue  # admission rejects these; never let one stop the scheduler
    return out


def _requests(spec: Obj) -> tuple[int, int, int, int, dict[str, int]]:
    """Pod requests as kube-scheduler computes them: the sum over containers,
    at least the largest init container, plus the pod overhead."""
    total: dict[str, int] = {}
    nz_cpu = nz_memory = 0
    for c in spec.get("containers") or ():
        q = _quantities(_container_requests(c))
        for name, amount in q.items():
            total[name] = total.get(name, 0) + amount
        nz_cpu += q.get("cpu") or DEFAULT_MILLI_CPU_REQUEST
        nz_memory += q.get("memory") or DEFAULT_MEMORY_REQUEST
    for c in spec.get("initContainers") or ():
        q = _quantities(_container_requests(c))
        for name, amount in q.items():
            if amount > total.get(name, 0):
                total[name] = amount
        nz_cpu = max(nz_cpu, q.get("cpu") or DEFAULT_MILLI_CPU_REQUEST)
        nz_memory = max(nz_memory, q.get("memory") or DEFAULT_MEMORY_REQUEST)
    for name, amount in _quantities(spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + amount
        if name == "cpu":
            nz_cpu += amount
        elif name == "memory":
            nz_memory += amount
    cpu = total.pop("cpu", 0)
    memory = total.pop("memory", 0)
    scalars = {k: v for k, v in total.items() if v > 0}
    return cpu, memory, nz_cpu, nz_memory, scalars


def _host_ports(spec: Obj) -> tuple[tuple[str, str, int], ...]:
    ports: list[tuple[str, str, int]] = []
    for c in spec.get("containers") or ():
        for p in c.get("ports") or ():
            host_port = p.get("hostPort")
            if isinstance(host_port, int) and host_port > 0:
                ip = p.get("hostIP") or WILDCARD_IP
                ports.append((ip, p.get("protocol") or "TCP", host_port))
    return tuple(ports)


def _controller_uid(obj: Obj) -> str:
    ref = controller_ref(obj)
    return str(ref.get("uid") or "") if ref else ""


def same_for_scheduling(old: Obj, new: Obj) -> bool:
    """Nothing the scheduler reads changed (most updates: pod status from nodes)."""
    old_meta = old.get("metadata") or {}
    new_meta = new.get("metadata") or {}
    old_phase = (old.get("status") or {}).get("phase")
    new_phase = (new.get("status") or {}).get("phase")
    return (
        old.get("spec") == new.get("spec")
        and old_phase == new_phase
        and old_meta.get("uid") == new_meta.get("uid")
        and old_meta.get("deletionTimestamp") == new_meta.get("deletionTimestamp")
        and old_meta.get("ownerReferences") == new_meta.get("ownerReferences")
    )
