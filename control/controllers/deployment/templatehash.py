"""The `pod-template-hash`: a short, stable name for a pod template.

As Kubernetes' ComputeHash: FNV-1a (32 bits) over the template, then the
collision count when there is one; the decimal hash is spelt in an alphabet
without vowels, so it never spells a word.
"""

from __future__ import annotations

import orjson

from control.controllers.objectmeta import Obj
from control.objects.names import safe_encode


def fnv1a_32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def pod_template_hash(template: Obj, collision_count: int | None = None) -> str:
    """A short, stable hash of a pod template (Kubernetes' ComputeHash shape)."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        # Go writes the uint32 little-endian into an 8-byte buffer.
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0"
    return safe_encode(str(fnv1a_32(data)))
