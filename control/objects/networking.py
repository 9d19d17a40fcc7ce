"""The `networking.k8s.io/v1` kinds: Ingress and IngressClass, and which
class an Ingress naming none belongs to."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from agent.protocol.primitives import is_dns1123_subdomain
from control.objects import Obj
from control.objects.core import LoadBalancerStatus
from control.objects.meta import (
    FORBIDDEN,
    INVALID,
    REQUIRED,
    SUBDOMAIN_RULE,
    DNS1035Label,
    KubeModel,
    KubeObject,
    Port,
    PortName,
    SubdomainMeta,
    error,
    field_error,
    raise_errors,
)


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise error(INVALID, "must be a DNS name, not an IP address")
    name = value.removeprefix("*.")
    if len(value) > 253 or not is_dns1123_subdomain(name):
        raise error(
            INVALID,
            f"must be a DNS-1123 subdomain, optionally with a leading '*.': {SUBDOMAIN_RULE}",
        )
    return value


Host = Annotated[str, AfterValidator(_host)]


def _exactly_one(model: KubeModel, a: str, b: str) -> None:
    """Exactly one of the model's fields `a` and `b` must be set."""
    has_a, has_b = getattr(model, a) is not None, getattr(model, b) is not None
    if not has_a and not has_b:
        raise error(REQUIRED, f"must specify `{a}` or `{b}`")
    if has_a and has_b:
        raise error(FORBIDDEN, f"may not specify both `{a}` and `{b}`")


class ServiceBackendPort(KubeModel):
    name: PortName | None = None
    number: Port | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        _exactly_one(self, "name", "number")
        return self


class IngressServiceBackend(KubeModel):
    name: DNS1035Label
    port: ServiceBackendPort


class IngressBackend(KubeModel):
    service: IngressServiceBackend | None = None
    resource: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        _exactly_one(self, "service", "resource")
        return self


class HTTPIngressPath(KubeModel):
    path: str | None = None
    pathType: Literal["Exact", "Prefix", "ImplementationSpecific"]
    backend: IngressBackend

    @model_validator(mode="after")
    def _absolute(self) -> Self:
        needs_absolute = self.pathType != "ImplementationSpecific" or self.path
        if needs_absolute and not (self.path or "").startswith("/"):
            raise_errors("path", [field_error(("path",), INVALID, "must be an absolute path")])
        return self


class HTTPIngressRuleValue(KubeModel):
    paths: list[HTTPIngressPath] = Field(min_length=1)


class IngressRule(KubeModel):
    host: Host | None = None
    http: HTTPIngressRuleValue | None = None


class IngressTLS(KubeModel):
    hosts: list[Host] | None = None
    secretName: str | None = None


class IngressSpec(KubeModel):
    ingressClassName: str | None = None
    defaultBackend: IngressBackend | None = None
    tls: list[IngressTLS] | None = None
    rules: list[IngressRule] | None = None

    @model_validator(mode="after")
    def _backend_or_rules(self) -> Self:
        if self.defaultBackend is None and not self.rules:
            raise error(REQUIRED, "either `defaultBackend` or `rules` must be specified")
        return self


class IngressClassParameters(KubeModel):
    """Controller-specific settings of a class, in another object."""

    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    scope: Literal["Cluster", "Namespace"] = "Cluster"


class IngressClassSpec(KubeModel):
    controller: str | None = None
    parameters: IngressClassParameters | None = None


class IngressClass(KubeObject):
    """Which controller serves the Ingresses of this class."""

    metadata: SubdomainMeta
    spec: IngressClassSpec = Field(default_factory=IngressClassSpec)


class IngressStatus(KubeModel):
    # Kubernetes' IngressLoadBalancerStatus has the fields of a Service's.
    loadBalancer: LoadBalancerStatus | None = None


class Ingress(KubeObject):
    metadata: SubdomainMeta
    spec: IngressSpec
    status: IngressStatus | None = None


DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
# The class an Ingress named before spec.ingressClassName existed.
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def is_default_class(ingress_class: Obj) -> bool:
    annotations = (ingress_class.get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(DEFAULT_CLASS_ANNOTATION) == "true")


def default_ingress_class(ingress: Obj, classes: Iterable[Obj]) -> str | None:
    """The class to set on a new Ingress that names none, as Kubernetes'
    DefaultIngressClass admission picks it: the newest default class (then
    the first by name); None when the Ingress names one (or the legacy
    annotation does) or no class is the default."""
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    if (ingress.get("spec") or {}).get(
        "ingressClassName"
    ) or LEGACY_CLASS_ANNOTATION in annotations:
        return None
    defaults = [(c.get("metadata") or {}) for c in classes if is_default_class(c)]
    if not defaults:
        return None
    newest = max(str(m.get("creationTimestamp") or "") for m in defaults)
    return min(
        str(m.get("name")) for m in defaults if str(m.get("creationTimestamp") or "") == newest
    )
