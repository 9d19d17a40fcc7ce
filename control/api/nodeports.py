"""Service NodePort allocation from the node port range, 30000-32767.

Services of type NodePort and LoadBalancer get a `nodePort` for each port that
does not name one. As with ClusterIPs, each allocated port is a key in the
store (`/registry/servicenodeports/<port>`), created with create-if-absent, so
a port is never handed out twice, even by two API servers sharing one store.
Deleting the Service, or a port of it, frees the key.

As in Kubernetes, the lower part of the range is kept for ports that users
ask for by hand; dynamic allocation takes from above it first.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from control import errors
from control.errors import Cause
from control.objects import Obj
from control.objects.kinds import ResourceType
from control.store.interface import KeyExists, KeyNotFound, Store

DEFAULT_RANGE = (30000, 32767)
_PREFIX = "/registry/servicenodeports/"
_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


@dataclass
class NodePortClaims:
    """What one write of a Service took and gave back."""

    claimed: list[int] = field(default_factory=list)  # release if the write fails
    freed: list[int] = field(default_factory=list)  # release once the write is stored


def _spec(obj: Obj | None) -> Obj:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def _ports(obj: Obj | None) -> list[Obj]:
    return [p for p in _spec(obj).get("ports") or [] if isinstance(p, dict)]


def uses_node_ports(obj: Obj | None) -> bool:
    return _spec(obj).get("type") in _NODE_PORT_TYPES


def _allocates(obj: Obj) -> bool:
    """Whether ports without a nodePort get one: NodePort always, LoadBalancer
    unless `allocateLoadBalancerNodePorts` is false."""
    spec = _spec(obj)
    if spec.get("type") == "LoadBalancer":
        return spec.get("allocateLoadBalancerNodePorts") is not False
    return spec.get("type") == "NodePort"


def node_ports(obj: Obj | None) -> set[int]:
    return {p["nodePort"] for p in _ports(obj) if isinstance(p.get("nodePort"), int)}


def _invalid(name: str, causes: list[Cause]) -> errors.ApiError:
    return errors.invalid("Service", name, causes)


def keep_node_ports(name: str, old: Obj, new: Obj) -> None:
    """On an update, before the write: what Kubernetes does with node ports the
    new version leaves out. Leaving NodePort for a type without node ports
    drops them, unless it asks for new ones; staying a NodePort type keeps each
    port's nodePort (matched by port name) unless another port now uses it."""
    old_ports, new_ports = _ports(old), _ports(new)
    if uses_node_ports(old) and not uses_node_ports(new):
        if node_ports(new) <= node_ports(old):  # no net-new node port asked for
            for p in new_ports:
                p.pop("nodePort", None)
    elif uses_node_ports(old) and uses_node_ports(new):
        used = node_ports(old) & node_ports(new)
        by_name = {str(p.get("name") or ""): p.get("nodePort") for p in old_ports}
        for p in new_ports:
            kept = by_name.get(str(p.get("name") or ""))
            if not p.get("nodePort") and kept and kept not in used:
                p["nodePort"] = kept
    check_node_ports(name, new)


def check_node_ports(name: str, obj: Obj) -> None:
    """Node ports only on the types that have them, and no (nodePort, protocol) twice."""
    causes: list[Cause] = []
    kind = _spec(obj).get("type") or "ClusterIP"
    seen: set[tuple[int, str]] = set()
    for i, p in enumerate(_ports(obj)):
        port = p.get("nodePort")
        if not port:
            continue
        where = f"spec.ports[{i}].nodePort"
        if kind not in _NODE_PORT_TYPES:
            why = f"Forbidden: may not be used when `type` is '{kind}'"
            causes.append(Cause(where, why, "FieldValueForbidden"))
            continue
        key = (port, str(p.get("protocol") or "TCP"))
        if key in seen:
            causes.append(Cause(where, f"Duplicate value: {port}", "FieldValueDuplicate"))
        seen.add(key)
    if causes:
        raise _invalid(name, causes)


