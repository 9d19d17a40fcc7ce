"""The self reviews' bodies in Kubernetes' protobuf encoding, as kubectl
sends them: the `k8s\\0` envelope (runtime.Unknown) around a
self review (access, rules or self), decoded into the JSON shape.
The messages are declared here with the fields a review's answer needs
(field numbers from k8s.io/api authorization/v1 and apimachinery runtime);
the protobuf library parses them, skipping the rest (ObjectMeta).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError, Message

from control import errors

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"
_PACKAGE = "pilothouse.reviews"
_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_BYTES = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE

# message -> its fields: (name, number, type, message type or "")
_MESSAGES: dict[str, list[tuple[str, int, int, str]]] = {
    "TypeMeta": [("apiVersion", 1, _STRING, ""), ("kind", 2, _STRING, "")],
    "Unknown": [("typeMeta", 1, _MESSAGE, "TypeMeta"), ("raw", 2, _BYTES, "")],
    "ResourceAttributes": [
        (name, number, _STRING, "")
        for number, name in enumerate(
            ("namespace", "verb", "group", "version", "resource", "subresource", "name"), 1
        )
    ],
    "NonResourceAttributes": [("path", 1, _STRING, ""), ("verb", 2, _STRING, "")],
    "Spec": [
        ("resourceAttributes", 1, _MESSAGE, "ResourceAttributes"),
        ("nonResourceAttributes", 2, _MESSAGE, "NonResourceAttributes"),
    ],
    "SelfSubjectAccessReview": [("spec", 2, _MESSAGE, "Spec")],
    "RulesSpec": [("namespace", 1, _STRING, "")],
    "SelfSubjectRulesReview": [("spec", 2, _MESSAGE, "RulesSpec")],
}


def _classes() -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(
        name="pilothouse/reviews.proto", package=_PACKAGE, syntax="proto3"
    )
    for message, fields in _MESSAGES.items():
        proto = file.message_type.add(name=message)
        for name, number, kind, type_name in fields:
            field = proto.field.add(name=name, json_name=name, number=number, type=kind, label=1)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        m: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{m}"))
        for m in _MESSAGES
    }


_CLASSES = _classes()


def _parse(message: str, raw: bytes) -> dict[str, Any]:
    parsed = _CLASSES[message]()
    try:
        parsed.ParseFromString(raw)
    except DecodeError as e:
        raise errors.bad_request(f"the protobuf body is not a valid {message}: {e}") from e
    return MessageToDict(parsed, preserving_proto_field_name=True)


def decode_review(raw: bytes) -> dict[str, Any]:
    """A SelfSubjectAccessReview, SelfSubjectRulesReview or SelfSubjectReview
    from its protobuf body."""
    if not raw.startswith(_MAGIC):
        raise errors.bad_request("the protobuf body lacks the k8s envelope")
    envelope = _CLASSES["Unknown"]()
    try:
        envelope.ParseFromString(raw[len(_MAGIC) :])
    except DecodeError as e:
        raise errors.bad_request(f"the protobuf body is not a valid envelope: {e}") from e
    type_meta = MessageToDict(envelope.typeMeta)
    review: dict[str, Any] = {**type_meta, "metadata": {}}
    kind = type_meta.get("kind")
    if kind in ("SelfSubjectAccessReview", "SelfSubjectRulesReview"):
        body = _parse(kind, envelope.raw)
        review["spec"] = body.get("spec") or {}
    return review
