"""The ConfigMaps and Secrets each node is sent with its pods.

A node gets, with each `sync_pods`, the ConfigMaps and Secrets its pods
reference (agent.protocol.podsources) and that exist, and nothing else: a
Secret no pod on a node uses never reaches that node. A change to one marks
the links of the nodes whose pods use it, so that mounted volumes follow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from agent.protocol import PodSource
from agent.protocol.podsources import SourceRef, pod_source_refs
from control.machinery.indexes import pod_node_name
from control.machinery.informer import Informer
from control.objects import Obj

SOURCES_INDEX = "pilothouse.io/pod-sources"


def pod_source_keys(pod: Obj) -> list[str]:
    """Index function: the ConfigMaps and Secrets a pod reads, as `kind/ns/name`."""
    return sorted({str(ref) for ref, _ in pod_source_refs(pod)})


def _content(obj: Obj | None) -> tuple[object, object]:
    return (obj or {}).get("data"), (obj or {}).get("binaryData")


class PodSources:
    """`PodSources(pods, configmaps, secrets, changed)`: `changed(node)` is called
    when what a node's pods read changed; `for_pods(pods)` is what to send."""

    def __init__(
        self,
        pods: Informer,
        configmaps: Informer,
        secrets: Informer,
        changed: Callable[[str], None],
    ) -> None:
        self.pods = pods
        self.informers = {"configmap": configmaps, "secret": secrets}
        self.changed = changed
        pods.add_index(SOURCES_INDEX, pod_source_keys)
        configmaps.add_handler(lambda _t, old, new: self._on_source("configmap", old, new))
        secrets.add_handler(lambda _t, old, new: self._on_source("secret", old, new))

    def _on_source(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if _content(old) == _content(new) and (old is None) == (new is None):
            return
        meta = (new or old or {}).get("metadata") or {}
        key = f"{kind}/{meta.get('namespace')}/{meta.get('name')}"
        nodes = {n for pod in self.pods.by_index(SOURCES_INDEX, key) for n in pod_node_name(pod)}
        for node in sorted(nodes):
            self.changed(node)

    def for_pods(self, pods: Iterable[Obj]) -> dict[str, list[PodSource]]:
        """`sync_pods`' configMaps and secrets for these pods (only those that exist)."""
        refs: set[SourceRef] = {ref for pod in pods for ref, _ in pod_source_refs(pod)}
        out: dict[str, list[PodSource]] = {"configMaps": [], "secrets": []}
        for ref in sorted(refs):
            obj = self.informers[ref.kind].get(f"{ref.namespace}/{ref.name}")
            if obj is None:
                continue
            source = PodSource(namespace=ref.namespace, name=ref.name, data=obj.get("data") or {})
            if obj.get("binaryData"):
                source["binaryData"] = obj["binaryData"]
            out["configMaps" if ref.kind == "configmap" else "secrets"].append(source)
        return {k: v for k, v in out.items() if v}
