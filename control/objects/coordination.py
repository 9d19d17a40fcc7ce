"""The `coordination.k8s.io/v1` kinds: Lease (the node agents' heartbeat, and
the control planes' leader election)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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


def micro_time(at: datetime | None = None) -> str:
    """`at` (default: now) as a Kubernetes MicroTime (RFC 3339 with microseconds)."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_holder(lease: dict[str, Any]) -> str:
    """The Lease's holderIdentity; "" when nobody holds it."""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")
