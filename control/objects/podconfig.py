"""What a pod's containers are configured from: `env` (with `valueFrom`),
`envFrom` and the pod's volumes, with Kubernetes' defaults and validation.

Volumes of the kinds the agent does not run (persistentVolumeClaim, nfs, ...)
are kept as written; of a projected volume's sources, `serviceAccountToken`,
`clusterTrustBundle` and `podCertificate` are refused as not supported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import InitErrorDetails

from agent.protocol.podsources import volume_path_problem
from agent.protocol.primitives import parse_quantity
from control.objects.meta import (
    FORBIDDEN,
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    DNSLabel,
    KubeModel,
    Quantity,
    error,
    field_error,
    raise_errors,
    unsupported,
)

CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# Kubernetes (RelaxedEnvironmentVariableValidation): printable ASCII but '='.
_ENV_NAME = re.compile(r"[ -<>-~]+")
_LABEL_OR_ANNOTATION = re.compile(r"metadata\.(labels|annotations)\['(.+)'\]")
DEFAULT_MODE = 0o644  # 420, as the API stores it
# fieldRef paths an env var may read; a downward API file reads the first
# ones and whole labels and annotations.
ENV_FIELDS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
VOLUME_FIELDS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels",
    "metadata.annotations",
)
RESOURCES = tuple(
    f"{group}.{name}"
    for group in ("limits", "requests")
    for name in ("cpu", "memory", "ephemeral-storage")
)
_CPU_DIVISORS = ("1m", "1")
_MEMORY_DIVISORS = (
    "1",
    "1k",
    "1M",
    "1G",
    "1T",
    "1P",
    "1E",
    "1Ki",
    "1Mi",
    "1Gi",
    "1Ti",
    "1Pi",
    "1Ei",
)


def config_key_problem(key: str) -> str | None:
    if len(key) > 253 or not CONFIG_KEY.fullmatch(key) or key in (".", ".."):
        return (
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
            "(e.g. 'key.name', or 'KEY_NAME', or 'key-name', regex used for validation is "
            "'[-._a-zA-Z0-9]+')"
        )
    return None


def env_name_problem(name: str) -> str | None:
    if not _ENV_NAME.fullmatch(name):
        return (
            "a valid environment variable name must consist only of printable ASCII "
            "characters other than '='"
        )
    return None


def _checked(problem: Callable[[str], str | None]) -> AfterValidator:
    """A field validator from a rule that says what is wrong with a value."""

    def check(value: str) -> str:
        why = problem(value)
        if why:
            raise error(INVALID, why)
        return value

    return AfterValidator(check)


def _mode(value: int) -> int:
    if not 0 <= value <= 0o777:
        raise error(INVALID, "must be a number between 0 and 0777 (octal), both inclusive")
    return value


ConfigKey = Annotated[str, _checked(config_key_problem)]
EnvName = Annotated[str, _checked(env_name_problem)]
FileMode = Annotated[int, AfterValidator(_mode)]
VolumePath = Annotated[str, _checked(volume_path_problem)]


def _one_of(model: str, fields: dict[str, object], what: str) -> None:
    """Exactly one of `fields` is set, as Kubernetes wants of a union."""
    given = [name for name, value in fields.items() if value is not None]
    if len(given) > 1:
        why = "may not have more than one field specified at a time"
        raise_errors(model, [field_error((given[1],), FORBIDDEN, why)])
    if not given:
        raise error(REQUIRED, f"must specify one of: {what}")


# --- selectors -------------------------------------------------------------------


class ObjectFieldSelector(KubeModel):
    apiVersion: str = "v1"
    fieldPath: str = Field(min_length=1)


class ResourceFieldSelector(KubeModel):
    containerName: str | None = None
    resource: str = Field(min_length=1)
    divisor: Quantity = "0"

    @model_validator(mode="after")
    def _resource_and_divisor(self) -> Self:
        if self.resource not in RESOURCES:
            why = unsupported(self.resource, RESOURCES)
            raise_errors("ResourceFieldSelector", [field_error(("resource",), NOT_SUPPORTED, why)])
        if parse_quantity(self.divisor) != 0:
            allowed = _CPU_DIVISORS if self.resource.endswith(".cpu") else _MEMORY_DIVISORS
            if not any(parse_quantity(self.divisor) == parse_quantity(a) for a in allowed):
                why = unsupported(self.divisor, allowed)
                raise_errors(
                    "ResourceFieldSelector", [field_error(("divisor",), NOT_SUPPORTED, why)]
                )
        return self


class KeySelector(KubeModel):
    """configMapKeyRef and secretKeyRef."""

    name: str = Field(min_length=1)
    key: ConfigKey
    optional: bool | None = None


class EnvVarSource(KubeModel):
    fieldRef: ObjectFieldSelector | None = None
    resourceFieldRef: ResourceFieldSelector | None = None
    configMapKeyRef: KeySelector | None = None
    secretKeyRef: KeySelector | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        _one_of(
            "EnvVarSource",
            {
                "fieldRef": self.fieldRef,
                "resourceFieldRef": self.resourceFieldRef,
                "configMapKeyRef": self.configMapKeyRef,
                "secretKeyRef": self.secretKeyRef,
            },
            "`fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        )
        path = self.fieldRef.fieldPath if self.fieldRef else None
        if path is not None and path not in ENV_FIELDS and not _LABEL_OR_ANNOTATION.fullmatch(path):
            why = unsupported(path, ENV_FIELDS)
            raise_errors(
                "EnvVarSource", [field_error(("fieldRef", "fieldPath"), NOT_SUPPORTED, why)]
            )
        return self


class EnvVar(KubeModel):
    name: EnvName
    value: str | None = None
    valueFrom: EnvVarSource | None = None

    @model_validator(mode="after")
    def _value_or_source(self) -> Self:
        if self.value and self.valueFrom is not None:
            why = "may not be specified when `value` is not empty"
            raise_errors("EnvVar", [field_error(("valueFrom",), INVALID, why)])
        return self


class SourceRef(KubeModel):
    """envFrom's configMapRef and secretRef."""

    name: str = Field(min_length=1)
    optional: bool | None = None


