"""The Deployment controller: its informers, event handlers and the reconcile
entry (Kubernetes' deployment_controller.go), which hands each Deployment to a
phase: sync (scaling, paused), RollingUpdate or Recreate.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from agent.protocol.primitives import controller_ref
from control.config import Config
from control.controllers.base import (
    QueueController,
    claim_candidates,
    event_object,
    owner_key,
    selecting_keys,
)
from control.controllers.deployment.mutations import MutationCache
from control.controllers.deployment.recreate import Recreate
from control.controllers.deployment.replicas import is_rolling
from control.controllers.deployment.rolling import RollingUpdate
from control.controllers.deployment.sync import SyncState
from control.controllers.objectmeta import Obj, is_deleting, meta
from control.controllers.ownership import claim, selector_of
from control.controllers.podstate import is_pod_active, is_pod_ready
from control.objects.kinds import DEPLOYMENT, POD, REPLICASET, object_key
from control.objects.selectors import LabelSelector

if TYPE_CHECKING:
    from control.controllers.manager import ControllerManager


COMPONENT = "deployment-controller"


def _pod_state(pod: Obj) -> tuple[bool, bool, str, str]:
    """What about a pod matters to a Deployment's rollout."""
    return (
        is_pod_active(pod),
        is_pod_ready(pod),
        str((pod.get("status") or {}).get("phase")),
        str(controller_ref(pod)),
    )


class DeploymentController(QueueController, RollingUpdate, Recreate):
    name = COMPONENT

    def __init__(self, manager: ControllerManager, config: Config, *, workers: int = 2) -> None:
        super().__init__(manager, config, workers=workers)
        self.deployments = self.informer(DEPLOYMENT)
        self.replicasets = self.informer(REPLICASET, claimable=True)
        self.pods = self.informer(POD, claimable=True)
        self._written = MutationCache()
        self._written_deployments = MutationCache()
        self.deployments.add_handler(self._on_deployment)
        self.replicasets.add_handler(self._on_replicaset)
        self.pods.add_handler(self._on_pod)

    # -- event handlers ----------------------------------------------------------

    def _on_deployment(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = event_object(old, new)
        key = object_key(obj)
        self._written_deployments.observed(key, new)
        self.queue.add(key)

    def _deployment_key(self, rs: Obj) -> str | None:
        return owner_key(self.deployments, "Deployment", rs)

    def _on_replicaset(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = event_object(old, new)
        self._written.observed(object_key(obj), new)
        if old is not None and new is not None:
            old_key = self._deployment_key(old)
            if old_key is not None and old_key != self._deployment_key(new):
                self.queue.add(old_key)
        d_key = self._deployment_key(obj)
        if d_key is not None:
            self.queue.add(d_key)
        elif new is not None and controller_ref(new) is None and not is_deleting(new):
            for key in selecting_keys(self.deployments, new):
                self.queue.add(key)

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        pod = event_object(old, new)
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return  # most pods in a busy cluster: checked first, it is cheap
        if old is not None and new is not None and _pod_state(old) == _pod_state(new):
            return
        rs_key = owner_key(self.replicasets, "ReplicaSet", pod)
        rs = self.replicasets.get(rs_key) if rs_key is not None else None
        d_key = self._deployment_key(rs) if rs is not None else None
        if d_key is not None:
            self.queue.add(d_key)

    # -- reconcile ---------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        cached = self.deployments.get(key)
        if cached is None:
            return None
        st = SyncState(copy.deepcopy(self._written_deployments.newest(cached)))
        d = st.d
        selector = selector_of(d)
        if selector is None or selector.empty:
            await self.recorder.record(
                d,
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            status = copy.deepcopy(d.get("status") or {})
            status["observedGeneration"] = int(meta(d).get("generation") or 1)
            await self._write_status(st, status)
            return None
        for rs in await self._replicasets_for(d, selector):
            st.put(rs)
        if is_deleting(d):
            await self._get_all(st, create=False)
            await self._sync_status(st)
            return None
        await self._check_paused_conditions(st)
        if (d.get("spec") or {}).get("paused"):
            await self._sync(st)
            return None
        if await self._is_scaling_event(st):
            await self._sync(st)
            return None
        if is_rolling(d):
            return await self._rollout_rolling(st)
        return await self._rollout_recreate(st)

    async def _replicasets_for(self, d: Obj, selector: LabelSelector) -> list[Obj]:
        uid = str(meta(d).get("uid"))
        found: dict[str, Obj] = {}
        for rs in claim_candidates(self.replicasets, d):
            found[object_key(rs)] = self._written.newest(rs)
        for key, rs in self._written.items():
            ref = controller_ref(rs)
            if key not in found and ref is not None and ref.get("uid") == uid:
                found[key] = rs  # created by us, not seen by the informer yet
        return await claim(self.registry, REPLICASET, d, DEPLOYMENT, selector, found.values())
