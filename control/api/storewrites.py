"""The registry's one way to write to the store.

Every write takes the request's `WriteOptions`: a dry run stops here, after
every check a real write makes, and answers with what would have been stored
(its resourceVersion the current one). The writes that come with an object's
create or delete go here too: ClusterIP and node port allocation and release, and a
namespace's contents.
"""

from __future__ import annotations

import ipaddress

import orjson

from control import errors
from control.api.clusterip import ClusterIPAllocator
from control.api.nodeports import NodePortAllocator, NodePortClaims, check_node_ports
from control.api.options import WriteOptions
from control.errors import Cause
from control.objects.kinds import RESOURCES, ResourceType
from control.store.interface import (
    KV,
    KeyExists,
    KeyNotFound,
    Obj,
    RevisionConflict,
    Store,
    StoreFull,
)

# Kubernetes' limit on one stored object (etcd's request limit), encoded.
MAX_OBJECT_BYTES = 1_572_864


class StoreWrites:
    def __init__(
        self, store: Store, cluster_ips: ClusterIPAllocator, node_ports: NodePortAllocator
    ) -> None:
        self.store = store
        self.cluster_ips = cluster_ips
        self.node_ports = node_ports

    async def create(
        self, rt: ResourceType, namespace: str | None, name: str, obj: Obj, options: WriteOptions
    ) -> KV:
        key = rt.key(namespace, name)
        check_storable(rt, name, obj)
        claims = await self._assign_node_ports(rt, obj, None, options)
        try:
            allocated = await self._allocate_cluster_ip(rt, namespace, obj, options)
        except BaseException:
            await self.node_ports.release(claims.claimed)
            raise
        if options.dry_run:
            return KV(key, orjson.dumps(obj), 0, 0)  # with the addresses it was given
        try:
            return await self.store.create(key, obj)
        except BaseException as e:
            if allocated:
                await self.cluster_ips.release(allocated)
            await self.node_ports.release(claims.claimed)
            if isinstance(e, KeyExists):
                raise errors.already_exists(rt.plural, name, rt.group) from e
            if isinstance(e, StoreFull):
                raise errors.insufficient_storage(str(e)) from e
            raise

    async def update(
        self, rt: ResourceType, name: str, current: KV, obj: Obj, options: WriteOptions
    ) -> KV:
        """Replace `current` with `obj`, compare-and-swap on its revision."""
        check_storable(rt, name, obj)
        claims = await self._assign_node_ports(rt, obj, current, options)
        if options.dry_run:
            obj.setdefault("metadata", {})["resourceVersion"] = str(current.mod_revision)
            return KV(current.key, orjson.dumps(obj), current.mod_revision, current.create_revision)
        try:
            kv = await self.store.update(current.key, obj, expected_revision=current.mod_revision)
        except BaseException as e:
            await self.node_ports.release(claims.claimed)
            if isinstance(e, KeyNotFound):
                raise errors.not_found(rt.plural, name, rt.group) from e
            if isinstance(e, RevisionConflict):
                raise errors.conflict(rt.plural, name, rt.group) from e
            if isinstance(e, StoreFull):
                raise errors.insufficient_storage(str(e)) from e
            raise
        await self.node_ports.release(claims.freed)
        return kv

    async def delete(self, rt: ResourceType, name: str, current: KV, options: WriteOptions) -> KV:
        """Delete `current` for good (a namespace with its contents; a
        Service's ClusterIPs go back to the pool)."""
        if options.dry_run:
            return current
        if rt.kind == "Namespace":
            await self._delete_namespace_contents(name)
        try:
            deleted = await self.store.delete(current.key, expected_revision=current.mod_revision)
        except KeyNotFound as e:
            raise errors.not_found(rt.plural, name, rt.group) from e
        except RevisionConflict as e:
            raise errors.conflict(rt.plural, name, rt.group) from e
        except StoreFull as e:
            raise errors.insufficient_storage(str(e)) from e
        if rt.kind == "Service":
            await self._release_service_addresses(deleted.obj)
        return deleted

    async def _delete_namespace_contents(self, namespace: str) -> None:
        for rt in RESOURCES:
            if not rt.namespaced:
                continue
            listed = await self.store.list(rt.prefix(namespace))
            for kv in listed.items:
                try:
                    deleted = await self.store.delete(kv.key)
                except KeyNotFound:
                    continue
                if rt.kind == "Service":
                    await self._release_service_addresses(deleted.obj)

    async def _allocate_cluster_ip(
        self, rt: ResourceType, namespace: str | None, obj: Obj, options: WriteOptions
    ) -> str | None:
        """Set a new Service's ClusterIP; the address taken, or None (a dry
        run only looks for the address it would take)."""
        if rt.kind != "Service":
            return None
        spec = obj.setdefault("spec", {})
        if spec.get("type", "ClusterIP") == "ExternalName":
            return None
        requested = spec.get("clusterIP") or ""
        if requested == "None":
            spec["clusterIPs"] = ["None"]
            spec.setdefault("ipFamilies", [_family(self.cluster_ips.network.version)])
            return None
        name = obj["metadata"]["name"]
        try:
            ip = await self.cluster_ips.allocate(
                f"{namespace}/{name}", requested or None, dry_run=options.dry_run
            )
        except ValueError as e:
            raise errors.invalid(
                "Service",
                name,
                [
                    Cause(
                        "spec.clusterIP", f'Invalid value: "{requested}": {e}', "FieldValueInvalid"
                    )
                ],
            ) from e
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
        try:
            spec["ipFamilies"] = _families(spec, ipaddress.ip_address(ip).version)
        except ValueError as e:
            if not options.dry_run:
                await self.cluster_ips.release(ip)
            field, why = str(e).split(": ", 1)
            raise errors.invalid("Service", name, [Cause(field, why)]) from None
        return None if options.dry_run else ip

    async def _assign_node_ports(
        self, rt: ResourceType, obj: Obj, current: KV | None, options: WriteOptions
    ) -> NodePortClaims:
        """Claim a Service's node ports (a dry run only checks the ones it names)."""
        if rt.kind != "Service":
            return NodePortClaims()
        if options.dry_run:
            check_node_ports(obj["metadata"]["name"], obj)
            return NodePortClaims()
        return await self.node_ports.assign(rt, obj, current.obj if current else None)

    async def _release_service_addresses(self, obj: Obj) -> None:
        """A deleted Service's ClusterIPs and node ports go back to their pools."""
        await self.node_ports.release_service(obj)
        spec = obj.get("spec") or {}
        for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
            if ip and ip != "None":
                await self.cluster_ips.release(ip)


