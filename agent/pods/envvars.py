"""A container's environment as the kubelet builds it: `envFrom` first (in
order), then `env`, whose values expand $(VAR) with what came before.

Values come from the pod (fieldRef), the container's resources
(resourceFieldRef), and the ConfigMaps and Secrets `sync_pods` brought
(configMapKeyRef, secretKeyRef, envFrom). A missing source that is not
optional raises MissingSource; envFrom keys that are not valid variable names
are skipped and reported, for an InvalidEnvironmentVariableNames event.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.cri import api_pb2 as pb
from agent.protocol.podsources import Kind, SourceRef
from agent.protocol.primitives import parse_quantity

from .sources import Sources

if TYPE_CHECKING:
    from .spec import NodeConfig

Obj = dict[str, Any]

# The kubelet's check of an envFrom key (with its prefix).
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_LABEL_OR_ANNOTATION = re.compile(r"metadata\.(labels|annotations)\['(.+)'\]")


@dataclass
class Environment:
    env: list[pb.KeyValue] = field(default_factory=list)
    # Warning events: (reason, message) for the keys envFrom skipped.
    events: list[tuple[str, str]] = field(default_factory=list)


def _format_map(values: dict[str, Any]) -> str:
    """Labels or annotations as a downward API file holds them: key="value" lines."""
    return "\n".join(f"{k}={json.dumps(str(values[k]))}" for k in sorted(values))


def field_ref_value(path: str, pod: Obj, pod_ip: str, node: NodeConfig) -> str:
    """The value of a fieldRef (env or downward API volume)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    m = _LABEL_OR_ANNOTATION.fullmatch(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    values = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", "default"),
        "metadata.uid": meta.get("uid", ""),
        "metadata.labels": _format_map(meta.get("labels") or {}),
        "metadata.annotations": _format_map(meta.get("annotations") or {}),
        "spec.nodeName": spec.get("nodeName") or node.name,
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": node.node_ip,
        "status.hostIPs": node.node_ip,
    }
    return str(values.get(path, ""))


def resource_field_value(ref: Obj, container: Obj, node: NodeConfig) -> str:
    """A resourceFieldRef: the container's limit or request over the divisor,
    rounded up; a missing limit is the node's allocatable, as the kubelet has it."""
    resource = str(ref.get("resource") or "")
    group, _, name = resource.partition(".")
    if group not in ("limits", "requests") or not name:
        raise ValueError(f"resourceFieldRef: unsupported resource {resource!r}")
    res = container.get("resources") or {}
    value = (res.get(group) or {}).get(name)
    if value is None and group == "requests":
        value = (res.get("limits") or {}).get(name)
    if value is None:
        value = node_allocatable(node, name) if group == "limits" else "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor <= 0:  # the API stores an unset divisor as "0"
        divisor = parse_quantity("1")
    return str(math.ceil(parse_quantity(value) / divisor))


def node_allocatable(node: NodeConfig, name: str) -> str:
    if name in node.allocatable:
        return node.allocatable[name]
    if name == "cpu":
        return str(os.cpu_count() or 1)
    if name == "memory":
        return str(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return "0"


def container_env(
    container: Obj, pod: Obj, pod_ip: str, node: NodeConfig, sources: Sources
) -> Environment:
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    out = Environment()
    values: dict[str, str] = {}  # name -> value, in definition order
    for e in container.get("envFrom") or []:
        prefix = str(e.get("prefix") or "")
        kind: Kind
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = e.get(key)
            if not ref:
                continue
            source = SourceRef(kind, ns, str(ref.get("name") or ""))
            data = sources.get(source, bool(ref.get("optional"))) or {}
            invalid = []
            for k in sorted(data):
                name = prefix + k
                if not _ENV_NAME.fullmatch(name):
                    invalid.append(name)
                    continue
                values[name] = data[k].decode("utf-8", errors="replace")
            if invalid:
                title = "configMap" if kind == "configmap" else "secret"
                out.events.append(
                    (
                        "InvalidEnvironmentVariableNames",
                        f"Keys [{', '.join(invalid)}] from the EnvFrom {title} "
                        f"{ns}/{source.name} were skipped since they are considered "
                        "invalid environment variable names.",
                    )
                )
    for e in container.get("env") or []:
        name = str(e["name"])
        value = e.get("value")
        if value is not None:
            values[name] = expand(str(value), values)
            continue
        resolved = _value_from(e.get("valueFrom") or {}, container, pod, pod_ip, node, sources)
        if resolved is None:
            continue  # an optional source that is absent: the variable is not set
        values[name] = resolved
    out.env = [pb.KeyValue(key=k, value=v) for k, v in values.items()]
    return out


def _value_from(
    vf: Obj, container: Obj, pod: Obj, pod_ip: str, node: NodeConfig, sources: Sources
) -> str | None:
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    if "fieldRef" in vf:
        return field_ref_value(str(vf["fieldRef"].get("fieldPath", "")), pod, pod_ip, node)
    if "resourceFieldRef" in vf:
        ref = vf["resourceFieldRef"]
        target = container
        wanted = ref.get("containerName")
        if wanted and wanted != container.get("name"):
            spec = pod.get("spec") or {}
            all_containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
            target = next((c for c in all_containers if c.get("name") == wanted), container)
        return resource_field_value(ref, target, node)
    kind: Kind
    for kind, key in (("configmap", "configMapKeyRef"), ("secret", "secretKeyRef")):
        ref = vf.get(key)
        if ref:
            source = SourceRef(kind, ns, str(ref.get("name") or ""))
            value = sources.key(source, str(ref.get("key") or ""), bool(ref.get("optional")))
            return None if value is None else value.decode("utf-8", errors="replace")
    return ""


def expand(s: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion; $$ escapes."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, s)
