"""The self reviews' bodies in Kubernetes' protobuf encoding, as kubectl
sends them: the `k8s\\0` envelope (runtime.Unknown) around a
SelfSubjectAccessReview or SelfSubjectReview, decoded into the JSON shape.
Only the fields a review's answer needs are read; ObjectMeta is left out.
"""

from __future__ import annotations

from typing import Any

from control import errors

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"
_RESOURCE_ATTRIBUTES = (
    "namespace",
    "verb",
    "group",
    "version",
    "resource",
    "subresource",
    "name",
)
_NON_RESOURCE_ATTRIBUTES = ("path", "verb")


def _fields(raw: bytes) -> list[tuple[int, bytes]]:
    """The length-delimited fields of a message, as (number, bytes); varint
    fields are skipped (none of the fields read here is one)."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(raw):
        key, i = _varint(raw, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(raw, i)
        elif wire == 2:
            size, i = _varint(raw, i)
            if i + size > len(raw):
                raise errors.bad_request("the protobuf body is truncated")
            out.append((number, raw[i : i + size]))
            i += size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise errors.bad_request(f"the protobuf body has an unsupported wire type {wire}")
    return out


def _varint(raw: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(raw) or shift > 63:
            raise errors.bad_request("the protobuf body is truncated")
        b = raw[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _strings(raw: bytes, names: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for number, value in _fields(raw):
        if 1 <= number <= len(names):
            out[names[number - 1]] = value.decode("utf-8", errors="replace")
    return out


def decode_review(raw: bytes) -> dict[str, Any]:
    """A SelfSubjectAccessReview or SelfSubjectReview from its protobuf body."""
    if not raw.startswith(_MAGIC):
        raise errors.bad_request("the protobuf body lacks the k8s envelope")
    envelope = dict(_fields(raw[len(_MAGIC) :]))
    type_meta = _strings(envelope.get(1, b""), ("apiVersion", "kind"))
    review: dict[str, Any] = {**type_meta, "metadata": {}}
    if type_meta.get("kind") != "SelfSubjectAccessReview":
        return review
    spec: dict[str, Any] = {}
    for number, value in _fields(envelope.get(2, b"")):
        if number == 2:  # spec
            for which, attrs in _fields(value):
                if which == 1:
                    spec["resourceAttributes"] = _strings(attrs, _RESOURCE_ATTRIBUTES)
                elif which == 2:
                    spec["nonResourceAttributes"] = _strings(attrs, _NON_RESOURCE_ATTRIBUTES)
    review["spec"] = spec
    return review
