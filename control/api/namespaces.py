"""A Namespace's life in the registry, as Kubernetes' namespace strategy has it.

A new namespace gets the `kubernetes` finalizer in `spec.finalizers`. The
first delete only marks it: deletionTimestamp, and `status.phase`
Terminating; nothing can be created in it from then on (403). The namespace
controller (control.controllers.namespace) deletes what it holds, then takes
its finalizer away through the `finalize` subresource, the one way to change
`spec.finalizers`; with none left, the namespace goes.
"""

from __future__ import annotations

from typing import Any

from control.errors import ApiError, Cause
from control.objects.kinds import ResourceType

KUBERNETES_FINALIZER = "kubernetes"
FINALIZE = "finalize"  # the subresource
TERMINATING = "Terminating"

Obj = dict[str, Any]


def prepare_create(ns: Obj) -> None:
    """Add the `kubernetes` finalizer, as every new namespace has it."""
    spec = ns.get("spec")
    if not isinstance(spec, dict):
        spec = ns["spec"] = {}
    finalizers = list(spec.get("finalizers") or [])
    if KUBERNETES_FINALIZER not in finalizers:
        finalizers.append(KUBERNETES_FINALIZER)
    spec["finalizers"] = finalizers


def prepare_update(old: Obj, new: Obj, subresource: str) -> Obj:
    """What a write through `subresource` may change: `finalize` changes
    `spec.finalizers` alone; any other keeps them as stored."""
    old_finalizers = (old.get("spec") or {}).get("finalizers")
    if subresource == FINALIZE:
        wanted = (new.get("spec") or {}).get("finalizers")
        new = {**old, "spec": {**(old.get("spec") or {}), "finalizers": wanted or []}}
        if not wanted:
            new["spec"].pop("finalizers")
        return new
    spec = new.get("spec")
    if not isinstance(spec, dict):
        spec = new["spec"] = {}
    if old_finalizers:
        spec["finalizers"] = old_finalizers
    else:
        spec.pop("finalizers", None)
    return new


def finalized(ns: Obj) -> bool:
    """Whether no `spec.finalizers` hold the namespace."""
    return not (ns.get("spec") or {}).get("finalizers")


def mark_terminating(ns: Obj) -> None:
    ns["status"] = {**(ns.get("status") or {}), "phase": TERMINATING}


def terminating(rt: ResourceType, name: str, namespace: str) -> ApiError:
    """The answer to a create in a namespace being deleted, as kube-apiserver's."""
    why = f"unable to create new content in namespace {namespace} because it is being terminated"
    qual = rt.group_resource
    return ApiError(
        403,
        "Forbidden",
        f'{qual} "{name}" is forbidden: {why}',
        rt.plural,
        name,
        rt.group,
        [Cause("metadata.namespace", why, "NamespaceTerminating")],
    )
