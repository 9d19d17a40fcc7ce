"""Kubernetes label selectors and field selectors.

Parsing validates and precompiles; matching is plain dict look-ups and set
membership, because the API server runs a selector over every object it lists.

Label selector syntax (as `kubectl get -l`): comma-joined requirements, each one
of `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`,
`key`, `!key`, `key>N`, `key<N`. Semantics follow Kubernetes: `!=` and `notin`
also match objects without the label.

Field selector syntax: comma-joined `path=value`, `path==value`, `path!=value`,
where path is dotted (`spec.nodeName`). A missing field compares as "";
booleans compare as "true"/"false". `\\`, `,` and `=` may be escaped with `\\`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.protocol.primitives import (
    LABEL_VALUE_MAX_LENGTH,
    QUALIFIED_NAME_MAX_LENGTH,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
)

Operator = Literal["=", "!=", "in", "notin", "exists", "!", "gt", "lt"]
FieldOperator = Literal["=", "!="]
Matcher = Callable[[dict[str, Any]], bool]


class SelectorError(ValueError):
    """A selector that cannot be parsed or is not valid."""


def _key_error(key: str) -> str | None:
    if is_qualified_name(key):
        return None
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return "prefix part must be non-empty"
        if not is_dns1123_subdomain(prefix):
            return "prefix part must be a lowercase DNS subdomain"
    if not name:
        return "name part must be non-empty"
    if len(name) > QUALIFIED_NAME_MAX_LENGTH:
        return f"name part must be no more than {QUALIFIED_NAME_MAX_LENGTH} characters"
    return (
        "name part must consist of alphanumeric characters, '-', '_' or '.', "
        "and must start and end with an alphanumeric character"
    )


def _value_error(value: str) -> str | None:
    if is_label_value(value):
        return None
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        return f"must be no more than {LABEL_VALUE_MAX_LENGTH} characters"
    return (
        "must consist of alphanumeric characters, '-', '_' or '.', "
        "and must start and end with an alphanumeric character"
    )


# --- label selectors ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """One label requirement. `values` is sorted; one value for =, !=, gt, lt."""

    key: str
    op: Operator
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        sym = {"gt": ">", "lt": "<"}.get(self.op, self.op)
        return f"{self.key}{sym}{self.values[0]}"


def _check_requirement(r: Requirement) -> None:
    err = _key_error(r.key)
    if err:
        raise SelectorError(f"invalid label key {r.key!r}: {err}")
    if r.op in ("in", "notin") and not r.values:
        raise SelectorError(f"{r.key!r}: values set can't be empty for '{r.op}'")
    if r.op in ("gt", "lt"):
        try:
            int(r.values[0])
        except ValueError:
            raise SelectorError(
                f"{r.key!r}: for '>' and '<' the value must be an integer, got {r.values[0]!r}"
            ) from None
        return
    for v in r.values:
        err = _value_error(v)
        if err:
            raise SelectorError(f"invalid label value {v!r} for key {r.key!r}: {err}")


def _compile_requirement(r: Requirement) -> Callable[[Mapping[str, str]], bool]:
    key = r.key
    if r.op == "=":
        v = r.values[0]
        return lambda labels: labels.get(key) == v
    if r.op == "!=":
        v = r.values[0]
        return lambda labels: labels.get(key) != v
    if r.op == "exists":
        return lambda labels: key in labels
    if r.op == "!":
        return lambda labels: key not in labels
    if r.op == "in":
        vs = frozenset(r.values)
        return lambda labels: key in labels and labels[key] in vs
    if r.op == "notin":
        vs = frozenset(r.values)
        return lambda labels: key not in labels or labels[key] not in vs
    bound = int(r.values[0])
    greater = r.op == "gt"

    def compare(labels: Mapping[str, str]) -> bool:
        try:
            n = int(labels[key])
        except (KeyError, ValueError):
            return False
        return n > bound if greater else n < bound

    return compare


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of label requirements. The empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()
    # True only for the selector of a null `LabelSelector`: it matches nothing.
    nothing: bool = False
    _match: Callable[[Mapping[str, str]], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        reqs = tuple(sorted(self.requirements, key=lambda r: (r.key, r.op, r.values)))
        for r in reqs:
            _check_requirement(r)
        object.__setattr__(self, "requirements", reqs)
        object.__setattr__(self, "_match", _compile_labels(reqs, self.nothing))

    @property
    def empty(self) -> bool:
        """True when the selector matches every object."""
        return not self.requirements and not self.nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return self._match(labels if labels is not None else _NO_LABELS)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_NO_LABELS: Mapping[str, str] = {}


def _compile_labels(
    reqs: tuple[Requirement, ...], nothing: bool
) -> Callable[[Mapping[str, str]], bool]:
    """One predicate over a label map, with as few calls per match as possible."""
    if nothing:
        return lambda labels: False
    if not reqs:
        return lambda labels: True
    if len(reqs) == 1:
        return _compile_requirement(reqs[0])
    # Equality requirements are the common case; check them without a call each.
    equals = tuple((r.key, r.values[0]) for r in reqs if r.op == "=")
    others = tuple(_compile_requirement(r) for r in reqs if r.op != "=")

    def match(labels: Mapping[str, str]) -> bool:
        for k, v in equals:
            if labels.get(k) != v:
                return False
        for pred in others:
            if not pred(labels):
                return False
        return True

    return match


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)

# Tokens of the label selector lexer. Identifiers are any run of characters that
# are neither whitespace nor one of these symbols.
_SYMBOLS = ("!=", "==", "=", "!", "(", ")", ",", ">", "<")
_SYMBOL_START = frozenset("!=(),<>")


def _lex(s: str) -> list[tuple[str, str, int]]:
    """Split into (kind, text, position) tokens; kind is "id" or the symbol itself."""
    tokens: list[tuple[str, str, int]] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
            continue
        if c in _SYMBOL_START:
            for sym in _SYMBOLS:
                if s.startswith(sym, i):
                    tokens.append((sym, sym, i))
                    i += len(sym)
                    break
            continue
        start = i
        while i < n and not s[i].isspace() and s[i] not in _SYMBOL_START:
            i += 1
        word = s[start:i]
        tokens.append((word if word in ("in", "notin") else "id", word, start))
    tokens.append(("end", "", n))
    return tokens


class _LabelParser:
    def __init__(self, s: str) -> None:
        self.s = s
        self.tokens = _lex(s)
        self.pos = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.pos]

    def next(self) -> tuple[str, str, int]:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def fail(self, tok: tuple[str, str, int], expected: str) -> SelectorError:
        found = f"{tok[1]!r}" if tok[0] != "end" else "end of string"
        return SelectorError(
            f"invalid label selector {self.s!r}: found {found} at position {tok[2]}, expected {expected}"
        )

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        if self.peek()[0] == "end":
            return reqs
        while True:
            reqs.append(self.requirement())
            tok = self.next()
            if tok[0] == "end":
                return reqs
            if tok[0] != ",":
                raise self.fail(tok, "',' or end of string")

    def requirement(self) -> Requirement:
        tok = self.next()
        if tok[0] == "!":
            ktok = self.next()
            if ktok[0] != "id":
                raise self.fail(ktok, "a label key after '!'")
            return self.check(Requirement(ktok[1], "!"))
        if tok[0] != "id":
            raise self.fail(tok, "a label key")
        key = tok[1]
        op = self.next()
        kind = op[0]
        if kind in (",", "end"):
            self.pos -= 1
            return self.check(Requirement(key, "exists"))
        if kind in ("=", "==", "!=", ">", "<"):
            val = self.peek()
            if val[0] == "id":
                self.pos += 1
                value = val[1]
            elif val[0] in (",", "end") and kind in ("=", "==", "!="):
                value = ""  # `a=` selects an empty value, as in Kubernetes
            else:
                raise self.fail(val, "a value")
            ops: dict[str, Operator] = {"=": "=", "==": "=", "!=": "!=", ">": "gt", "<": "lt"}
            return self.check(Requirement(key, ops[kind], (value,)))
        if kind in ("in", "notin"):
            return self.check(Requirement(key, "in" if kind == "in" else "notin", self.values()))
        raise self.fail(op, "'=', '==', '!=', 'in', 'notin', '>', '<', ',' or end of string")

    def values(self) -> tuple[str, ...]:
        tok = self.next()
        if tok[0] != "(":
            raise self.fail(tok, "'('")
        vals: list[str] = []
        while True:
            tok = self.next()
            if tok[0] == "id":
                vals.append(tok[1])
                tok = self.next()
            else:
                vals.append("")  # an empty value, as in `a in (,b)`
            if tok[0] == ")":
                break
            if tok[0] != ",":
                raise self.fail(tok, "',' or ')'")
        if vals == [""]:
            vals = []  # `a in ()`
        return tuple(sorted(set(vals)))

    def check(self, r: Requirement) -> Requirement:
        try:
            _check_requirement(r)
        except SelectorError as e:
            raise SelectorError(f"invalid label selector {self.s!r}: {e}") from None
        return r


def parse_label_selector(s: str) -> LabelSelector:
    """Parse a label selector string, as given to `?labelSelector=` or `kubectl -l`."""
    return LabelSelector(tuple(_LabelParser(s).parse()))


def selector_from_labels(labels: Mapping[str, str] | None) -> LabelSelector:
    """The selector of a plain label map (a Service's or ReplicationController's)."""
    return LabelSelector(tuple(Requirement(k, "=", (v,)) for k, v in (labels or {}).items()))


_MATCH_OPS: dict[str, Operator] = {
    "In": "in",
    "NotIn": "notin",
    "Exists": "exists",
    "DoesNotExist": "!",
}


def selector_from_match(sel: Mapping[str, Any] | None) -> LabelSelector:
    """The selector of a `{matchLabels, matchExpressions}` object.

    As in Kubernetes, None (a null selector) matches nothing and `{}` matches
    everything.
    """
    if sel is None:
        return NOTHING
    if not isinstance(sel, Mapping):
        raise SelectorError(f"selector: expected an object, got {type(sel).__name__}")
    reqs: list[Requirement] = []
    match_labels = sel.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise SelectorError("matchLabels: expected an object")
    for k, v in match_labels.items():
        if not isinstance(v, str):
            raise SelectorError(f"matchLabels.{k}: expected a string, got {type(v).__name__}")
        reqs.append(Requirement(k, "=", (v,)))
    exprs = sel.get("matchExpressions") or []
    if not isinstance(exprs, list):
        raise SelectorError("matchExpressions: expected a list")
    for i, expr in enumerate(exprs):
        where = f"matchExpressions[{i}]"
        if not isinstance(expr, Mapping):
            raise SelectorError(f"{where}: expected an object")
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if not isinstance(key, str) or not key:
            raise SelectorError(f"{where}.key: required")
        if op not in _MATCH_OPS:
            raise SelectorError(
                f"{where}.operator: {op!r} is not a valid selector operator "
                "(In, NotIn, Exists, DoesNotExist)"
            )
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SelectorError(f"{where}.values: expected a list of strings")
        if op in ("In", "NotIn") and not values:
            raise SelectorError(f"{where}.values: must be specified when operator is {op}")
        if op in ("Exists", "DoesNotExist") and values:
            raise SelectorError(f"{where}.values: may not be specified when operator is {op}")
        reqs.append(Requirement(key, _MATCH_OPS[op], tuple(sorted(set(values)))))
    try:
        return LabelSelector(tuple(reqs))
    except SelectorError as e:
        raise SelectorError(f"selector: {e}") from None


# --- field selectors ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    op: FieldOperator
    value: str

    def __str__(self) -> str:
        esc = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{self.op}{esc}"


def _field_string(v: Any) -> str | None:
    """How a field value compares: None when it is not a scalar."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return None


