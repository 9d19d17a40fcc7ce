"""The root CA publisher: a `kube-root-ca.crt` ConfigMap in every namespace.

As Kubernetes' root-ca-cert-publisher: key `ca.crt` holds the cluster CA
(control.api.pki), so a pod can verify the API server. The ConfigMap is made
in each new namespace, and put back when someone changes or deletes it;
namespaces being deleted are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from control.config import Config
from control.controllers.base import Informers, QueueController, event_object
from control.controllers.objectmeta import Obj, is_deleting, meta
from control.errors import ApiError
from control.objects.kinds import CONFIGMAP, NAMESPACE

log = logging.getLogger(__name__)

COMPONENT = "root-ca-cert-publisher"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
CA_KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)


class RootCAPublisher(QueueController):
    name = COMPONENT

    def __init__(self, manager: Informers, config: Config, ca_pem: str) -> None:
        super().__init__(manager, config, workers=1)
        self.ca_pem = ca_pem
        self.namespaces = self.informer(NAMESPACE)
        self.configmaps = self.informer(CONFIGMAP)
        self.namespaces.add_handler(self._on_namespace)
        self.configmaps.add_handler(self._on_configmap)

    def _on_namespace(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if new is not None and not is_deleting(new):
            self.queue.add(str(meta(new)["name"]))

    def _on_configmap(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        m = meta(event_object(old, new))
        if m.get("name") == ROOT_CA_CONFIGMAP:
            self.queue.add(str(m.get("namespace")))

    async def reconcile(self, namespace: str) -> float | None:
        ns = self.namespaces.get(namespace)
        if ns is None or is_deleting(ns):
            return None
        data = {CA_KEY: self.ca_pem}
        current = self.configmaps.get(f"{namespace}/{ROOT_CA_CONFIGMAP}")
        try:
            if current is None:
                body: Obj = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": ROOT_CA_CONFIGMAP,
                        "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
                    },
                    "data": data,
                }
                await self.registry.create(CONFIGMAP, namespace, body)
            elif current.get("data") != data or not _described(current):
                await self.registry.patch(CONFIGMAP, namespace, ROOT_CA_CONFIGMAP, _restore(data))
        except ApiError as e:
            # Already there (the informer will show it), gone, or the
            # namespace began terminating meanwhile: nothing to do.
            if e.reason not in ("AlreadyExists", "NotFound", "Forbidden"):
                raise
        return None


def _described(cm: Obj) -> bool:
    return bool((meta(cm).get("annotations") or {}).get(DESCRIPTION_ANNOTATION))


def _restore(data: dict[str, str]) -> Callable[[Obj], Obj]:
    def build(obj: Obj) -> Obj:
        m = obj.setdefault("metadata", {})
        m["annotations"] = {**(m.get("annotations") or {}), DESCRIPTION_ANNOTATION: DESCRIPTION}
        obj["data"] = dict(data)
        return obj

    return build