class EnvFromSource(KubeModel):
    prefix: str | None = None
    configMapRef: SourceRef | None = None
    secretRef: SourceRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        why = env_name_problem(self.prefix) if self.prefix else None
        if why:
            raise_errors("EnvFromSource", [field_error(("prefix",), INVALID, why)])
        _one_of(
            "EnvFromSource",
            {"configMapRef": self.configMapRef, "secretRef": self.secretRef},
            "`configMapRef` or `secretRef`",
        )
        return self


# --- volumes ---------------------------------------------------------------------


class KeyToPath(KubeModel):
    key: ConfigKey
    path: VolumePath
    mode: FileMode | None = None


class ConfigMapProjection(KubeModel):
    name: str = Field(min_length=1)
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class ConfigMapVolumeSource(ConfigMapProjection):
    defaultMode: FileMode = DEFAULT_MODE


class SecretProjection(ConfigMapProjection):
    pass


class SecretVolumeSource(KubeModel):
    secretName: str = Field(min_length=1)
    items: list[KeyToPath] | None = None
    defaultMode: FileMode = DEFAULT_MODE
    optional: bool | None = None


class DownwardAPIVolumeFile(KubeModel):
    path: VolumePath
    fieldRef: ObjectFieldSelector | None = None
    resourceFieldRef: ResourceFieldSelector | None = None
    mode: FileMode | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        _one_of(
            "DownwardAPIVolumeFile",
            {"fieldRef": self.fieldRef, "resourceFieldRef": self.resourceFieldRef},
            "`fieldRef` or `resourceFieldRef`",
        )
        errors: list[InitErrorDetails] = []
        path = self.fieldRef.fieldPath if self.fieldRef else None
        if (
            path is not None
            and path not in VOLUME_FIELDS
            and not _LABEL_OR_ANNOTATION.fullmatch(path)
        ):
            why = unsupported(path, VOLUME_FIELDS)
            errors.append(field_error(("fieldRef", "fieldPath"), NOT_SUPPORTED, why))
        if self.resourceFieldRef is not None and not self.resourceFieldRef.containerName:
            errors.append(field_error(("resourceFieldRef", "containerName"), REQUIRED, "required"))
        raise_errors("DownwardAPIVolumeFile", errors)
        return self


class DownwardAPIProjection(KubeModel):
    items: list[DownwardAPIVolumeFile] | None = None


class DownwardAPIVolumeSource(DownwardAPIProjection):
    defaultMode: FileMode = DEFAULT_MODE


_UNSUPPORTED_PROJECTIONS = ("serviceAccountToken", "clusterTrustBundle", "podCertificate")


class VolumeProjection(KubeModel):
    configMap: ConfigMapProjection | None = None
    secret: SecretProjection | None = None
    downwardAPI: DownwardAPIProjection | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        extra = self.model_extra or {}
        for name in _UNSUPPORTED_PROJECTIONS:
            if name in extra:
                why = f"{name} projections are not supported by pilothouse"
                raise_errors("VolumeProjection", [field_error((name,), FORBIDDEN, why)])
        _one_of(
            "VolumeProjection",
            {"configMap": self.configMap, "secret": self.secret, "downwardAPI": self.downwardAPI},
            "`configMap`, `secret` or `downwardAPI`",
        )
        return self


class ProjectedVolumeSource(KubeModel):
    sources: list[VolumeProjection] | None = None
    defaultMode: FileMode = DEFAULT_MODE

    @model_validator(mode="after")
    def _unique_paths(self) -> Self:
        seen: set[str] = set()
        errors: list[InitErrorDetails] = []
        for i, source in enumerate(self.sources or ()):
            paths: list[tuple[str, list[str]]] = [
                (
                    "configMap",
                    [f.path for f in (source.configMap and source.configMap.items) or ()],
                ),
                ("secret", [f.path for f in (source.secret and source.secret.items) or ()]),
                (
                    "downwardAPI",
                    [f.path for f in (source.downwardAPI and source.downwardAPI.items) or ()],
                ),
            ]
            for key, names in paths:
                for j, path in enumerate(names):
                    if path in seen:
                        loc = ("sources", i, key, "items", j, "path")
                        errors.append(field_error(loc, INVALID, "conflicting duplicate paths"))
                    seen.add(path)
        raise_errors("ProjectedVolumeSource", errors)
        return self


class Volume(KubeModel):
    name: DNSLabel
    emptyDir: dict[str, Any] | None = None
    hostPath: dict[str, Any] | None = None
    configMap: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    downwardAPI: DownwardAPIVolumeSource | None = None
    projected: ProjectedVolumeSource | None = None

    @model_validator(mode="after")
    def _one_type(self) -> Self:
        typed = [
            k
            for k in ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected")
            if getattr(self, k) is not None
        ]
        kinds = typed + list(self.model_extra or {})
        if len(kinds) > 1:
            raise_errors(
                "Volume",
                [field_error((kinds[1],), FORBIDDEN, "may not specify more than 1 volume type")],
            )
        if not kinds:
            raise error(REQUIRED, "must specify a volume type")
        return self
