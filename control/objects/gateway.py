"""The Gateway API kinds (`gateway.networking.k8s.io/v1`) the ingress route
table reads: GatewayClass, Gateway and HTTPRoute. Only the fields it reads are
modelled; the rest is kept as written."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.objects.meta import (
    Condition,
    DNSSubdomain,
    KubeModel,
    KubeObject,
    Port,
    SubdomainMeta,
)


class GatewayClassSpec(KubeModel):
    controllerName: str = Field(min_length=1, max_length=253)
    description: str | None = None


class GatewayClassStatus(KubeModel):
    conditions: list[Condition] | None = None


class GatewayClass(KubeObject):
    metadata: SubdomainMeta
    spec: GatewayClassSpec
    status: GatewayClassStatus | None = None


class SecretObjectReference(KubeModel):
    name: str = Field(min_length=1)
    namespace: str | None = None
    kind: str | None = None
    group: str | None = None


class GatewayTLSConfig(KubeModel):
    mode: Literal["Terminate", "Passthrough"] | None = None
    certificateRefs: list[SecretObjectReference] | None = None


class Listener(KubeModel):
    name: DNSSubdomain
    hostname: str | None = None
    port: Port
    protocol: str = Field(min_length=1)
    tls: GatewayTLSConfig | None = None


class GatewaySpec(KubeModel):
    gatewayClassName: str = Field(min_length=1)
    listeners: list[Listener] = Field(min_length=1, max_length=64)


class GatewayStatusAddress(KubeModel):
    type: str | None = None
    value: str


class GatewayStatus(KubeModel):
    addresses: list[GatewayStatusAddress] | None = None
    conditions: list[Condition] | None = None


class Gateway(KubeObject):
    metadata: SubdomainMeta
    spec: GatewaySpec
    status: GatewayStatus | None = None


class ParentReference(KubeModel):
    name: str = Field(min_length=1)
    namespace: str | None = None
    sectionName: str | None = None
    port: Port | None = None
    kind: str | None = None
    group: str | None = None


class HTTPBackendRef(KubeModel):
    name: str = Field(min_length=1)
    namespace: str | None = None
    port: Port
    weight: int | None = Field(default=None, ge=0, le=1_000_000)
    kind: str | None = None
    group: str | None = None


class HTTPRouteRule(KubeModel):
    backendRefs: list[HTTPBackendRef] | None = None


class HTTPRouteSpec(KubeModel):
    parentRefs: list[ParentReference] | None = None
    hostnames: list[str] | None = None
    rules: list[HTTPRouteRule] | None = None


class RouteParentStatus(KubeModel):
    parentRef: ParentReference
    controllerName: str
    conditions: list[Condition] | None = None


class HTTPRouteStatus(KubeModel):
    parents: list[RouteParentStatus] = Field(default_factory=list)


class HTTPRoute(KubeObject):
    metadata: SubdomainMeta
    spec: HTTPRouteSpec
    status: HTTPRouteStatus | None = None
