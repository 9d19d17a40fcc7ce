"""The pods behind a Service, as the Endpoints and EndpointSlice controllers see them.

Which services a pod change concerns, which pods a service selects, and what
a service port's `targetPort` is on one pod: the rules both controllers share;
and ServicePodsController, the informers and handlers they share.
"""

from __future__ import annotations

from typing import Any

from control.config import Config
from control.controllers.base import Informers, QueueController, event_object
from control.controllers.objectmeta import Obj
from control.controllers.podstate import is_pod_ready
from control.machinery.informer import Informer
from control.objects.kinds import POD, SERVICE, object_key
from control.objects.selectors import selector_from_labels

NAMESPACE_INDEX = "namespace"
SELECTING_INDEX = "selecting-namespace"


def namespace_index(obj: Obj) -> list[str]:
    return [str((obj.get("metadata") or {}).get("namespace") or "")]


def selecting_index(service: Obj) -> list[str]:
    """A service's namespace, when it has a selector: pods can only change
    the endpoints of those."""
    return namespace_index(service) if (service.get("spec") or {}).get("selector") else []


def endpoint_view(pod: Obj) -> tuple[Any, ...]:
    """What of a pod its endpoints depend on."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    return (
        meta.get("labels"),
        meta.get("deletionTimestamp"),
        status.get("podIP"),
        status.get("phase"),
        is_pod_ready(pod),
        spec.get("nodeName"),
        spec.get("hostname"),
        spec.get("subdomain"),
        [c.get("ports") for c in spec.get("containers") or []],
    )


def target_port(pod: Obj, target: Any) -> int | None:
    """A service port's `targetPort` on `pod`: a number as is, a name looked up
    among the pod's container ports; None when the pod has no such port."""
    if isinstance(target, int):
        return target
    if isinstance(target, str):
        if target.isdigit():
            return int(target)
        for c in (pod.get("spec") or {}).get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("name") == target:
                    return int(p["containerPort"])
    return None


def service_changed(old: Obj | None, new: Obj | None) -> bool:
    """Whether a service event can change the endpoints kept for it."""
    if old is None or new is None:
        return True
    return old.get("spec") != new.get("spec") or (
        (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels")
    )


def services_of_pod_change(services: Informer, old: Obj | None, new: Obj | None) -> list[str]:
    """The keys of the services whose endpoints a pod event may change: those
    selecting the pod before or after, when something endpoints show changed.
    `services` must carry the SELECTING_INDEX."""
    pod = new if new is not None else old
    assert pod is not None
    # Old and new share the key, so the namespace: its services with a
    # selector are the only ones either could be in.
    selecting = services.by_index(
        SELECTING_INDEX, str((pod.get("metadata") or {}).get("namespace") or "")
    )
    if not selecting:
        return []  # the common case, checked first
    if old is not None and new is not None and endpoint_view(old) == endpoint_view(new):
        return []
    keys = []
    for version in (old, new):
        if version is not None:
            labels = (version.get("metadata") or {}).get("labels") or {}
            for svc in selecting:
                selector = svc["spec"]["selector"]
                if all(labels.get(k) == v for k, v in selector.items()):
                    keys.append(object_key(svc))
    return keys


def selected_pods(service: Obj, pods: Informer) -> list[Obj]:
    """The pods in the service's namespace that its selector matches (none
    without a selector). `pods` must carry the NAMESPACE_INDEX."""
    selector = (service.get("spec") or {}).get("selector")
    if not selector:
        return []
    namespace = str((service.get("metadata") or {}).get("namespace") or "")
    match = selector_from_labels(selector)
    return [
        p
        for p in pods.by_index(NAMESPACE_INDEX, namespace)
        if match.matches((p.get("metadata") or {}).get("labels") or {})
    ]


class ServicePodsController(QueueController):
    """A controller keeping something for each Service from the pods it selects:
    its queue holds service keys, woken by service and pod changes, and every
    service once the informers have synced."""

    def __init__(self, manager: Informers, config: Config, *, workers: int) -> None:
        super().__init__(manager, config, workers=workers)
        self.services = self.informer(SERVICE)
        self.pods = self.informer(POD)
        self.services.add_index(SELECTING_INDEX, selecting_index)
        self.pods.add_index(NAMESPACE_INDEX, namespace_index)
        self.services.add_handler(self._on_service)
        self.pods.add_handler(self._on_pod)

    def on_synced(self) -> None:
        for svc in self.services.list():
            self.queue.add(object_key(svc))

    def _on_service(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if service_changed(old, new):
            self.queue.add(object_key(event_object(old, new)))

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for key in services_of_pod_change(self.services, old, new):
            self.queue.add(key)
