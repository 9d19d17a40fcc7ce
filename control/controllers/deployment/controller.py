"""The Deployment controller: its informers, event handlers and the reconcile
entry (Kubernetes' deployment_controller.go), which hands each Deployment to a
phase: sync (scaling, paused), RollingUpdate or Recreate.
"""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Any

from agent.protocol.primitives import controller_ref
from control.config import Config
from control.controllers.base import run_workers
from control.controllers.deployment.recreate import Recreate
from control.controllers.deployment.replicas import is_rolling
from control.controllers.deployment.rolling import RollingUpdate
from control.controllers.deployment.sync import SyncState
from control.controllers.objectmeta import is_deleting, labels_of, meta
from control.controllers.ownership import (
    CONTROLLER_UID_INDEX,
    ORPHAN_INDEX,
    claim,
    controller_uid_index,
    orphan_index,
    selector_of,
)
from control.controllers.podstate import is_pod_active, is_pod_ready
from control.machinery.events import EventRecorder
from control.machinery.queue import WorkQueue
from control.objects.kinds import DEPLOYMENT, POD, REPLICASET, object_key
from control.objects.selectors import LabelSelector

if TYPE_CHECKING:
    from control.controllers.manager import ControllerManager

Obj = dict[str, Any]

COMPONENT = "deployment-controller"


def _rv(obj: Obj) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _pod_state(pod: Obj) -> tuple[bool, bool, str, str]:
    """What about a pod matters to a Deployment's rollout."""
    return (
        is_pod_active(pod),
        is_pod_ready(pod),
        str((pod.get("status") or {}).get("phase")),
        str(controller_ref(pod)),
    )


class DeploymentController(RollingUpdate, Recreate):
    name = COMPONENT

    def __init__(self, manager: ControllerManager, config: Config, *, workers: int = 2) -> None:
        self.registry = manager.registry
        self.config = config
        self.workers = workers
        self.deployments = manager.informer(DEPLOYMENT)
        self.replicasets = manager.informer(REPLICASET)
        self.pods = manager.informer(POD)
        for informer in (self.replicasets, self.pods):
            informer.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
            informer.add_index(ORPHAN_INDEX, orphan_index)
        self.queue = WorkQueue()
        self.recorder = EventRecorder(self.registry, COMPONENT)
        # ReplicaSets and Deployments as this controller last wrote them, until
        # the informers catch up (client-go's MutationCache): decisions never
        # see our own writes undone.
        self._written = {}
        self._written_deployments = {}
        self.deployments.add_handler(self._on_deployment)
        self.replicasets.add_handler(self._on_replicaset)
        self.pods.add_handler(self._on_pod)

    async def run(self) -> None:
        await asyncio.gather(
            self.deployments.synced.wait(),
            self.replicasets.synced.wait(),
            self.pods.synced.wait(),
        )
        try:
            await run_workers(self.name, self.queue, self.reconcile, self.workers)
        except asyncio.CancelledError:
            self.queue.shutdown()
            raise

    # -- event handlers ----------------------------------------------------------

    def _on_deployment(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        key = object_key(obj)
        written = self._written_deployments.get(key)
        if written is not None and (new is None or _rv(new) >= _rv(written)):
            del self._written_deployments[key]
        self.queue.add(key)

    def _deployment_key(self, rs: Obj) -> str | None:
        ref = controller_ref(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        key = f"{meta(rs).get('namespace')}/{ref.get('name')}"
        d = self.deployments.get(key)
        return key if d is not None and meta(d).get("uid") == ref.get("uid") else None

    def _on_replicaset(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        key = object_key(obj)
        written = self._written.get(key)
        if written is not None and (new is None or _rv(new) >= _rv(written)):
            del self._written[key]
        if old is not None and new is not None:
            old_key = self._deployment_key(old)
            if old_key is not None and old_key != self._deployment_key(new):
                self.queue.add(old_key)
        d_key = self._deployment_key(obj)
        if d_key is not None:
            self.queue.add(d_key)
        elif new is not None and controller_ref(new) is None and not is_deleting(new):
            labels = labels_of(new)
            for d in self.deployments.list(meta(new).get("namespace")):
                selector = selector_of(d)
                if selector is not None and not selector.empty and selector.matches(labels):
                    self.queue.add(object_key(d))

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        if old is not None and new is not None and _pod_state(old) == _pod_state(new):
            return
        rs = self.replicasets.get(f"{meta(pod).get('namespace')}/{ref.get('name')}")
        if rs is not None and meta(rs).get("uid") == ref.get("uid"):
            d_key = self._deployment_key(rs)
            if d_key is not None:
                self.queue.add(d_key)

    # -- reconcile ---------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        cached = self.deployments.get(key)
        if cached is None:
            return None
        written = self._written_deployments.get(key)
        if written is not None and meta(written).get("uid") == meta(cached).get("uid"):
            if _rv(written) > _rv(cached):
                cached = written  # our own last write, not yet seen by the informer
        st = SyncState(copy.deepcopy(cached))
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
        ns = str(meta(d).get("namespace"))
        found: dict[str, Obj] = {}
        for rs in (
            *self.replicasets.by_index(CONTROLLER_UID_INDEX, uid),
            *self.replicasets.by_index(ORPHAN_INDEX, ns),
        ):
            found[object_key(rs)] = self._fresh(rs)
        for key, rs in self._written.items():
            ref = controller_ref(rs)
            if key not in found and ref is not None and ref.get("uid") == uid:
                found[key] = rs  # created by us, not seen by the informer yet
        return await claim(self.registry, REPLICASET, d, DEPLOYMENT, selector, found.values())

    def _fresh(self, rs: Obj) -> Obj:
        written = self._written.get(object_key(rs))
        if written is not None and meta(written).get("uid") == meta(rs).get("uid"):
            if _rv(written) > _rv(rs):
                return written
        return rs
