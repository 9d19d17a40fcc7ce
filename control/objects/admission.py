"""Admission: validate an object against its kind's model and fill in defaults.

`admit` is on the API server's write path. Models are built once at import; a
call is one pydantic validation and one dump, both in pydantic-core.
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from control.errors import ApiError, Cause, invalid
from control.objects import kinds
from control.objects.apps import DaemonSet, Deployment, ReplicaSet
from control.objects.batch import CronJob, Job
from control.objects.coordination import Lease
from control.objects.core import ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service
from control.objects.discovery import EndpointSlice
from control.objects.gateway import Gateway, GatewayClass, HTTPRoute
from control.objects.meta import (
    INVALID,
    NOT_SUPPORTED,
    PATTERN_MESSAGES,
    REQUIRED,
    TOO_LONG,
    TYPE_INVALID,
    KubeObject,
)
from control.objects.networking import Ingress, IngressClass

MODELS: dict[str, type[KubeObject]] = {
    m.__name__: m
    for m in (
        Namespace,
        Node,
        Pod,
        Service,
        Endpoints,
        Secret,
        ConfigMap,
        Event,
        Deployment,
        ReplicaSet,
        Ingress,
        IngressClass,
        EndpointSlice,
        GatewayClass,
        Gateway,
        HTTPRoute,
        Lease,
        DaemonSet,
        Job,
        CronJob,
    )
}

_unmodelled = {r.kind for r in kinds.RESOURCES} - MODELS.keys()
if _unmodelled:
    raise RuntimeError(f"kinds without a model: {sorted(_unmodelled)}")


def admit(obj: dict[str, Any]) -> dict[str, Any]:
    """Validate `obj` and return a new JSON-able dict with defaults filled in.

    Unknown fields are kept; optional fields left unset are omitted. Raises
    ApiError 422 (`control.errors.invalid`) listing every cause found.
    """
    if not isinstance(obj, dict):
        raise invalid("", "", [Cause("", "must be an object", TYPE_INVALID)])
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    rt = (
        kinds.by_kind(api_version, kind)
        if isinstance(api_version, str) and isinstance(kind, str)
        else None
    )
    if rt is None:
        raise _unknown_kind(obj)
    model = MODELS[rt.kind]
    try:
        validated = model.model_validate(obj)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(err["input"] is None and err["type"] in _NULLABLE for err in errors):
            # Kubernetes reads `field: null` as unset, so the default applies. Only
            # rejected objects pay for the copy without nulls.
            return _admit_without_nulls(model, rt, obj)
        raise _invalid(model, rt, obj, errors) from None
    return validated.model_dump(mode="json", exclude_none=True)


def admit_update(obj: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """`admit` for an update of `stored`, an object admitted before.

    When only `metadata` differs (labels, annotations, finalizers, owners: what
    controllers patch most) and the kind has no check across its fields, the
    rest is as admitted already, so only the metadata is validated. Whatever
    that check refuses goes through `admit`, for its exact causes.
    """
    if obj.keys() == stored.keys() and obj.get("kind") == stored.get("kind"):
        meta_model = _METADATA_ONLY.get(str(obj.get("kind")))
        if meta_model is not None and all(
            value == stored[key] for key, value in obj.items() if key != "metadata"
        ):
            try:
                meta = meta_model.model_validate(obj.get("metadata"))
            except ValidationError:
                return admit(obj)
            return {**obj, "metadata": meta.model_dump(mode="json", exclude_none=True)}
    return admit(obj)


def _metadata_model(model: type[KubeObject]) -> type[BaseModel] | None:
    """The model of `model`'s metadata, when the kind validates each top-level
    field on its own (no validator that reads several)."""
    decorators = model.__pydantic_decorators__
    if decorators.model_validators or decorators.field_validators:
        return None
    meta = model.model_fields["metadata"].annotation
    return meta if isinstance(meta, type) and issubclass(meta, BaseModel) else None


_METADATA_ONLY: dict[str, type[BaseModel]] = {
    kind: meta for kind, model in MODELS.items() if (meta := _metadata_model(model)) is not None
}


def _admit_without_nulls(
    model: type[KubeObject], rt: kinds.ResourceType, obj: dict[str, Any]
) -> dict[str, Any]:
    try:
        validated = model.model_validate(_without_nulls(obj))
    except ValidationError as exc:
        raise _invalid(model, rt, obj, exc.errors(include_url=False)) from None
    return validated.model_dump(mode="json", exclude_none=True)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _invalid(
    model: type[KubeObject], rt: kinds.ResourceType, obj: dict[str, Any], errors: list[ErrorDetails]
) -> ApiError:
    causes = [_cause(model, err) for err in errors]
    return invalid(rt.kind, _name(obj), causes, rt.group)


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def _unknown_kind(obj: dict[str, Any]) -> ApiError:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    causes: list[Cause] = []
    if not api_version:
        causes.append(Cause("apiVersion", "required", REQUIRED))
    if not kind:
        causes.append(Cause("kind", "required", REQUIRED))
    if not causes:
        served = [r.api_version for r in kinds.RESOURCES if r.kind == kind]
        if served:
            why = (
                f'unsupported value "{api_version}" for kind "{kind}": '
                f'supported values: "{served[0]}"'
            )
            causes.append(Cause("apiVersion", why, NOT_SUPPORTED))
        else:
            why = f'no kind "{kind}" is registered for apiVersion "{api_version}"'
            causes.append(Cause("kind", why, NOT_SUPPORTED))
    return invalid(str(kind or ""), _name(obj), causes)


# --- pydantic errors to Kubernetes causes ------------------------------------------

_TYPE_MESSAGES = {
    "string_type": "must be a string",
    "string_unicode": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be a boolean",
    "bool_parsing": "must be a boolean",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be an array",
}


# Errors a `null` can cause, when the field has a default or the model allows it unset.
_NULLABLE = frozenset((*_TYPE_MESSAGES, "literal_error"))


def _message(err: ErrorDetails) -> tuple[str, str]:
    """(message, reason) for one pydantic error."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind.startswith("FieldValue"):  # raised by our validators, already worded
        return err["msg"], kind
    if kind == "missing":
        return "required", REQUIRED
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind], TYPE_INVALID
    if kind == "literal_error":
        supported = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        values = ", ".join(f'"{s}"' for s in supported)
        return f'unsupported value "{err["input"]}": supported values: {values}', NOT_SUPPORTED
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        rule = PATTERN_MESSAGES.get(pattern, f"must match the regular expression '{pattern}'")
        return rule, INVALID
    if kind in ("too_short", "string_too_short"):
        n = ctx.get("min_length", 1)
        if n == 1:
            return "required", REQUIRED
        unit = "items" if kind == "too_short" else "characters"
        return f"must have at least {n} {unit}", INVALID
    if kind in ("too_long", "string_too_long"):
        n = ctx.get("max_length")
        if kind == "too_long":
            return f"must have at most {n} items", TOO_LONG
        return f"must be no more than {n} characters", TOO_LONG
    for op, key in ((">=", "ge"), (">", "gt"), ("<=", "le"), ("<", "lt")):
        if key in ctx:
            return f"must be {op} {ctx[key]}", INVALID
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return msg[:1].lower() + msg[1:], INVALID


def _cause(model: type[BaseModel], err: ErrorDetails) -> Cause:
    message, reason = _message(err)
    return Cause(field_path(model, err["loc"]), message, reason)


_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def field_path(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error loc as a Kubernetes field path.

    Walks the model alongside the loc to tell fields (`.image`) from list indices
    (`[0]`) and map keys (`[app.kubernetes.io/name]`).
    """
    out: list[str] = []
    tp: Any = model
    for seg in loc:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if seg == "[key]":  # pydantic marks an invalid map key so; the key is already shown
            continue
        if origin is dict:
            out.append(f"[{seg}]")
            tp = get_args(tp)[1]
        elif origin is list or isinstance(seg, int):
            out.append(f"[{seg}]")
            tp = get_args(tp)[0] if origin is list else Any
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and seg in tp.model_fields:
            out.append(f".{seg}" if out else seg)
            tp = tp.model_fields[seg].annotation
        else:  # an unmodelled place: guess from the shape of the segment
            out.append((f".{seg}" if out else seg) if _IDENT.fullmatch(seg) else f"[{seg}]")
            tp = Any
    return "".join(out)


def _unwrap(tp: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` down to X."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union or origin is types.UnionType:
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp
