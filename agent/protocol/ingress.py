"""The ingress route table on the wire: what the control plane sends a node's
ingress proxy so that it routes HTTP(S) traffic to Services' endpoints.

One request, control -> agent: `ingress_sync` (IngressSyncParams), the whole
table. It answers IngressSyncResult (the table's generation) once the proxy
serves it; when the proxy refuses the table (the old one keeps serving) the
answer is an error whose message is the proxy's check message.

The shapes are plain JSON; the agent's parser (agent.ingress.routetable) checks
every field and names a bad one.
"""

from __future__ import annotations

from typing import Literal, TypedDict

INGRESS_SYNC = "ingress_sync"

PathType = Literal["Exact", "Prefix"]

__all__ = [
    "INGRESS_SYNC",
    "BackendWire",
    "CertificateWire",
    "FrontendWire",
    "HeaderWire",
    "HostWire",
    "IngressSyncParams",
    "IngressSyncResult",
    "PathType",
    "RouteTableWire",
    "RouteWire",
    "ServerWire",
]


class HeaderWire(TypedDict):
    name: str
    value: str


class ServerWire(TypedDict):
    ip: str  # a ready endpoint of the Service: the pod IP
    port: int  # and the target port


class BackendWire(TypedDict):
    name: str  # "ns/svc:port"
    weight: int  # 0..1000, relative to the route's other backends
    servers: list[ServerWire]


class RouteWire(TypedDict):
    name: str  # stable id, e.g. "ing/ns/name/0/1" or "httproute/ns/name/0"
    path: str
    pathType: PathType  # Prefix: whole path elements ("/api" matches "/api/x", not "/apiv2")
    headers: list[HeaderWire]  # exact matches, all must match
    setHeaders: list[HeaderWire]
    addHeaders: list[HeaderWire]
    removeHeaders: list[str]
    backends: list[BackendWire]


class HostWire(TypedDict):
    host: str  # "" = any host; "*.example.com" matches exactly one label
    redirectToHTTPS: bool
    certificate: str | None  # a CertificateWire name (TLS frontends only)
    routes: list[RouteWire]  # first match wins: Exact before Prefix, longer paths first,
    # more header matches first


class FrontendWire(TypedDict):
    port: int  # 80 = HTTP, 443 = HTTPS
    tls: bool
    hosts: list[HostWire]  # exact first, then wildcards, then ""


class CertificateWire(TypedDict):
    name: str  # "ns/secret"
    pem: str  # certificate chain and key, as HAProxy's crt file


class RouteTableWire(TypedDict):
    generation: int
    frontends: list[FrontendWire]
    certificates: list[CertificateWire]


class IngressSyncParams(TypedDict):
    table: RouteTableWire


class IngressSyncResult(TypedDict):
    generation: int  # the table's: the proxy serves it