def _compile_field(r: FieldRequirement) -> Matcher:
    keys = tuple(r.field.split("."))
    want = r.value
    eq = r.op == "="
    # Objects are JSON dicts; paths of one to three parts get a loop-free matcher.
    if len(keys) == 1:
        (a,) = keys

        def match1(obj: dict[str, Any]) -> bool:
            v = obj.get(a)
            return ((v if v.__class__ is str else _field_string(v)) == want) is eq

        return match1
    if len(keys) == 2:
        a, b = keys

        def match2(obj: dict[str, Any]) -> bool:
            v = obj.get(a)
            v = v.get(b) if v.__class__ is dict else None
            return ((v if v.__class__ is str else _field_string(v)) == want) is eq

        return match2
    if len(keys) == 3:
        a, b, c = keys

        def match3(obj: dict[str, Any]) -> bool:
            v = obj.get(a)
            v = v.get(b) if v.__class__ is dict else None
            v = v.get(c) if v.__class__ is dict else None
            return ((v if v.__class__ is str else _field_string(v)) == want) is eq

        return match3

    def match(obj: dict[str, Any]) -> bool:
        v: Any = obj
        for k in keys:
            v = v.get(k) if v.__class__ is dict else None
        return ((v if v.__class__ is str else _field_string(v)) == want) is eq

    return match


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()
    _match: Matcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple(_compile_field(r) for r in self.requirements)
        match: Matcher
        if not compiled:
            match = lambda obj: True  # noqa: E731
        elif len(compiled) == 1:
            match = compiled[0]
        else:

            def match(obj: dict[str, Any]) -> bool:
                for m in compiled:
                    if not m(obj):
                        return False
                return True

        object.__setattr__(self, "_match", match)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: dict[str, Any]) -> bool:
        return self._match(obj)

    def value_of(self, field_path: str) -> str | None:
        """The value required by an `=` term on this field, if any (for indexed look-ups)."""
        for r in self.requirements:
            if r.field == field_path and r.op == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_escaped(s: str, sep: str) -> list[str]:
    """Split on unescaped `sep`, keeping escapes for the next stage."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i : i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(s: str, whole: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in "\\,=":
                raise SelectorError(
                    f"invalid field selector {whole!r}: invalid escape sequence in {s!r}"
                )
            out.append(s[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _find_unescaped(s: str, chars: str) -> int:
    i = 0
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] in chars:
            return i
        i += 1
    return -1


def parse_field_selector(s: str) -> FieldSelector:
    """Parse a field selector string, as given to `?fieldSelector=`."""
    reqs: list[FieldRequirement] = []
    if not s.strip():
        return FieldSelector()
    for term in _split_escaped(s, ","):
        raw = term
        term = term.strip()
        if not term:
            raise SelectorError(f"invalid field selector {s!r}: empty term")
        i = _find_unescaped(term, "=!")
        if i < 0:
            raise SelectorError(
                f"invalid field selector {s!r}: {raw.strip()!r} has no operator (want =, == or !=)"
            )
        op: FieldOperator
        if term.startswith("!=", i):
            op, rest = "!=", term[i + 2 :]
        elif term.startswith("==", i):
            op, rest = "=", term[i + 2 :]
        elif term[i] == "=":
            op, rest = "=", term[i + 1 :]
        else:
            raise SelectorError(
                f"invalid field selector {s!r}: {raw.strip()!r} has no operator (want =, == or !=)"
            )
        key = term[:i].strip()
        if not key:
            raise SelectorError(
                f"invalid field selector {s!r}: {raw.strip()!r} has an empty field name"
            )
        if any(not p for p in key.split(".")) or any(c.isspace() or c == "\\" for c in key):
            raise SelectorError(f"invalid field selector {s!r}: invalid field name {key!r}")
        value = rest.strip()
        if _find_unescaped(value, "=") >= 0:
            raise SelectorError(
                f"invalid field selector {s!r}: unescaped '=' in the value of {key!r} (write \\=)"
            )
        reqs.append(FieldRequirement(key, op, _unescape(value, s)))
    return FieldSelector(tuple(reqs))


# What each kind may be selected by besides metadata.name and metadata.namespace:
# Kubernetes' field labels that are the object's own fields at the dotted path.
_FIELD_LABELS: dict[str, frozenset[str]] = {
    "Pod": frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    "Node": frozenset({"spec.unschedulable"}),
    "Namespace": frozenset({"status.phase"}),
    "Secret": frozenset({"type"}),
    "Service": frozenset({"spec.clusterIP", "spec.type"}),
    "ReplicaSet": frozenset({"status.replicas"}),
    "Event": frozenset(
        {
            *(
                f"involvedObject.{f}"
                for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion")
            ),
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "type",
        }
    ),
}
_META_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


def unsupported_field(kind: str, field: str) -> str | None:
    """The first field of the selector `field` that `kind` cannot be selected
    by, or None. Raises SelectorError for an invalid selector."""
    supported = _FIELD_LABELS.get(kind, frozenset())
    for r in parse_field_selector(field).requirements:
        if r.field not in _META_FIELDS and r.field not in supported:
            return r.field
    return None


def build_matcher(label: str | None, field: str | None) -> Matcher | None:
    """One predicate over whole objects for `?labelSelector=&fieldSelector=`.

    None when both selectors are empty, so the caller can skip filtering.
    Raises SelectorError for invalid selectors.
    """
    ls = parse_label_selector(label) if label else EVERYTHING
    fs = parse_field_selector(field) if field else FieldSelector()
    if ls.empty and fs.empty:
        return None
    fmatch = fs._match
    if ls.empty:
        return fmatch
    lmatch = ls._match

    def by_labels(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata")
        labels = meta.get("labels") if meta.__class__ is dict else None
        return lmatch(labels if labels is not None else _NO_LABELS)

    if fs.empty:
        return by_labels

    def both(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata")
        labels = meta.get("labels") if meta.__class__ is dict else None
        return lmatch(labels if labels is not None else _NO_LABELS) and fmatch(obj)

    return both


def filter_objects(objs: Iterable[dict[str, Any]], matcher: Matcher | None) -> list[dict[str, Any]]:
    """The objects that match; all of them when `matcher` is None."""
    if matcher is None:
        return list(objs)
    return [o for o in objs if matcher(o)]
