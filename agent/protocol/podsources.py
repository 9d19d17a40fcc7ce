"""Which ConfigMaps and Secrets a pod reads: its containers' `env` and
`envFrom` and its `configMap`, `secret` and `projected` volumes.

Both sides use it: the control plane to send a node only what its pods
reference (control.nodes.podsources), the agent to know when what a pod
reads changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any, Literal, NamedTuple

Kind = Literal["configmap", "secret"]


class SourceRef(NamedTuple):
    """A ConfigMap or Secret a pod reads."""

    kind: Kind
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def pod_source_refs(pod: dict[str, Any]) -> list[tuple[SourceRef, bool]]:
    """(reference, optional) for each ConfigMap and Secret the pod reads, in
    the order the pod names them (a name may repeat)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    ns = str(meta.get("namespace") or "default")
    return [(SourceRef(kind, ns, name), optional) for kind, name, optional in _refs(spec)]


def _refs(spec: dict[str, Any]) -> Iterator[tuple[Kind, str, bool]]:
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for e in c.get("env") or []:
            value_from = e.get("valueFrom") or {}
            yield from _ref("configmap", value_from.get("configMapKeyRef"))
            yield from _ref("secret", value_from.get("secretKeyRef"))
        for e in c.get("envFrom") or []:
            yield from _ref("configmap", e.get("configMapRef"))
            yield from _ref("secret", e.get("secretRef"))
    for v in spec.get("volumes") or []:
        yield from _ref("configmap", v.get("configMap"))
        yield from _ref("secret", v.get("secret"), name_key="secretName")
        for source in (v.get("projected") or {}).get("sources") or []:
            yield from _ref("configmap", source.get("configMap"))
            yield from _ref("secret", source.get("secret"))


def _ref(kind: Kind, ref: object, name_key: str = "name") -> Iterator[tuple[Kind, str, bool]]:
    if isinstance(ref, dict) and ref.get(name_key):
        yield kind, str(ref[name_key]), bool(ref.get("optional"))


def volume_path_problem(path: str) -> str | None:
    """Why `path` cannot name a file in a volume (None when it can): the
    API's check of `items[].path`, and the agent's before it writes."""
    if not path:
        return "must not be empty"
    if PurePosixPath(path).is_absolute():
        return "must be a relative path"
    if ".." in PurePosixPath(path).parts:
        return "must not contain '..'"
    if path.startswith(".."):
        return "must not start with '..'"
    return None
