"""The ConfigMaps and Secrets the node's pods read, as `sync_pods` brings them.

The control plane sends only those the node's pods reference, and only those
that exist: a referenced one that is absent is missing. Values are bytes
(ConfigMap `data` encoded as UTF-8, `binaryData` and Secret `data` decoded
from base64). Secret values are never printed: the repr says how many keys.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agent.protocol import InvalidParams, Params
from agent.protocol.podsources import Kind, SourceRef, pod_source_refs

# How the kubelet names the kind in messages about a missing key.
_TITLE: dict[Kind, str] = {"configmap": "ConfigMap", "secret": "Secret"}


class MissingSource(Exception):
    """A ConfigMap, Secret or key a pod needs is not there (CreateContainerConfigError)."""


@dataclass
class Sources:
    """ConfigMaps and Secrets by (namespace, name): key -> value bytes."""

    configmaps: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"Sources({len(self.configmaps)} configmaps, {len(self.secrets)} secrets)"

    @classmethod
    def from_params(cls, params: Params) -> Sources:
        """`sync_pods`' configMaps and secrets; InvalidParams names a bad one
        (never a value)."""
        out = cls()
        for what, table, base64_data in (
            ("configMaps", out.configmaps, False),
            ("secrets", out.secrets, True),
        ):
            items = params.get(what) or []
            if not isinstance(items, list):
                raise InvalidParams(f"{what}: expected an array")
            for i, item in enumerate(items):
                ns, name, values = _parse(item, base64_data, f"{what}[{i}]")
                table[(ns, name)] = values
        return out

    def _table(self, kind: Kind) -> dict[tuple[str, str], dict[str, bytes]]:
        return self.configmaps if kind == "configmap" else self.secrets

    def get(self, ref: SourceRef, optional: bool = False) -> dict[str, bytes] | None:
        """The values of a ConfigMap or Secret; None when it is absent and optional."""
        values = self._table(ref.kind).get((ref.namespace, ref.name))
        if values is None and not optional:
            raise MissingSource(f'{ref.kind} "{ref.name}" not found')
        return values

    def key(self, ref: SourceRef, key: str, optional: bool = False) -> bytes | None:
        """One key's value, as an env valueFrom reads it."""
        values = self.get(ref, optional)
        if values is None:
            return None
        if key not in values:
            if optional:
                return None
            title = _TITLE[ref.kind]
            raise MissingSource(f"couldn't find key {key} in {title} {ref.namespace}/{ref.name}")
        return values[key]

    def version(self, refs: Iterable[SourceRef]) -> tuple[object, ...]:
        """What a pod's view of these sources is now: equal while nothing it reads changed."""
        return tuple(
            (r, tuple(sorted((self._table(r.kind).get((r.namespace, r.name)) or {}).items())))
            if (r.namespace, r.name) in self._table(r.kind)
            else (r, None)
            for r in sorted(set(refs))
        )


def first_missing(pod: Mapping[str, object], sources: Sources) -> str | None:
    """Why the pod cannot start for want of a ConfigMap or Secret (None: all there)."""
    for ref, optional in pod_source_refs(dict(pod)):
        try:
            sources.get(ref, optional)
        except MissingSource as e:
            return str(e)
    return None


def _parse(item: object, base64_data: bool, where: str) -> tuple[str, str, dict[str, bytes]]:
    if not isinstance(item, Mapping):
        raise InvalidParams(f"{where}: expected an object")
    ns, name = item.get("namespace"), item.get("name")
    if not isinstance(ns, str) or not isinstance(name, str) or not name:
        raise InvalidParams(f"{where}: namespace and name are required")
    values: dict[str, bytes] = {}
    for part, encoded in (("data", base64_data), ("binaryData", True)):
        data = item.get(part) or {}
        if not isinstance(data, Mapping):
            raise InvalidParams(f"{where}.{part}: expected an object")
        for key, value in data.items():
            if not isinstance(value, str):
                raise InvalidParams(f"{where}.{part}[{key}]: expected a string")
            try:
                values[str(key)] = (
                    base64.b64decode(value, validate=True) if encoded else value.encode()
                )
            except binascii.Error:
                raise InvalidParams(f"{where}.{part}[{key}]: not base64") from None
    return ns, name, values
