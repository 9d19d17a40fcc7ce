"""Which nodes a pod may go to: its tolerations of node taints and its required
node affinity (nodeSelectorTerms with matchExpressions and matchFields), parsed
once. The scheduler filters by them, and the DaemonSet controller decides with
them which nodes should run a daemon pod.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from control.objects import Obj


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


def toleration(t: Obj) -> Toleration:
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


def required_terms(affinity: Any) -> tuple[Term, ...] | None:
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
