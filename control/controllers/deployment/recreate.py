"""The Recreate strategy: scale every old ReplicaSet to zero, wait until their
pods are gone, then scale up the new one (Kubernetes' recreate.go)."""

from __future__ import annotations

from control.controllers.deployment.progress import deployment_complete
from control.controllers.deployment.replicas import active, replicas, status_int
from control.controllers.deployment.sync import DeploymentSync, SyncState
from control.controllers.podstate import TERMINAL_PHASES


class Recreate(DeploymentSync):
    async def _rollout_recreate(self, st: SyncState) -> float | None:
        await self._get_all(st, create=False)
        scaled = False
        for rs in active(st.olds):
            scaled = await self._scale(st, rs, 0) or scaled
        if scaled or self._old_pods_running(st):
            return await self._sync_rollout_status(st)
        if st.new is None:
            await self._get_all(st, create=True)
        new = st.new
        if new is not None:
            await self._scale(st, new, replicas(st.d))
        if deployment_complete(st.d, st.d.get("status") or {}):
            await self._cleanup(st)
        return await self._sync_rollout_status(st)

    def _old_pods_running(self, st: SyncState) -> bool:
        for rs in st.olds:
            if status_int(rs, "replicas") > 0:
                return True
            for pod in self._pods(rs):
                if (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES:
                    return True
        return False
