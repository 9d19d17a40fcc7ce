"""Deleting one object as Kubernetes does: preconditions, the graceful deletion
of pods, finalizers, and the finalizer of the propagation policy.

An object goes at once unless something holds it: a pod bound to a node gets
a deletionTimestamp and deletionGracePeriodSeconds, and its node agent stops
it and then deletes it for good with grace 0; finalizers hold any object
until they are gone; a namespace goes through Terminating
(control.api.namespaces). `Orphan` and `Foreground` deletes are finalizers too
(`orphan`, `foregroundDeletion`), which the garbage collector carries out;
`Background`, the default, deletes the owner now and leaves its dependents to
the garbage collector.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from agent.protocol.primitives import format_rfc3339
from control import errors
from control.api.namespaces import finalized, mark_terminating
from control.api.options import (
    FOREGROUND,
    FOREGROUND_FINALIZER,
    ORPHAN,
    ORPHAN_FINALIZER,
    DeleteOptions,
)
from control.api.storewrites import StoreWrites
from control.objects.kinds import ResourceType
from control.store.interface import KV, Obj

# The kinds whose delete answers with the object rather than a Status
# (Kubernetes' ReturnDeletedObject).
RETURNS_DELETED_OBJECT = frozenset({"Pod", "Service"})
# 9999-12-31T23:59:59Z: the last time RFC 3339 can write, where an int64 grace period may reach.
_LATEST = 253402300799


@dataclass(frozen=True, slots=True)
class Deletion:
    """What a delete did: `kv` is the object as deleted, or as it stays
    while its deletion is pending; `gone` says which (in a dry run: would).
    `uid` is the object's, for the Status a delete answers with."""

    kv: KV
    gone: bool
    uid: str


async def delete(
    writes: StoreWrites, rt: ResourceType, name: str, current: KV, options: DeleteOptions
) -> Deletion:
    """Delete `current`, or start deleting it."""
    obj = current.obj
    meta = obj["metadata"]
    if options.uid and meta.get("uid") != options.uid:
        raise errors.conflict(
            rt.plural,
            name,
            rt.group,
            f"Precondition failed: UID in precondition: {options.uid}, UID in object meta: {meta.get('uid')}",
        )
    if options.resource_version is not None and options.resource_version != current.mod_revision:
        raise errors.conflict(rt.plural, name, rt.group)
    finalizers = gc_finalizers(list(meta.get("finalizers") or []), options)
    grace = pod_grace_period(obj, options.grace_period_seconds) if rt.kind == "Pod" else 0
    uid = str(meta.get("uid") or "")
    # A namespace is first only marked Terminating, and stays until finalized.
    held = rt.kind == "Namespace" and not (meta.get("deletionTimestamp") and finalized(obj))
    if held:
        mark_terminating(obj)
    if grace > 0 or finalizers or held:
        kv = await _mark_deleting(writes, rt, name, current, obj, finalizers, grace, options)
        return Deletion(kv, gone=False, uid=uid)
    return Deletion(await writes.delete(rt, name, current, options), gone=True, uid=uid)


async def _mark_deleting(
    writes: StoreWrites,
    rt: ResourceType,
    name: str,
    current: KV,
    obj: Obj,
    finalizers: list[str],
    grace: int,
    options: DeleteOptions,
) -> KV:
    """Set deletionTimestamp (now + grace, as Kubernetes does), the grace
    period and the finalizers. A second delete may only shorten a grace
    period already running; otherwise it may change the finalizers."""
    meta = obj["metadata"]
    running = meta.get("deletionGracePeriodSeconds")
    already = bool(meta.get("deletionTimestamp"))
    if already and running and grace >= running:
        return current
    if already and not running and finalizers == (meta.get("finalizers") or []):
        return current
    if finalizers:
        meta["finalizers"] = finalizers
    else:
        meta.pop("finalizers", None)
    if not already or running:
        meta["deletionTimestamp"] = format_rfc3339(min(time.time() + grace, _LATEST))
        if rt.kind == "Pod" or grace:
            meta["deletionGracePeriodSeconds"] = grace
    return await writes.update(rt, name, current, obj, options)


def gc_finalizers(finalizers: list[str], options: DeleteOptions) -> list[str]:
    """The finalizers as a delete with `options` leaves them: the `orphan` or
    `foregroundDeletion` finalizer of its propagation policy added, the other
    taken away (Kubernetes' deletionFinalizersForGarbageCollection).
    Background is every served kind's default (apps/v1's too); without a
    policy in the options, one already set on the object stays."""
    orphan = options.orphan_dependents
    if orphan is None:
        if options.propagation_policy is not None:
            orphan = options.propagation_policy == ORPHAN
        else:
            orphan = ORPHAN_FINALIZER in finalizers
    foreground = False
    if not options.orphan_dependents:
        if options.propagation_policy is not None:
            foreground = options.propagation_policy == FOREGROUND
        else:
            foreground = FOREGROUND_FINALIZER in finalizers
    wanted = [f for f in finalizers if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
    if orphan:
        wanted.append(ORPHAN_FINALIZER)
    if foreground:
        wanted.append(FOREGROUND_FINALIZER)
    return finalizers if set(wanted) == set(finalizers) else wanted


def pod_grace_period(pod: Obj, requested: int | None) -> int:
    """Kubernetes' pod strategy: the requested grace, else the pod's own
    (default 30 s); zero for a pod no node runs, or one that has finished."""
    spec = pod.get("spec") or {}
    if not spec.get("nodeName"):
        return 0
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    if requested is None:
        requested = spec.get("terminationGracePeriodSeconds")
        if not isinstance(requested, int) or isinstance(requested, bool):
            requested = 30
    return max(0, requested)  # 0: force, as `kubectl delete --force --grace-period=0`
