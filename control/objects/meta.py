"""What every kind shares: the base model, ObjectMeta, label selectors, and the
field types (names, labels, ports, quantities) that the kinds are built from.

Models name their fields in Kubernetes camelCase, so they dump to API JSON as is.
Every model keeps unknown fields (`extra="allow"`): a manifest written for a real
cluster may carry fields pilothouse does not model, and they must survive a write.

Validators report problems as pydantic errors whose `type` is a Kubernetes cause
reason (`FieldValueInvalid`, ...); admission turns them into field paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from agent.protocol.primitives import (
    DNS1123_LABEL,
    DNS1123_LABEL_MAX_LENGTH,
    DNS1123_SUBDOMAIN,
    DNS1123_SUBDOMAIN_FMT,
    DNS1123_SUBDOMAIN_MAX_LENGTH,
    LABEL_VALUE_MAX_LENGTH,
    QUALIFIED_NAME,
    QUALIFIED_NAME_FMT,
    QUALIFIED_NAME_MAX_LENGTH,
    is_dns1123_subdomain,
    is_label_value,
    is_quantity,
    quantity_milli_value,
)

# Cause reasons, as Kubernetes spells them.
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
DUPLICATE = "FieldValueDuplicate"
NOT_FOUND = "FieldValueNotFound"
TOO_LONG = "FieldValueTooLong"
TYPE_INVALID = "FieldValueTypeInvalid"

Loc = tuple[str | int, ...]


class KubeModel(BaseModel):
    """Base of every model: unknown fields are kept, never rejected."""

    model_config = ConfigDict(extra="allow")


# --- reporting -------------------------------------------------------------------


def error(reason: str, message: str) -> PydanticCustomError:
    """An error for a field validator to raise; `reason` is a Kubernetes cause reason."""
    return PydanticCustomError(reason, message)


def field_error(loc: Loc, reason: str, message: str) -> InitErrorDetails:
    """One problem a model validator found, `loc` relative to the model."""
    return InitErrorDetails(type=PydanticCustomError(reason, message), loc=loc, input=None)


def duplicate_names(field: str, names: Iterable[object]) -> list[InitErrorDetails]:
    """A DUPLICATE error at `field[i].name` for each name the list already had."""
    errors: list[InitErrorDetails] = []
    seen: set[object] = set()
    for i, name in enumerate(names):
        if name in seen:
            errors.append(field_error((field, i, "name"), DUPLICATE, f'duplicate value "{name}"'))
        seen.add(name)
    return errors


def raise_errors(model: str, errors: list[InitErrorDetails]) -> None:
    """Raise every problem a model validator found at once.

    pydantic merges a ValidationError raised inside a validator into the outer
    one, prefixing each loc, so all causes reach admission together.
    """
    if errors:
        raise ValidationError.from_exception_data(model, errors)


def unsupported(value: object, supported: Iterable[str]) -> str:
    values = ", ".join(f'"{s}"' for s in supported)
    return f'unsupported value "{value}": supported values: {values}'


# --- names -----------------------------------------------------------------------

DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")

LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
DNS1035_RULE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)


# Name rules run as pydantic-core patterns (no Python call per field); admission
# words a mismatch with the rule registered here for its pattern.
PATTERN_MESSAGES: dict[str, str] = {}


def _name_rule(pattern: re.Pattern[str], max_len: int, what: str, rule: str) -> Any:
    anchored = f"^{pattern.pattern}$"
    PATTERN_MESSAGES[anchored] = f"must be a {what}: {rule}"
    return Field(min_length=1, max_length=max_len, pattern=anchored)


DNSLabel = Annotated[
    str, _name_rule(DNS1123_LABEL, DNS1123_LABEL_MAX_LENGTH, "DNS-1123 label", LABEL_RULE)
]
DNSSubdomain = Annotated[
    str,
    _name_rule(
        DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MAX_LENGTH, "DNS-1123 subdomain", SUBDOMAIN_RULE
    ),
]
DNS1035Label = Annotated[str, _name_rule(DNS1035_LABEL, 63, "DNS-1035 label", DNS1035_RULE)]

_IANA_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def _port_name(value: str) -> str:
    if (
        len(value) > 15
        or not _IANA_SVC_NAME.fullmatch(value)
        or "--" in value
        or not any("a" <= c <= "z" for c in value)
    ):
        raise error(
            INVALID,
            "must be an IANA_SVC_NAME: at most 15 lower case alphanumeric characters or '-', "
            "with at least one letter, starting and ending with an alphanumeric character",
        )
    return value


PortName = Annotated[str, Field(min_length=1), AfterValidator(_port_name)]

# --- labels and annotations ------------------------------------------------------

QUALIFIED_NAME_RULE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)


def qualified_name_problem(key: str) -> str | None:
    """Why `key` is not a valid label or annotation key (`[prefix/]name`), or None."""
    prefix, slash, name = key.partition("/")
    if not slash:
        prefix, name = "", key
    elif not prefix:
        return "prefix part must be non-empty"
    elif not is_dns1123_subdomain(prefix):
        return f"prefix part must be a DNS-1123 subdomain: {SUBDOMAIN_RULE}"
    if not name:
        return "name part must be non-empty"
    if len(name) > QUALIFIED_NAME_MAX_LENGTH:
        return f"name part must be no more than {QUALIFIED_NAME_MAX_LENGTH} characters"
    if not QUALIFIED_NAME.fullmatch(name):
        return QUALIFIED_NAME_RULE
    return None


# The common case in one match: an optional subdomain prefix, then a name part.
_LABEL_KEY = re.compile(rf"({DNS1123_SUBDOMAIN_FMT}/)?{QUALIFIED_NAME_FMT}")


def _labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        why = _label_problem_remembered(key, value)
        if why is not None:
            raise error(INVALID, why)
    return labels


def _remembered(check: Callable[..., str | None], longest: int) -> Callable[..., str | None]:
    """`check` (of strings, answering its problem or None), with the answers
    for arguments of at most `longest` characters in all remembered: every
    replica of a workload carries the same labels and quantities. Longer ones,
    invalid anyway, are checked each time and take no memory."""
    cached = lru_cache(maxsize=8192)(check)

    def remembered(*texts: str) -> str | None:
        return cached(*texts) if sum(map(len, texts)) <= longest else check(*texts)

    return remembered


def _label_problem(key: str, value: str) -> str | None:
    why = _key_problem(key)
    if why is not None:
        return why
    if not is_label_value(value):
        if len(value) > LABEL_VALUE_MAX_LENGTH:
            why = f"must be no more than {LABEL_VALUE_MAX_LENGTH} characters"
        else:
            why = LABEL_VALUE_RULE
        return f'invalid value "{value}": {why}'
    return None


def _key_problem(key: str) -> str | None:
    if len(key) > 63 or not _LABEL_KEY.fullmatch(key):
        why = qualified_name_problem(key)
        if why:
            return f'invalid key "{key}": {why}'
    return None


# The longest valid label key (a 253-character prefix, "/", a 63-character
# name) and value (63).
_label_problem_remembered = _remembered(_label_problem, 253 + 1 + 63 + 63)


ANNOTATIONS_MAX_BYTES = 256 * 1024


def _annotations(annotations: dict[str, str]) -> dict[str, str]:
    size = 0
    for key, value in annotations.items():
        why = _key_problem(key)
        if why is not None:
            raise error(INVALID, why)
        size += len(key) + len(value)
    if size > ANNOTATIONS_MAX_BYTES:
        raise error(TOO_LONG, f"must have at most {ANNOTATIONS_MAX_BYTES} bytes")
    return annotations


Labels = Annotated[dict[str, str], AfterValidator(_labels)]
Annotations = Annotated[dict[str, str], AfterValidator(_annotations)]

# --- numbers and quantities ------------------------------------------------------

# The ranges of Kubernetes' int32 and int64 fields.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise error(INVALID, "must be between 1 and 65535, inclusive")
    return value


Port = Annotated[int, AfterValidator(_port)]


def _int_or_string(value: object) -> int | str:
    if isinstance(value, str) or (
        isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value <= INT32_MAX
    ):
        return value
    raise error(TYPE_INVALID, "must be an int32 or a string")


IntOrString = Annotated[int | str, PlainValidator(_int_or_string)]


def _port_or_name(value: object) -> int | str:
    value = _int_or_string(value)
    return _port(value) if isinstance(value, int) else _port_name(value)


PortOrName = Annotated[int | str, PlainValidator(_port_or_name)]


def _quantity(value: object) -> str:
    # YAML gives `cpu: 1` as a number; Kubernetes stores quantities as strings.
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise error(INVALID, _QUANTITY_SYNTAX)
    why = _quantity_problem_remembered(value)
    if why is not None:
        raise error(INVALID, why)
    return value


_QUANTITY_SYNTAX = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def _quantity_problem(value: str) -> str | None:
    if not is_quantity(value):
        return _QUANTITY_SYNTAX
    # Kubernetes keeps a quantity in int64 milli-units; none is negative.
    try:
        milli = quantity_milli_value(value)
    except ValueError:
        milli = INT64_MAX + 1  # an exponent beyond any int64
    if milli < 0:
        return "must be greater than or equal to 0"
    if milli > INT64_MAX:
        return f"must be less than or equal to {INT64_MAX}m"
    return None


_quantity_problem_remembered = _remembered(_quantity_problem, 64)


Quantity = Annotated[str, PlainValidator(_quantity)]
ResourceList = dict[str, Quantity]

Time = str  # RFC 3339, kept as the client wrote it

# --- metadata --------------------------------------------------------------------


class OwnerReference(KubeModel):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    blockOwnerDeletion: bool | None = None


def _owner_references(refs: list[OwnerReference]) -> list[OwnerReference]:
    if sum(1 for r in refs if r.controller) > 1:
        raise error(INVALID, "only one reference can have controller set to true")
    return refs


class ObjectMeta(KubeModel):
    """Metadata as it appears in templates: the name is optional and unchecked."""

    name: str | None = None
    generateName: str | None = None
    namespace: DNSLabel | None = None
    labels: Labels | None = None
    annotations: Annotations | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    generation: Int64 | None = None
    creationTimestamp: Time | None = None
    deletionTimestamp: Time | None = None
    deletionGracePeriodSeconds: Int64 | None = None
    ownerReferences: Annotated[list[OwnerReference], AfterValidator(_owner_references)] | None = (
        None
    )
    finalizers: list[str] | None = None


# The API server fills `name` from `generateName` before admission, so objects
# that reach admission must be named; the rule for the name depends on the kind.
class SubdomainMeta(ObjectMeta):
    name: DNSSubdomain


class LabelMeta(ObjectMeta):
    name: DNSLabel


class DNS1035Meta(ObjectMeta):
    name: DNS1035Label


class ObjectReference(KubeModel):
    apiVersion: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    fieldPath: str | None = None


class Condition(KubeModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    lastTransitionTime: Time | None = None


class KubeObject(KubeModel):
    """A top-level object. Subclasses narrow `metadata` to their kind's name rule."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta


# --- label selectors -------------------------------------------------------------


class LabelSelectorRequirement(KubeModel):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None

    @model_validator(mode="after")
    def _check_values(self) -> Self:
        if self.operator in ("In", "NotIn") and not self.values:
            why = "must be specified when `operator` is 'In' or 'NotIn'"
            raise_errors("values", [field_error(("values",), REQUIRED, why)])
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            why = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            raise_errors("values", [field_error(("values",), FORBIDDEN, why)])
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        present = self.key in labels and labels[self.key] in (self.values or ())
        return present if self.operator == "In" else not present


class LabelSelector(KubeModel):
    matchLabels: Labels | None = None
    matchExpressions: list[LabelSelectorRequirement] | None = None

    def is_empty(self) -> bool:
        return not self.matchLabels and not self.matchExpressions

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with `labels` is selected. An empty selector selects all."""
        labels = labels or {}
        if self.matchLabels:
            for key, value in self.matchLabels.items():
                if labels.get(key) != value:
                    return False
        return all(req.matches(labels) for req in self.matchExpressions or ())
