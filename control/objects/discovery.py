"""The `discovery.k8s.io/v1` kind: EndpointSlice, with Kubernetes' defaults and
validation, and the labels that tie a slice to its Service and controller."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import InitErrorDetails

from control.objects.core import Protocol
from control.objects.meta import (
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    INVALID,
    LABEL_RULE,
    SUBDOMAIN_RULE,
    DNSLabel,
    DNSSubdomain,
    KubeModel,
    KubeObject,
    ObjectReference,
    Port,
    SubdomainMeta,
    duplicate_names,
    error,
    field_error,
    raise_errors,
)

# The Service a slice belongs to, and who keeps it.
LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY_CONTROLLER = "endpointslice-controller.k8s.io"
# Set on the slices of a headless Service (clusterIP: None).
LABEL_HEADLESS = "service.kubernetes.io/headless"

AddressType = Literal["IPv4", "IPv6", "FQDN"]

MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000


def _label_or_empty(value: str) -> str:
    if value and (len(value) > 63 or not DNS1123_LABEL.fullmatch(value)):
        raise error(INVALID, f"must be a DNS-1123 label: {LABEL_RULE}")
    return value


class EndpointConditions(KubeModel):
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class ForZone(KubeModel):
    name: str


class EndpointHints(KubeModel):
    forZones: list[ForZone] | None = None


class Endpoint(KubeModel):
    addresses: list[str] = Field(min_length=1, max_length=MAX_ADDRESSES)
    conditions: EndpointConditions = Field(default_factory=EndpointConditions)
    hostname: DNSLabel | None = None
    targetRef: ObjectReference | None = None
    deprecatedTopology: dict[str, str] | None = None
    nodeName: DNSSubdomain | None = None
    zone: str | None = None
    hints: EndpointHints | None = None


class EndpointPort(KubeModel):
    name: Annotated[str, AfterValidator(_label_or_empty)] = ""
    protocol: Protocol = "TCP"
    port: Port | None = None
    appProtocol: str | None = None


def address_problem(address_type: str, address: str) -> str | None:
    """Why `address` is not one of `address_type`, or None."""
    if address_type == "FQDN":
        if len(address) > 253 or not DNS1123_SUBDOMAIN.fullmatch(address):
            return f"must be a DNS-1123 subdomain: {SUBDOMAIN_RULE}"
        return None
    version = 4 if address_type == "IPv4" else 6
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    if ip is None or ip.version != version:
        return f"must be a valid {address_type} address"
    return None


class EndpointSlice(KubeObject):
    metadata: SubdomainMeta
    addressType: AddressType
    # Always present, empty or not, as Kubernetes serves it (clients require it).
    endpoints: list[Endpoint] = Field(default_factory=list, max_length=MAX_ENDPOINTS)
    ports: list[EndpointPort] | None = Field(None, max_length=MAX_PORTS)

    @model_validator(mode="after")
    def _addresses_and_port_names(self) -> Self:
        errors: list[InitErrorDetails] = []
        for i, endpoint in enumerate(self.endpoints):
            for j, address in enumerate(endpoint.addresses):
                why = address_problem(self.addressType, address)
                if why:
                    loc = ("endpoints", i, "addresses", j)
                    errors.append(field_error(loc, INVALID, f'invalid value "{address}": {why}'))
        errors += duplicate_names("ports", (p.name for p in self.ports or ()))
        raise_errors("EndpointSlice", errors)
        return self