def check_storable(rt: ResourceType, name: str, obj: Obj) -> None:
    """413 when `obj` encodes beyond MAX_OBJECT_BYTES, 400 when it cannot be
    encoded (an integer beyond 64 bits, nesting orjson refuses)."""
    try:
        raw = orjson.dumps(obj)
    except (TypeError, ValueError) as e:
        raise errors.bad_request(f"the object cannot be stored: {e}") from None
    if len(raw) > MAX_OBJECT_BYTES:
        why = f"the object is {len(raw)} bytes, limit is {MAX_OBJECT_BYTES}"
        raise errors.request_entity_too_large(why, rt.plural, name, rt.group)


def _family(version: int) -> str:
    """A Service's `ipFamilies` entry for an IP version."""
    return f"IPv{version}"


def _families(spec: Obj, version: int) -> list[str]:
    """A new Service's `ipFamilies` on this single-stack cluster, whose
    ClusterIPs are of IP `version`; ValueError("field: why") when it asks
    for what the cluster cannot give."""
    family = _family(version)
    if spec.get("ipFamilyPolicy") == "RequireDualStack":
        raise ValueError("spec.ipFamilyPolicy: the cluster is not configured for dual-stack")
    wanted = spec.get("ipFamilies") or [family]
    if wanted[0] != family:
        raise ValueError(f'spec.ipFamilies[0]: "{wanted[0]}" is not configured on this cluster')
    if len(wanted) > 1 and spec.get("ipFamilyPolicy") != "PreferDualStack":
        raise ValueError("spec.ipFamilies: the cluster is not configured for dual-stack")
    return [family]
