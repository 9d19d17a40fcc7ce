"""A pod's volumes on the node, and its containers' mounts of them.

emptyDir and hostPath are directories. configMap, secret, downwardAPI and
projected volumes are files the agent writes with the atomic writer, and
writes again when what they show changes (a ConfigMap or Secret update, new
labels): mounts of the whole volume follow, `subPath` mounts do not. Volumes
that may hold Secret data (secret, projected) live on the secrets tmpfs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.cri import api_pb2 as pb
from agent.protocol.podsources import SourceRef

from .atomicwriter import FileProjection, data_dir, write_payload
from .envvars import field_ref_value, resource_field_value
from .secretfs import ensure_secret_fs, secret_root
from .sources import MissingSource, Sources

if TYPE_CHECKING:
    from .spec import NodeConfig

Obj = dict[str, Any]
Payload = dict[str, FileProjection]

DEFAULT_MODE = 0o644
WRITTEN = ("configMap", "secret", "downwardAPI", "projected")  # the atomic writer's kinds


def _uid(pod: Obj) -> str:
    return str(pod["metadata"]["uid"])


def volume_dir(node: NodeConfig, pod: Obj, vol: Obj) -> Path | None:
    """Where a volume lives on the node; None for a hostPath or an unsupported kind."""
    name = str(vol.get("name"))
    if "secret" in vol or "projected" in vol:
        return secret_root(node.state_dir) / _uid(pod) / name
    if "emptyDir" in vol or "configMap" in vol or "downwardAPI" in vol:
        return node.state_dir / "volumes" / _uid(pod) / name
    return None


def pod_dirs(node: NodeConfig, uid: str) -> list[Path]:
    """The directories that hold a pod's volumes (removed with the pod)."""
    return [node.state_dir / "volumes" / uid, secret_root(node.state_dir) / uid]


def write_volumes(pod: Obj, pod_ip: str, node: NodeConfig, sources: Sources) -> list[str]:
    """Writes every configMap, secret, downwardAPI and projected volume of the
    pod (those whose content changed). Returns the names of those rewritten;
    MissingSource names the first ConfigMap, Secret or key that is missing."""
    changed = []
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        if not any(k in vol for k in WRITTEN):
            continue
        payload = volume_payload(vol, pod, pod_ip, node, sources)
        target = volume_dir(node, pod, vol)
        assert target is not None
        if secret_root(node.state_dir) in target.parents:
            ensure_secret_fs(node.state_dir, tmpfs=node.secret_tmpfs)
        if write_payload(target, payload):
            changed.append(str(vol.get("name")))
    return changed


def volume_payload(vol: Obj, pod: Obj, pod_ip: str, node: NodeConfig, sources: Sources) -> Payload:
    ns = str(pod["metadata"].get("namespace") or "default")
    if "configMap" in vol:
        src = vol["configMap"] or {}
        mode = _mode(src.get("defaultMode"))
        return _keys(SourceRef("configmap", ns, str(src.get("name") or "")), src, mode, sources)
    if "secret" in vol:
        src = vol["secret"] or {}
        mode = _mode(src.get("defaultMode"))
        ref = SourceRef("secret", ns, str(src.get("secretName") or ""))
        return _keys(ref, src, mode, sources)
    if "downwardAPI" in vol:
        src = vol["downwardAPI"] or {}
        return _downward(src.get("items") or [], _mode(src.get("defaultMode")), pod, pod_ip, node)
    src = vol.get("projected") or {}
    mode = _mode(src.get("defaultMode"))
    payload: Payload = {}
    for source in src.get("sources") or []:
        if "configMap" in source:
            cm = source["configMap"] or {}
            ref = SourceRef("configmap", ns, str(cm.get("name") or ""))
            payload.update(_keys(ref, cm, mode, sources))
        elif "secret" in source:
            s = source["secret"] or {}
            ref = SourceRef("secret", ns, str(s.get("name") or ""))
            payload.update(_keys(ref, s, mode, sources))
        elif "downwardAPI" in source:
            items = (source["downwardAPI"] or {}).get("items") or []
            payload.update(_downward(items, mode, pod, pod_ip, node))
    return payload


def _mode(value: object, default: int = DEFAULT_MODE) -> int:
    return int(value) & 0o777 if isinstance(value, int) else default


def _keys(ref: SourceRef, src: Obj, mode: int, sources: Sources) -> Payload:
    """A ConfigMap's or Secret's keys as files: all of them, or the items."""
    optional = bool(src.get("optional"))
    values = sources.get(ref, optional)
    if values is None:
        return {}
    items = src.get("items")
    if not items:
        return {k: FileProjection(v, mode) for k, v in values.items()}
    payload: Payload = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in values:
            if optional:
                continue
            what = "config" if ref.kind == "configmap" else "secret"
            raise MissingSource(f"{ref.kind} references non-existent {what} key: {key}")
        payload[str(item.get("path") or key)] = FileProjection(
            values[key], _mode(item.get("mode"), mode)
        )
    return payload


def _downward(items: list[Obj], mode: int, pod: Obj, pod_ip: str, node: NodeConfig) -> Payload:
    payload: Payload = {}
    containers = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
    for item in items:
        if "fieldRef" in item:
            path = str((item["fieldRef"] or {}).get("fieldPath") or "")
            value = field_ref_value(path, pod, pod_ip, node)
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"] or {}
            container = containers.get(ref.get("containerName")) or {}
            value = resource_field_value(ref, container, node)
        else:
            continue
        payload[str(item.get("path"))] = FileProjection(
            value.encode(), _mode(item.get("mode"), mode)
        )
    return payload


def volume_mounts(container: Obj, pod: Obj, node: NodeConfig) -> list[pb.Mount]:
    """The container's mounts of emptyDir, hostPath and written volumes; other
    kinds are not supported yet."""
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    mounts: list[pb.Mount] = []
    for vm in container.get("volumeMounts") or []:
        vol = volumes.get(vm.get("name"))
        if vol is None:
            continue
        sub = str(vm.get("subPath") or "")
        written = any(k in vol for k in WRITTEN)
        if "hostPath" in vol:
            host = Path(str(vol["hostPath"].get("path", "")))
            if vol["hostPath"].get("type") in ("DirectoryOrCreate",):
                host.mkdir(parents=True, exist_ok=True)
        else:
            found = volume_dir(node, pod, vol)
            if found is None:
                continue
            host = found
            host.mkdir(parents=True, exist_ok=True)
            if written and sub:
                # A subPath binds the file of the content written now: it does not follow.
                host = data_dir(host) or host
        mounts.append(
            pb.Mount(
                container_path=str(vm["mountPath"]),
                host_path=str(host / sub) if sub else str(host),
                # Kubernetes mounts these read-only whatever the mount says.
                readonly=bool(vm.get("readOnly")) or written,
            )
        )
    return mounts