class NodePortAllocator:
    def __init__(self, store: Store, port_range: tuple[int, int] = DEFAULT_RANGE) -> None:
        self.store = store
        self.low, self.high = port_range
        size = self.high - self.low + 1
        # Kubernetes' split: min(max(16, size/32), 128) ports at the bottom.
        self.static_band = min(max(16, size // 32), 128, size)
        self._cursor = random.randrange(size)

    async def assign(self, rt: ResourceType, new: Obj, old: Obj | None = None) -> NodePortClaims:
        """Claim the node ports `new` (a Service; any other kind is left alone)
        names that `old`, the stored version, does not hold, and allocate the
        ones it leaves out, writing them into `new`. Raises ApiError 422 naming
        the port, having released what it claimed."""
        claims = NodePortClaims()
        if rt.kind != "Service":
            return claims
        meta = new.get("metadata") or {}
        name = str(meta.get("name") or "")
        owner = f"{meta.get('namespace')}/{name}"
        check_node_ports(name, new)
        held = node_ports(old)
        try:
            for i, p in enumerate(_ports(new)):
                port = p.get("nodePort")
                if port and port not in held and port not in claims.claimed:
                    await self._claim_requested(name, owner, i, port)
                    claims.claimed.append(port)
            if _allocates(new):
                by_service_port: dict[Any, int] = {}  # TCP and UDP of one port share one
                for p in _ports(new):
                    if not p.get("nodePort"):
                        port = by_service_port.get(p.get("port"))
                        if port is None:
                            port = await self._allocate(name, owner)
                            claims.claimed.append(port)
                            by_service_port[p.get("port")] = port
                        p["nodePort"] = port
        except BaseException:
            await self.release(claims.claimed)
            raise
        claims.freed = sorted(held - node_ports(new))
        return claims

    async def release(self, ports: Iterable[int]) -> None:
        for port in ports:
            try:
                await self.store.delete(f"{_PREFIX}{port}")
            except KeyNotFound:
                pass

    async def release_service(self, obj: Obj) -> None:
        """Free the node ports of a deleted Service."""
        await self.release(node_ports(obj))

    async def _claim_requested(self, name: str, owner: str, index: int, port: int) -> None:
        where = f"spec.ports[{index}].nodePort"
        if not self.low <= port <= self.high:
            why = (
                f"Invalid value: {port}: provided port is not in the valid range. "
                f"The range of valid ports is {self.low}-{self.high}"
            )
            raise _invalid(name, [Cause(where, why)])
        if not await self._claim(port, owner):
            why = f"Invalid value: {port}: provided port is already allocated"
            raise _invalid(name, [Cause(where, why)])

    async def _allocate(self, name: str, owner: str) -> int:
        listed = await self.store.list(_PREFIX)
        taken = {int(kv.key.removeprefix(_PREFIX)) for kv in listed.items}
        size = self.high - self.low + 1
        dynamic = size - self.static_band
        # The dynamic band first, then the static band when the dynamic one is full.
        for start, length in ((self.static_band, dynamic), (0, self.static_band)):
            for i in range(length):
                port = self.low + start + (self._cursor + i) % length
                if port not in taken and await self._claim(port, owner):
                    if start == self.static_band:
                        self._cursor = (self._cursor + i + 1) % length
                    return port
        why = f"range is full: no free port left in {self.low}-{self.high}"
        raise _invalid(name, [Cause("spec.ports", why)])

    async def _claim(self, port: int, owner: str) -> bool:
        record = {
            "apiVersion": "v1",
            "kind": "ServiceNodePort",
            "metadata": {"name": str(port)},
            "spec": {"parentRef": {"resource": "services", "name": owner}},
        }
        try:
            await self.store.create(f"{_PREFIX}{port}", record)
        except KeyExists:
            return False
        return True
