"""The RollingUpdate strategy: grow the new ReplicaSet and shrink the old ones,
within maxSurge pods above and maxUnavailable below `spec.replicas`
(Kubernetes' rolling.go)."""

from __future__ import annotations

import time

from control.controllers.deployment.progress import deployment_complete
from control.controllers.deployment.replicas import active, max_unavailable, replicas
from control.controllers.deployment.sync import DeploymentSync, SyncState


class RollingUpdate(DeploymentSync):
    async def _rollout_rolling(self, st: SyncState) -> float | None:
        await self._get_all(st, create=True)
        if await self._reconcile_new_rs(st):
            return await self._sync_rollout_status(st)
        if await self._reconcile_old_rss(st):
            return await self._sync_rollout_status(st)
        if deployment_complete(st.d, st.d.get("status") or {}):
            await self._cleanup(st)
        return await self._sync_rollout_status(st)

    async def _reconcile_new_rs(self, st: SyncState) -> bool:
        new = st.new
        assert new is not None
        want = replicas(st.d)
        if replicas(new) == want:
            return False
        if replicas(new) > want:
            return await self._scale(st, new, want)
        return await self._scale(st, new, self._new_rs_replicas(st.d, st.olds, new))

    async def _reconcile_old_rss(self, st: SyncState) -> bool:
        d, new = st.d, st.new
        assert new is not None
        if sum(replicas(rs) for rs in st.olds) == 0:
            return False
        now = time.time()
        min_available = replicas(d) - max_unavailable(d)
        new_unavailable = replicas(new) - self._available(new, now)
        max_scaled_down = sum(replicas(rs) for rs in st.all()) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        # Unhealthy old replicas go first: removing them costs no availability.
        cleaned = 0
        for rs in active(st.olds):
            if cleaned >= max_scaled_down:
                break
            unhealthy = replicas(rs) - self._available(rs, now)
            if unhealthy <= 0:
                continue
            count = min(max_scaled_down - cleaned, unhealthy)
            await self._scale(st, rs, replicas(rs) - count)
            cleaned += count
        available = sum(self._available(rs, now) for rs in st.all())
        budget = available - min_available
        scaled = 0
        for rs in active(st.olds):
            if scaled >= budget:
                break
            count = min(replicas(rs), budget - scaled)
            await self._scale(st, rs, replicas(rs) - count)
            scaled += count
        return cleaned + scaled > 0
