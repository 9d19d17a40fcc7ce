"""The leader election's lock: a `coordination.k8s.io/v1` Lease written
through the registry, as client-go's LeaseLock writes it, with the holder's
API endpoint in an annotation. Updates are conditional on the resourceVersion
last read or written (409 Conflict when another candidate wrote in between)."""

from __future__ import annotations

from typing import Any

from control.api.registry import Registry
from control.errors import ApiError
from control.leader.election import LeaderRecord
from control.objects import Obj
from control.objects.coordination import lease_holder
from control.objects.kinds import LEASE
from control.store.interface import KV
from control.wire import LEADER_ENDPOINT_ANNOTATION


class RegistryLeaseLock:
    def __init__(self, registry: Registry, namespace: str, name: str) -> None:
        self.registry = registry
        self.namespace = namespace
        self.name = name
        self._lease: Obj | None = None  # as last read or written, with its resourceVersion

    async def get(self) -> LeaderRecord | None:
        try:
            kv = await self.registry.get(LEASE, self.namespace, self.name)
        except ApiError as e:
            if e.code == 404:
                self._lease = None
                return None
            raise
        self._lease = _with_version(kv)
        return record_of(self._lease)

    async def create(self, record: LeaderRecord) -> None:
        body: Obj = {
            "apiVersion": LEASE.api_version,
            "kind": LEASE.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
        }
        _write_record(body, record)
        kv = await self.registry.create(LEASE, self.namespace, body)
        self._lease = _with_version(kv)

    async def update(self, record: LeaderRecord) -> None:
        if self._lease is None:
            raise RuntimeError("the lease must be read or created before it is updated")
        body = _write_record(dict(self._lease), record)
        kv = await self.registry.update(LEASE, self.namespace, self.name, body)
        self._lease = _with_version(kv)


def _with_version(kv: KV) -> Obj:
    obj = kv.obj
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def record_of(lease: Obj) -> LeaderRecord:
    """The election record a Lease holds (client-go's LeaseSpecToLeaderElectionRecord)."""
    spec: dict[str, Any] = lease.get("spec") or {}
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    return LeaderRecord(
        holder=lease_holder(lease),
        lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=str(spec.get("acquireTime") or ""),
        renew_time=str(spec.get("renewTime") or ""),
        transitions=int(spec.get("leaseTransitions") or 0),
        endpoint=str(annotations.get(LEADER_ENDPOINT_ANNOTATION) or ""),
    )


def _write_record(lease: Obj, record: LeaderRecord) -> Obj:
    """`lease` (a shallow copy the caller owns) with `record` in its spec and annotation."""
    meta = dict(lease.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    if record.endpoint:
        annotations[LEADER_ENDPOINT_ANNOTATION] = record.endpoint
    else:
        annotations.pop(LEADER_ENDPOINT_ANNOTATION, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    lease["metadata"] = meta
    spec: Obj = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.lease_duration_seconds,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time:
        spec["acquireTime"] = record.acquire_time
    if record.renew_time:
        spec["renewTime"] = record.renew_time
    lease["spec"] = spec
    return lease
