"""What the scheduler needs to know about a pod, computed once per pod version.

Quantities, tolerations, selectors and host ports are parsed here, when the
informer delivers the pod, so that filtering and scoring never parse anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.protocol.primitives import controller_ref, quantity_milli_value, quantity_value
from control.objects import Obj

DEFAULT_SCHEDULER = "default-scheduler"
# kube-scheduler's stand-ins for a container without requests, used in scoring only.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
WILDCARD_IP = "0.0.0.0"
_TERMINAL = frozenset({"Succeeded", "Failed"})
_IGNORED_RESOURCES = frozenset({"pods"})


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str  # "Equal" or "Exists"
    value: str
    effect: str  # "" matches every effect

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        if self.effect and self.effect != effect:
            return False
        if self.key and self.key != key:
            return False
        if self.operator == "Exists":
            return True
        return self.operator == "Equal" and self.value == value


@dataclass(frozen=True, slots=True)
class Requirement:
    """One matchExpressions (or matchFields) entry of a node selector term."""

    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist, Gt, Lt
    values: frozenset[str]
    number: int | None = None  # the value of Gt / Lt

    def matches(self, labels: dict[str, str]) -> bool:
        op = self.operator
        if op == "In":
            return labels.get(self.key) in self.values
        if op == "NotIn":
            return labels.get(self.key) not in self.values
        if op == "Exists":
            return self.key in labels
        if op == "DoesNotExist":
            return self.key not in labels
        if op in ("Gt", "Lt"):
            have = labels.get(self.key)
            if have is None or self.number is None:
                return False
            try:
                n = int(have)
            except ValueError:
                return False
            return n > self.number if op == "Gt" else n < self.number
        return False


@dataclass(frozen=True, slots=True)
class Term:
    """A nodeSelectorTerm: every expression and field requirement must hold."""

    expressions: tuple[Requirement, ...]
    fields: tuple[Requirement, ...]

    def matches(self, labels: dict[str, str], node_name: str) -> bool:
        if not self.expressions and not self.fields:
            return False  # an empty term matches no node
        if not all(r.matches(labels) for r in self.expressions):
            return False
        fields = {"metadata.name": node_name}
        return all(r.matches(fields) for r in self.fields)


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
    tolerations = tuple(_toleration(t) for t in spec.get("tolerations") or () if t)
    selector = {str(k): str(v) for k, v in (spec.get("nodeSelector") or {}).items()}
    terms = _required_terms(spec.get("affinity"))
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


def _toleration(t: Obj) -> Toleration:
    return Toleration(
        key=str(t.get("key") or ""),
        operator=str(t.get("operator") or "Equal"),
        value=str(t.get("value") or ""),
        effect=str(t.get("effect") or ""),
    )


def _requirement(expr: Obj) -> Requirement:
    op = str(expr.get("operator") or "")
    values = tuple(str(v) for v in expr.get("values") or ())
    number: int | None = None
    if op in ("Gt", "Lt") and len(values) == 1:
        try:
            number = int(values[0])
        except ValueError:
            number = None
    return Requirement(str(expr.get("key") or ""), op, frozenset(values), number)


def _required_terms(affinity: Any) -> tuple[Term, ...] | None:
    if not isinstance(affinity, dict):
        return None
    node_affinity = affinity.get("nodeAffinity")
    if not isinstance(node_affinity, dict):
        return None
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(required, dict):
        return None
    terms = []
    for term in required.get("nodeSelectorTerms") or ():
        if not isinstance(term, dict):
            continue
        terms.append(
            Term(
                tuple(_requirement(e) for e in term.get("matchExpressions") or ()),
                tuple(_requirement(e) for e in term.get("matchFields") or ()),
            )
        )
    return tuple(terms)


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
