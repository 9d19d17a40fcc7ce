"""The `coordination.k8s.io/v1` kinds: Lease (the node agents' heartbeat)."""

from __future__ import annotations

from pydantic import Field

from control.objects.meta import INT32_MAX, KubeModel, KubeObject, SubdomainMeta


class LeaseSpec(KubeModel):
    holderIdentity: str | None = None
    leaseDurationSeconds: int | None = Field(None, gt=0, le=INT32_MAX)
    acquireTime: str | None = None
    renewTime: str | None = None
    leaseTransitions: int | None = Field(None, ge=0, le=INT32_MAX)


class Lease(KubeObject):
    metadata: SubdomainMeta
    spec: LeaseSpec | None = None
