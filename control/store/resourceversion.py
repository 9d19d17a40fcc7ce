"""A stored object's bytes carry its revision as `metadata.resourceVersion`.

Every backend writes them through `stamp`, so an object read from any store can
be served as-is.
"""

from __future__ import annotations

import orjson

from control.objects import Obj


def stamp(obj: Obj, revision: int | None) -> bytes:
    """`obj` serialized with metadata.resourceVersion set to `revision` (dropped
    for None), without mutating `obj`."""
    meta = obj.get("metadata")
    stamped = dict(meta) if isinstance(meta, dict) else {}
    if revision is None:
        stamped.pop("resourceVersion", None)
    else:
        stamped["resourceVersion"] = str(revision)
    return orjson.dumps({**obj, "metadata": stamped})
