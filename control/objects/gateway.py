"""The Gateway API kinds (`gateway.networking.k8s.io/v1`) the ingress route
table reads: GatewayClass, Gateway and HTTPRoute. Only the fields that must be
present, or must have one form, are modelled; the rest is kept as written."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.objects.meta import Condition, DNSSubdomain, KubeModel, KubeObject, Port, SubdomainMeta

Name = Field(min_length=1, max_length=253)


class GatewayAPIObject(KubeObject):
    """The three kinds' common part: their names are DNS-1123 subdomains."""

    metadata: SubdomainMeta


class ConditionsStatus(KubeModel):
    """A status of conditions only (a GatewayClass's; a Gateway's adds addresses)."""

    conditions: list[Condition] | None = None


class GatewayClassSpec(KubeModel):
    controllerName: str = Name


class GatewayClass(GatewayAPIObject):
    """A kind of Gateway, and the controller that serves it."""

    spec: GatewayClassSpec
    status: ConditionsStatus | None = None


class CertificateRef(KubeModel):
    name: str = Name


class GatewayTLSConfig(KubeModel):
    mode: Literal["Terminate", "Passthrough"] = "Terminate"
    certificateRefs: list[CertificateRef] = Field(default_factory=list, max_length=64)


class Listener(KubeModel):
    """One port, protocol and hostname a Gateway serves."""

    name: DNSSubdomain
    port: Port
    protocol: str = Name
    tls: GatewayTLSConfig | None = None


class GatewaySpec(KubeModel):
    gatewayClassName: str = Name
    listeners: list[Listener] = Field(min_length=1, max_length=64)


class GatewayAddress(KubeModel):
    value: str = Name


class GatewayStatus(ConditionsStatus):
    addresses: list[GatewayAddress] | None = None


class Gateway(GatewayAPIObject):
    """Listeners served by the controller of its GatewayClass."""

    spec: GatewaySpec
    status: GatewayStatus | None = None


class ParentReference(KubeModel):
    """The Gateway (and optionally its listener or port) a route attaches to."""

    name: str = Name
    port: Port | None = None


class HTTPBackendRef(KubeModel):
    """A Service port and its share of the rule's requests."""

    name: str = Name
    port: Port
    weight: int = Field(default=1, ge=0, le=1_000_000)


class HTTPRouteRule(KubeModel):
    backendRefs: list[HTTPBackendRef] | None = Field(default=None, max_length=16)


class HTTPRouteSpec(KubeModel):
    parentRefs: list[ParentReference] | None = Field(default=None, max_length=32)
    hostnames: list[str] | None = Field(default=None, max_length=16)
    rules: list[HTTPRouteRule] | None = Field(default=None, max_length=16)


class RouteParentStatus(ConditionsStatus):
    """Whether one parent accepted the route, as its controller says."""

    parentRef: ParentReference
    controllerName: str = Name


class HTTPRouteStatus(KubeModel):
    parents: list[RouteParentStatus] = Field(default_factory=list, max_length=32)


class HTTPRoute(GatewayAPIObject):
    """HTTP requests matched by host, path and headers, sent to Services."""

    spec: HTTPRouteSpec
    status: HTTPRouteStatus | None = None
