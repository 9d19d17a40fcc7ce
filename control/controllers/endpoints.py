"""The Endpoints controller: for each Service with a selector, an Endpoints
object of the same name listing the IPs of the pods it selects.

Ready pods go to `addresses`, the others to `notReadyAddresses` (all to
`addresses` with `publishNotReadyAddresses`). Ports come from the service's
`targetPort`: a number as is, a name looked up among each pod's container
ports. Pods with the same ports share a subset, as Kubernetes packs them.
Finished and terminating pods, and pods without an IP, are left out.
"""

from __future__ import annotations

import logging

from control.config import Config
from control.controllers.base import Informers, event_object
from control.controllers.objectmeta import Obj
from control.controllers.podstate import is_pod_active, is_pod_ready
from control.controllers.servicepods import ServicePodsController, selected_pods, target_port
from control.errors import ApiError
from control.objects.kinds import ENDPOINTS, object_key

log = logging.getLogger(__name__)

COMPONENT = "endpoint-controller"


def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The Endpoints subsets for `service`, given the pods it selects."""
    svc_spec = service.get("spec") or {}
    svc_name = (service.get("metadata") or {}).get("name")
    publish_not_ready = bool(svc_spec.get("publishNotReadyAddresses"))
    groups: dict[tuple[tuple[str, int, str], ...], tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        ip = status.get("podIP")
        if not ip or not is_pod_active(pod):
            continue
        ports: list[tuple[str, int, str]] = []
        for sp in svc_spec.get("ports") or []:
            port = target_port(pod, sp.get("targetPort", sp.get("port")))
            if port is not None:
                ports.append((sp.get("name") or "", port, sp.get("protocol") or "TCP"))
        if svc_spec.get("ports") and not ports:
            continue  # none of the service's ports exist on this pod
        address: Obj = {
            "ip": ip,
            "targetRef": {
                "kind": "Pod",
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "uid": meta.get("uid"),
            },
        }
        if spec.get("nodeName"):
            address["nodeName"] = spec["nodeName"]
        if spec.get("hostname") and spec.get("subdomain") == svc_name:
            address["hostname"] = spec["hostname"]
        ready, not_ready = groups.setdefault(tuple(sorted(ports)), ([], []))
        (ready if publish_not_ready or is_pod_ready(pod) else not_ready).append(address)
    subsets: list[Obj] = []
    for ports_key, (ready, not_ready) in sorted(groups.items()):
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_address_order)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_order)
        if ports_key:
            subset["ports"] = [
                {**({"name": n} if n else {}), "port": p, "protocol": proto}
                for n, p, proto in ports_key
            ]
        subsets.append(subset)
    return subsets


def _address_order(address: Obj) -> tuple[str, str]:
    return str(address["ip"]), str((address.get("targetRef") or {}).get("name"))


class EndpointsController(ServicePodsController):
    name = COMPONENT

    def __init__(self, manager: Informers, config: Config, *, workers: int = 2) -> None:
        super().__init__(manager, config, workers=workers)
        self.endpoints = self.informer(ENDPOINTS)
        self.endpoints.add_handler(self._on_endpoints)

    def _on_endpoints(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        # Someone else changed or removed endpoints we keep: put them right.
        key = object_key(event_object(old, new))
        if self.services.get(key) is not None:
            self.queue.add(key)

    # -- reconciling ---------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        namespace, _, name = key.partition("/")
        service = self.services.get(key)
        current = self.endpoints.get(key)
        if service is None:
            if current is not None:
                try:
                    await self.registry.delete(ENDPOINTS, namespace, name)
                except ApiError as e:
                    if e.code != 404:
                        raise
            return None
        selector = (service.get("spec") or {}).get("selector")
        if not selector:
            return None  # endpoints of a service without a selector are the user's
        subsets = desired_subsets(service, selected_pods(service, self.pods))
        labels = (service.get("metadata") or {}).get("labels")
        if (
            current is not None
            and (current.get("subsets") or []) == subsets
            and ((current.get("metadata") or {}).get("labels") == labels)
        ):
            return None
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": name,
                "namespace": namespace,
                **({"labels": labels} if labels else {}),
            },
            "subsets": subsets,
        }
        if current is None:
            try:
                await self.registry.create(ENDPOINTS, namespace, body)
            except ApiError as e:
                if e.reason != "AlreadyExists":
                    raise
                self.queue.add_after(key, 0.05)  # the informer will show it soon
            return None
        body["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
        await self.registry.update(ENDPOINTS, namespace, name, body)
        return None
