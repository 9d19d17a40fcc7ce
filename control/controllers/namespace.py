"""The namespace controller: empties a namespace being deleted, then finalizes it.

A namespace's delete only marks it Terminating (control.api.namespaces).
This controller deletes every namespaced object in it, as Kubernetes'
namespace controller does: pods gracefully, through their node agents;
owners with the default background propagation. While objects remain it says
so in the namespace's status conditions (NamespaceContentRemaining,
NamespaceFinalizersRemaining) and looks again; once none do, it takes the
`kubernetes` finalizer away through the `finalize` subresource, and with no
other finalizer left the namespace goes.
"""

from __future__ import annotations

import logging
from collections import Counter

from agent.protocol.primitives import now_rfc3339
from control.api.namespaces import FINALIZE, KUBERNETES_FINALIZER
from control.api.options import BACKGROUND, DeleteOptions
from control.config import Config
from control.controllers.base import Informers, QueueController, event_object
from control.controllers.objectmeta import Obj, is_deleting, meta
from control.errors import ApiError
from control.objects.kinds import NAMESPACE, POD, RESOURCES

log = logging.getLogger(__name__)

COMPONENT = "namespace-controller"
# How soon to look again while objects remain (a pod's deletion also wakes it).
RECHECK_SECONDS = 2.0
# As Kubernetes' namespace controller deletes: dependents in the background.
_BACKGROUND = DeleteOptions(propagation_policy=BACKGROUND)
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"


class NamespaceController(QueueController):
    name = COMPONENT

    def __init__(self, manager: Informers, config: Config) -> None:
        super().__init__(manager, config, workers=2)
        self.namespaces = self.informer(NAMESPACE)
        self.namespaces.add_handler(self._on_namespace)
        # Pods linger longest (graceful deletion): their going wakes the namespace.
        self.informer(POD).add_handler(self._on_pod)

    def _on_namespace(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None and is_deleting(new):
            self.queue.add(str(meta(new)["name"]))

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            return
        ns = self.namespaces.get(str(meta(event_object(old, new)).get("namespace")))
        if ns is not None and is_deleting(ns):
            self.queue.add(str(meta(ns)["name"]))

    async def reconcile(self, name: str) -> float | None:
        ns = self.namespaces.get(name)
        if ns is None or not is_deleting(ns):
            return None
        remaining, finalizers = await self._delete_content(name)
        await self._report(name, remaining, finalizers)
        if remaining:
            return RECHECK_SECONDS
        if KUBERNETES_FINALIZER in ((ns.get("spec") or {}).get("finalizers") or []):
            await self._finalize(name)
        return None

    async def _delete_content(self, namespace: str) -> tuple[Counter[str], Counter[str]]:
        """Delete what is in the namespace; what remains, by resource, and the
        finalizers that hold it, by finalizer."""
        remaining: Counter[str] = Counter()
        finalizers: Counter[str] = Counter()
        for rt in RESOURCES:
            if not rt.namespaced:
                continue
            for kv in (await self.registry.list(rt, namespace)).items:
                obj = kv.obj
                m = meta(obj)
                if not is_deleting(obj):
                    try:
                        obj = (
                            await self.registry.delete_object(
                                rt, namespace, str(m["name"]), _BACKGROUND
                            )
                        ).kv.obj
                    except ApiError as e:
                        if e.code == 404:
                            continue
                        raise
                    if not is_deleting(obj):
                        continue  # gone
                remaining[rt.group_resource] += 1
                finalizers.update(meta(obj).get("finalizers") or [])
        return remaining, finalizers

    async def _report(self, name: str, remaining: Counter[str], finalizers: Counter[str]) -> None:
        """The namespace's conditions about what holds it, written when they change."""
        wanted = [
            _condition(
                CONTENT_REMAINING,
                "SomeResourcesRemain",
                "ContentRemoved",
                "Some resources are remaining: "
                + ", ".join(
                    f"{r} has {n} resource instances" for r, n in sorted(remaining.items())
                ),
                bool(remaining),
            ),
            _condition(
                FINALIZERS_REMAINING,
                "SomeFinalizersRemain",
                "ContentHasNoFinalizers",
                "Some content in the namespace has finalizers remaining: "
                + ", ".join(
                    f"{f} in {n} resource instances" for f, n in sorted(finalizers.items())
                ),
                bool(finalizers),
            ),
        ]

        def build(obj: Obj) -> Obj:
            status = obj.setdefault("status", {})
            conditions = {c.get("type"): c for c in status.get("conditions") or []}
            for c in wanted:
                have = conditions.get(c["type"])
                if have is None or any(
                    have.get(k) != c[k] for k in ("status", "reason", "message")
                ):
                    conditions[c["type"]] = {**c, "lastTransitionTime": now_rfc3339()}
            status["conditions"] = list(conditions.values())
            return obj

        try:
            await self.registry.patch(NAMESPACE, None, name, build, subresource="status")
        except ApiError as e:
            if e.code != 404:
                raise

    async def _finalize(self, name: str) -> None:
        def build(obj: Obj) -> Obj:
            spec = obj.setdefault("spec", {})
            spec["finalizers"] = [
                f for f in spec.get("finalizers") or [] if f != KUBERNETES_FINALIZER
            ]
            return obj

        try:
            await self.registry.patch(NAMESPACE, None, name, build, subresource=FINALIZE)
        except ApiError as e:
            if e.code != 404:
                raise
        log.info("namespace %s: content deleted, finalized", name)


def _condition(type_: str, yes: str, no: str, message: str, true: bool) -> Obj:
    if true:
        return {"type": type_, "status": "True", "reason": yes, "message": message}
    return {"type": type_, "status": "False", "reason": no, "message": ""}
