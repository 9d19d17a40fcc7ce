"""The annotations a Deployment keeps on its ReplicaSets: the revision and its
history, and the desired and maximum replicas it sized them for."""

from __future__ import annotations

from collections.abc import Iterable

from control.controllers.deployment.replicas import max_surge, replicas
from control.controllers.objectmeta import Obj, meta
from control.objects.revisions import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    SKIP_ANNOTATIONS,
    revision,
)

MAX_REVISION_HISTORY_CHARS = 2000


def annotations_of(obj: Obj) -> dict[str, str]:
    """The object's annotations, for writing (created when missing)."""
    m = obj.setdefault("metadata", {})
    ann = m.get("annotations")
    if not isinstance(ann, dict):
        ann = m["annotations"] = {}
    return ann


def next_revision(olds: Iterable[Obj]) -> int:
    """The revision of a new template: one above the old ReplicaSets' highest."""
    return max((revision(rs) for rs in olds), default=0) + 1


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = annotations_of(rs)
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """Copy the Deployment's annotations, and raise the revision (keeping the
    old one in the revision history when it is a rollback to this template)."""
    ann = annotations_of(rs)
    changed = False
    for key, value in (meta(d).get("annotations") or {}).items():
        if key not in SKIP_ANNOTATIONS and ann.get(key) != value:
            ann[key] = value
            changed = True
    old = ann.get(REVISION)
    try:
        old_revision = int(old) if old else 0
    except ValueError:
        old_revision = 0
    if old_revision < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old:
            history = [r for r in ann.get(REVISION_HISTORY, "").split(",") if r]
            history.append(old)
            while len(",".join(history)) > MAX_REVISION_HISTORY_CHARS and len(history) > 1:
                history.pop(0)
            ann[REVISION_HISTORY] = ",".join(history)
    if not exists:
        set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d))
        changed = True
    return changed
