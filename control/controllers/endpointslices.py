"""The EndpointSlice controller: for each Service with a selector, the
EndpointSlices listing the pods it selects, as Kubernetes keeps them.

Each slice is owned by its Service (the garbage collector deletes it with
the Service), labelled `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by`, and named `<service>-<5 random>`.
Every pod with an IP that has not finished is an endpoint:
`serving` is the pod's Ready condition, `terminating` whether it is being
deleted, and `ready` is serving and not terminating (always true with
`publishNotReadyAddresses`). Ports are resolved per pod, so pods whose
named target ports differ go to different slices; a slice holds at most 100
endpoints. A service that selects no endpoint keeps one empty placeholder
slice. Services without a selector, and ExternalName services, get none.

To change little when one pod changes, endpoints stay in the slice that
holds them; new ones fill slices that change anyway, then slices with room,
then new slices. The informer's cache can lag behind the controller's own
writes: until it has seen them, the service waits, so no slice is made twice.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any

from control.config import Config
from control.controllers.base import Informers
from control.controllers.objectmeta import Obj
from control.controllers.podstate import is_pod_ready
from control.controllers.servicepods import ServicePodsController, selected_pods, target_port
from control.errors import ApiError
from control.objects.discovery import (
    LABEL_HEADLESS,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    MANAGED_BY_CONTROLLER,
)
from control.objects.kinds import ENDPOINTSLICE, NODE, object_key

log = logging.getLogger(__name__)

COMPONENT = "endpointslice-controller"
SERVICE_INDEX = "managed-for-service"
MAX_ENDPOINTS_PER_SLICE = 100  # Kubernetes' default --max-endpoints-per-slice
ZONE_LABEL = "topology.kubernetes.io/zone"
# A fallback while the informer has not shown the controller's own writes;
# their events normally wake the service first.
STALE_RETRY = 1.0

# What tells slices of one service apart: address type, then ports as
# (name, port, protocol, appProtocol) in the service's order.
SliceKey = tuple[str, tuple[tuple[str, int, str, str], ...]]


def managed_service_index(eps: Obj) -> list[str]:
    """Index function: `namespace/service` of a slice this controller keeps."""
    meta = eps.get("metadata") or {}
    labels = meta.get("labels") or {}
    service = labels.get(LABEL_SERVICE_NAME)
    if not service or labels.get(LABEL_MANAGED_BY) != MANAGED_BY_CONTROLLER:
        return []
    return [f"{meta.get('namespace')}/{service}"]


def _family(address: str) -> str | None:
    try:
        return f"IPv{ipaddress.ip_address(address).version}"
    except ValueError:
        return None


def service_address_type(service: Obj) -> str | None:
    """The address family the service serves, or None when it does not say
    (a headless service without ipFamilies)."""
    spec = service.get("spec") or {}
    families = spec.get("ipFamilies") or []
    if families:
        return str(families[0])
    cluster_ip = spec.get("clusterIP")
    return _family(cluster_ip) if cluster_ip and cluster_ip != "None" else None


def _pod_address(pod: Obj, address_type: str | None) -> tuple[str, str] | None:
    """(address type, IP) of the pod's address in the service's family."""
    status = pod.get("status") or {}
    ips = [str(i.get("ip")) for i in status.get("podIPs") or [] if i.get("ip")]
    if status.get("podIP") and status["podIP"] not in ips:
        ips.insert(0, str(status["podIP"]))
    for ip in ips:
        family = _family(ip)
        if family is not None and address_type in (None, family):
            return family, ip
    return None


def _slice_ports(service: Obj, pod: Obj) -> tuple[tuple[str, int, str, str], ...]:
    ports = []
    for sp in (service.get("spec") or {}).get("ports") or []:
        port = target_port(pod, sp.get("targetPort", sp.get("port")))
        if port is not None:
            proto = sp.get("protocol") or "TCP"
            ports.append((str(sp.get("name") or ""), port, proto, str(sp.get("appProtocol") or "")))
    return tuple(ports)


def pod_endpoint(service: Obj, pod: Obj, ip: str, zone: str | None) -> Obj:
    """The slice endpoint of one pod, with Kubernetes' conditions."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    svc_meta = service.get("metadata") or {}
    serving = is_pod_ready(pod)
    terminating = bool(meta.get("deletionTimestamp"))
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    endpoint: Obj = {
        "addresses": [ip],
        "conditions": {
            "ready": publish or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
        "targetRef": {
            "kind": "Pod",
            **{k: meta[k] for k in ("namespace", "name", "uid") if meta.get(k)},
        },
    }
    if spec.get("nodeName"):
        endpoint["nodeName"] = spec["nodeName"]
    if zone:
        endpoint["zone"] = zone
    if (
        spec.get("hostname")
        and spec.get("subdomain") == svc_meta.get("name")
        and meta.get("namespace") == svc_meta.get("namespace")
    ):
        endpoint["hostname"] = spec["hostname"]
    return endpoint


def desired_endpoints(
    service: Obj, pods: list[Obj], zone_of: dict[str, str] | None = None
) -> dict[SliceKey, dict[str, Obj]]:
    """The endpoints of `service` by the slice kind they belong in, each by IP.
    `zone_of` maps node names to their zone."""
    address_type = service_address_type(service)
    zones = zone_of or {}
    groups: dict[SliceKey, dict[str, Obj]] = {}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        address = _pod_address(pod, address_type)
        if address is None:
            continue
        family, ip = address
        zone = zones.get(str((pod.get("spec") or {}).get("nodeName") or ""))
        key = (family, _slice_ports(service, pod))
        groups.setdefault(key, {})[ip] = pod_endpoint(service, pod, ip, zone)
    return groups


def slice_key(eps: Obj) -> SliceKey:
    ports = tuple(
        (
            str(p.get("name") or ""),
            int(p.get("port") or 0),
            str(p.get("protocol") or "TCP"),
            str(p.get("appProtocol") or ""),
        )
        for p in eps.get("ports") or []
    )
    return str(eps.get("addressType")), ports


def _address(endpoint: Obj) -> str:
    return str((endpoint.get("addresses") or [""])[0])


@dataclass
class SlicePlan:
    """Writes that bring one service's slices to what is desired."""

    create: list[tuple[SliceKey, list[Obj]]] = field(default_factory=list)
    # A slice, what it becomes (its address type stays), and its endpoints.
    update: list[tuple[Obj, SliceKey, list[Obj]]] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    keep: list[Obj] = field(default_factory=list)  # slices whose endpoints stay as they are


def plan_slices(
    current: list[Obj],
    desired: dict[SliceKey, dict[str, Obj]],
    placeholder: SliceKey,
    limit: int = MAX_ENDPOINTS_PER_SLICE,
) -> SlicePlan:
    """How to turn `current` slices into `desired` endpoints, moving as few
    endpoints as possible. With nothing desired, one empty `placeholder` slice."""
    plan = SlicePlan()
    current = sorted(current, key=lambda s: str((s.get("metadata") or {}).get("name")))
    if not desired:
        same_type = [s for s in current if slice_key(s)[0] == placeholder[0]]
        empty = [s for s in same_type if slice_key(s) == placeholder and not s.get("endpoints")]
        candidates = empty or same_type
        survivor = candidates[0] if candidates else None
        if survivor is None:
            plan.create.append((placeholder, []))
        elif empty:
            plan.keep.append(survivor)
        else:
            plan.update.append((survivor, placeholder, []))
        plan.delete.extend(s for s in current if s is not survivor)
        return plan
    for key, wanted in sorted(desired.items()):
        mine = [s for s in current if slice_key(s) == key]
        placed: set[str] = set()
        filled: list[tuple[Obj, list[Obj]]] = []
        for eps in mine:
            kept: list[Obj] = []
            for endpoint in eps.get("endpoints") or []:
                ip = _address(endpoint)
                if ip in wanted and ip not in placed and len(kept) < limit:
                    kept.append(wanted[ip])
                    placed.add(ip)
            filled.append((eps, kept))
        waiting = [wanted[ip] for ip in sorted(wanted) if ip not in placed]
        # New endpoints go first to slices written anyway, then to those with room.
        filled.sort(key=lambda f: not _changed(f[0], f[1]))
        for _, kept in filled:
            room = limit - len(kept)
            if waiting and room > 0:
                kept.extend(waiting[:room])
                del waiting[:room]
        for eps, kept in filled:
            if not kept:
                plan.delete.append(eps)
            elif _changed(eps, kept):
                plan.update.append((eps, key, kept))
            else:
                plan.keep.append(eps)
        for start in range(0, len(waiting), limit):
            plan.create.append((key, waiting[start : start + limit]))
    plan.delete.extend(s for s in current if slice_key(s) not in desired)
    return plan


def _sorted(endpoints: list[Obj]) -> list[Obj]:
    return sorted(endpoints, key=_address)


def _changed(eps: Obj, endpoints: list[Obj]) -> bool:
    return _sorted(eps.get("endpoints") or []) != _sorted(endpoints)


def slice_labels(service: Obj) -> dict[str, str]:
    """The service's own labels, then the headless marker and the slice's own two."""
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    labels = {
        k: v
        for k, v in (meta.get("labels") or {}).items()
        if k not in (LABEL_SERVICE_NAME, LABEL_MANAGED_BY, LABEL_HEADLESS)
    }
    if spec.get("clusterIP") == "None":
        labels[LABEL_HEADLESS] = ""
    labels[LABEL_SERVICE_NAME] = str(meta.get("name"))
    labels[LABEL_MANAGED_BY] = MANAGED_BY_CONTROLLER
    return labels


def owner_reference(service: Obj) -> Obj:
    meta = service.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(eps: Obj, uid: Any) -> bool:
    refs = (eps.get("metadata") or {}).get("ownerReferences") or ()
    return any(r.get("uid") == uid and r.get("controller") for r in refs)


def slice_body(service: Obj, key: SliceKey, endpoints: list[Obj]) -> Obj:
    """A new slice of `service` (its name comes from generateName)."""
    meta = service.get("metadata") or {}
    address_type, ports = key
    return {
        "apiVersion": ENDPOINTSLICE.api_version,
        "kind": ENDPOINTSLICE.kind,
        "metadata": {
            "generateName": f"{meta.get('name')}-",
            "namespace": meta.get("namespace"),
            "labels": slice_labels(service),
            "ownerReferences": [owner_reference(service)],
        },
        "addressType": address_type,
        "endpoints": _sorted(endpoints),
        "ports": [
            {"name": n, "port": p, "protocol": proto, **({"appProtocol": a} if a else {})}
            for n, p, proto, a in ports
        ],
    }


@dataclass
class _Pending:
    """Own writes the informer has yet to show for one service."""

    revision: int = 0  # the last slice write
    gone: set[str] = field(default_factory=set)  # keys of slices deleted


class EndpointSliceController(ServicePodsController):
    name = COMPONENT

    def __init__(self, manager: Informers, config: Config, *, workers: int = 2) -> None:
        super().__init__(manager, config, workers=workers)
        self.slices = self.informer(ENDPOINTSLICE)
        self.nodes = self.informer(NODE)
        self.slices.add_index(SERVICE_INDEX, managed_service_index)
        self._pending: dict[str, _Pending] = {}
        self.slices.add_handler(self._on_slice)

    # -- event handlers ------------------------------------------------------

    def _on_slice(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        # Our own writes arriving, or someone else's change to slices we keep.
        for version in (old, new):
            if version is not None:
                for key in managed_service_index(version):
                    self.queue.add(key)

    # -- reconciling ---------------------------------------------------------

    def _cache_behind(self, key: str) -> bool:
        pending = self._pending.get(key)
        if pending is None:
            return False
        if self.slices.revision < pending.revision or any(
            (eps := self.slices.get(k)) is not None and not _deleting(eps) for k in pending.gone
        ):
            return True
        del self._pending[key]
        return False

    async def reconcile(self, key: str) -> float | None:
        if self._cache_behind(key):
            return STALE_RETRY
        service = self.services.get(key)
        if service is None:
            return None  # its slices are the garbage collector's
        uid = (service.get("metadata") or {}).get("uid")
        current = [
            eps
            for eps in self.slices.by_index(SERVICE_INDEX, key)
            if _owned_by(eps, uid) and not _deleting(eps)
        ]
        spec = service.get("spec") or {}
        if not spec.get("selector") or spec.get("type") == "ExternalName":
            plan = SlicePlan(delete=current)
        else:
            pods = selected_pods(service, self.pods)
            desired = desired_endpoints(service, pods, self._zones(pods))
            placeholder: SliceKey = (service_address_type(service) or "IPv4", ())
            plan = plan_slices(current, desired, placeholder)
        await self._write(key, service, plan)
        return None

    def _zones(self, pods: list[Obj]) -> dict[str, str]:
        zones = {}
        for node_name in {(p.get("spec") or {}).get("nodeName") for p in pods} - {None}:
            node = self.nodes.get(str(node_name))
            zone = (((node or {}).get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL)
            if zone:
                zones[str(node_name)] = str(zone)
        return zones

    async def _write(self, key: str, service: Obj, plan: SlicePlan) -> None:
        namespace = str((service.get("metadata") or {}).get("namespace"))
        labels = slice_labels(service)
        pending = self._pending.setdefault(key, _Pending())
        try:
            for eps, slice_of, endpoints in plan.update:
                await self._update(pending, service, eps, slice_of, endpoints)
            for eps in plan.keep:
                meta = eps.get("metadata") or {}
                if meta.get("labels") != labels:
                    await self._update(pending, service, eps, slice_key(eps), eps["endpoints"])
            for slice_of, endpoints in plan.create:
                body = slice_body(service, slice_of, endpoints)
                kv = await self.registry.create(ENDPOINTSLICE, namespace, body)
                pending.revision = max(pending.revision, kv.mod_revision)
            for eps in plan.delete:
                meta = eps["metadata"]
                try:
                    await self.registry.delete(
                        ENDPOINTSLICE, namespace, meta["name"], expected_uid=meta.get("uid")
                    )
                except ApiError as e:
                    if e.code != 404:
                        raise
                pending.gone.add(object_key(eps))
        finally:
            if not pending.revision and not pending.gone:
                del self._pending[key]

    async def _update(
        self, pending: _Pending, service: Obj, eps: Obj, key: SliceKey, endpoints: list[Obj]
    ) -> None:
        body = slice_body(service, key, endpoints)
        meta = eps["metadata"]
        body["metadata"] = {
            **meta,
            "labels": body["metadata"]["labels"],
            "ownerReferences": body["metadata"]["ownerReferences"],
        }
        kv = await self.registry.update(ENDPOINTSLICE, meta["namespace"], meta["name"], body)
        pending.revision = max(pending.revision, kv.mod_revision)


def _deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))
