"""Controller references and claiming, as client-go's ControllerRefManager.

A workload controller owns the objects whose controller ownerReference names
it: it adopts orphans its selector matches and releases owned objects the
selector no longer matches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from agent.protocol.primitives import controller_ref, new_controller_ref
from control import errors
from control.api.registry import Registry
from control.controllers.objectmeta import Obj, is_deleting, labels_of, meta
from control.errors import ApiError
from control.objects.kinds import ResourceType, object_key
from control.objects.selectors import LabelSelector, SelectorError, selector_from_match

log = logging.getLogger(__name__)


# Index of objects by the uid of their controller (ownerReference with controller: true).
CONTROLLER_UID_INDEX = "controller-uid"
# Index of objects without a controller, by namespace: candidates for adoption.
ORPHAN_INDEX = "orphans"


def controller_uid_index(obj: Obj) -> list[str]:
    ref = controller_ref(obj)
    return [str(ref["uid"])] if ref and ref.get("uid") else []


def orphan_index(obj: Obj) -> list[str]:
    return [] if controller_ref(obj) else [str(meta(obj).get("namespace") or "")]


def selector_of(obj: Obj) -> LabelSelector | None:
    """The compiled `spec.selector`, or None when it is unusable."""
    try:
        return selector_from_match((obj.get("spec") or {}).get("selector"))
    except SelectorError as e:
        log.warning("%s: invalid selector: %s", object_key(obj), e)
        return None


async def claim(
    registry: Registry,
    rt: ResourceType,
    owner: Obj,
    owner_rt: ResourceType,
    selector: LabelSelector,
    candidates: Iterable[Obj],
) -> list[Obj]:
    """The candidates `owner` controls, after adopting matching orphans and
    releasing owned objects the selector no longer matches (client-go's
    ControllerRefManager)."""
    uid = meta(owner).get("uid")
    owner_deleting = is_deleting(owner)
    claimed: list[Obj] = []
    for obj in candidates:
        ref = controller_ref(obj)
        matches = selector.matches(labels_of(obj))
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches:
                claimed.append(obj)
            elif not owner_deleting:
                await drop_owner_refs(registry, rt, obj, {str(uid)})
            continue
        if owner_deleting or is_deleting(obj) or not matches:
            continue
        owner_ref = new_controller_ref(owner, owner_rt.api_version, owner_rt.kind)
        adopted = await _adopt(registry, rt, obj, owner_ref, selector)
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def _adopt(
    registry: Registry, rt: ResourceType, obj: Obj, ref: dict[str, Any], selector: LabelSelector
) -> Obj | None:
    m = meta(obj)

    def add_ref(current: Obj) -> Obj:
        if controller_ref(current) is not None or not selector.matches(labels_of(current)):
            raise errors.conflict(rt.plural, str(m.get("name")), rt.group, "no longer an orphan")
        cm = current.setdefault("metadata", {})
        cm["ownerReferences"] = [*(cm.get("ownerReferences") or []), ref]
        return current

    try:
        kv = await registry.patch(rt, m.get("namespace"), str(m.get("name")), add_ref)
    except ApiError as e:
        if e.code in (404, 409):
            return None
        raise
    log.info("%s %s adopted by %s %s", rt.kind, object_key(obj), ref["kind"], ref["name"])
    return kv.obj


async def drop_owner_refs(registry: Registry, rt: ResourceType, obj: Obj, uids: set[str]) -> None:
    """Take the ownerReferences to `uids` out of `obj` (gone already: nothing to do)."""
    m = meta(obj)

    def drop(current: Obj) -> Obj:
        cm = current.setdefault("metadata", {})
        refs = [r for r in cm.get("ownerReferences") or [] if str(r.get("uid")) not in uids]
        if refs:
            cm["ownerReferences"] = refs
        else:
            cm.pop("ownerReferences", None)
        return current

    try:
        await registry.patch(rt, m.get("namespace"), str(m.get("name")), drop)
    except ApiError as e:
        if e.code != 404:
            raise
