"""Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`)
as the JSON objects the server stores.

A body is the magic `k8s\\0` and a runtime.Unknown whose `raw` is the kind's
message. Only the kinds in `_KINDS` are decoded (those kubectl's create
shortcuts, drain and `auth can-i`/`auth whoami` send), and only the fields of k8s.proto: a body with any
other kind or field is refused with 415, never stored with parts missing.
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf import unknown_fields
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from agent.protocol.primitives import format_rfc3339
from control import errors
from control.api.protobuf import k8s_pb2
from control.errors import ApiError

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

_KINDS: dict[tuple[str, str], type[Message]] = {
    ("v1", "Namespace"): k8s_pb2.Namespace,
    ("v1", "ConfigMap"): k8s_pb2.ConfigMap,
    ("v1", "Secret"): k8s_pb2.Secret,
    ("v1", "Service"): k8s_pb2.Service,
    ("apps/v1", "Deployment"): k8s_pb2.Deployment,
    ("networking.k8s.io/v1", "Ingress"): k8s_pb2.Ingress,
    ("policy/v1", "Eviction"): k8s_pb2.Eviction,
    ("batch/v1", "Job"): k8s_pb2.Job,
    ("batch/v1", "CronJob"): k8s_pb2.CronJob,
    ("v1", "DeleteOptions"): k8s_pb2.DeleteOptions,
    ("meta.k8s.io/v1", "DeleteOptions"): k8s_pb2.DeleteOptions,
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): k8s_pb2.SelfSubjectAccessReview,
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): k8s_pb2.SelfSubjectRulesReview,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): k8s_pb2.SelfSubjectReview,
}

_QUANTITY = k8s_pb2.Quantity.DESCRIPTOR.full_name
_TIME = k8s_pb2.Time.DESCRIPTOR.full_name
_INT_OR_STRING = k8s_pb2.IntOrString.DESCRIPTOR.full_name
_ABSENT = object()


def _unsupported(message: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", f"{message}; send the body as JSON or YAML")


def decode_object(raw: bytes) -> dict[str, Any]:
    """The object a protobuf body holds, shaped as its JSON."""
    if not raw.startswith(MAGIC):
        raise errors.bad_request("a protobuf body must start with the magic bytes k8s\\x00")
    envelope = k8s_pb2.Unknown()
    _parse(envelope, raw[len(MAGIC) :], "the protobuf envelope (runtime.Unknown)")
    if envelope.contentEncoding:
        raise _unsupported(f"protobuf content encoding {envelope.contentEncoding!r}")
    api_version, kind = envelope.typeMeta.apiVersion, envelope.typeMeta.kind
    message_type = _KINDS.get((api_version, kind))
    if message_type is None:
        known = ", ".join(sorted({f"{k} ({v})" for v, k in _KINDS}))
        raise _unsupported(
            f"pilothouse decodes protobuf bodies of {known} only, not {kind or '?'} "
            f"({api_version or '?'})"
        )
    message = message_type()
    _parse(message, envelope.raw, f"the protobuf {kind}")
    unknown = _first_unknown(message, kind)
    if unknown:
        raise _unsupported(f"the protobuf {kind} sets {unknown}, which pilothouse does not decode")
    return {"apiVersion": api_version, "kind": kind, **_object(message)}


def _parse(message: Message, raw: bytes, what: str) -> None:
    try:
        message.ParseFromString(raw)
    except DecodeError as e:
        raise errors.bad_request(f"{what} could not be decoded: {e}") from e


def _first_unknown(message: Message, path: str) -> str | None:
    """Where the first field not in k8s.proto is: `path` and its field number."""
    for field in unknown_fields.UnknownFieldSet(message):
        return f"field number {field.field_number} of {path}"
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            children = [(f"{path}.{field.name}[{k}]", v) for k, v in value.items()]
        elif field.is_repeated:
            children = [(f"{path}.{field.name}[{i}]", v) for i, v in enumerate(value)]
        else:
            children = [(f"{path}.{field.name}", value)]
        for child_path, child in children:
            found = _first_unknown(child, child_path)
            if found:
                return found
    return None


def _object(message: Message) -> dict[str, Any]:
    """A message as its JSON object. ListFields leaves out unset fields and,
    as Go's omitempty does, the zero values of fields without presence."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _value(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [_value(field, v) for v in value]
        else:
            converted = _value(field, value)
            if converted is _ABSENT:
                continue
            if field.GetOptions().Extensions[k8s_pb2.inline]:
                out.update(converted)
            else:
                out[field.name] = converted
    return out


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return value
    name = field.message_type.full_name
    if name == _QUANTITY:
        return value.text or _ABSENT
    if name == _TIME:
        # A zero Time is Go's null: left out.
        return format_rfc3339(value.seconds) if value.seconds or value.nanos else _ABSENT
    if name == _INT_OR_STRING:
        if value.type == 1:
            return value.strVal
        if value.intVal == 0 and not field.GetOptions().Extensions[k8s_pb2.pointer]:
            return _ABSENT
        return value.intVal
    return _object(value)
