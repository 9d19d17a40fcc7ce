"""The ingress route table on the wire: what the control plane sends the ingress
proxy so that it serves Ingresses and Gateway API HTTPRoutes.

One request, control -> agent: `ingress_sync` (IngressSyncParams) replaces the
whole table; the agent answers IngressSyncResult (the table's generation) once
the proxy serves it, or an error whose message is the proxy's check message.
`ingress_stats` (no params) answers IngressStatsResult: per route name, its
request counts and the 99th percentile of its response times over the last
10 seconds (None: no request in that time); no routes before the first sync.

The table is plain JSON and already ordered, so the proxy tries things in the
order given and the first match wins:

- frontends by port (80 HTTP, 443 HTTPS; Gateway listeners may add others);
- a frontend's hosts: exact names first, then wildcards ("*.example.com",
  matching exactly one label: "bar.example.com", not "example.com" nor
  "a.bar.example.com"), then "" (any host);
- a host's routes: Exact before Prefix, longer paths first, more header
  matches first. A Prefix path matches whole path elements and ignores a
  trailing slash ("/api" matches "/api", "/api/" and "/api/x", not "/apiv2");
  an Exact path matches only itself. Header matches are exact values, names
  case-insensitive, and all must match;
- a route's backends share its traffic by weight (0..1000, summing to 1000
  unless every weight is 0). A route with no backend of weight > 0 answers 500;
  a chosen backend with no servers answers 503.

`select_route` is the reference for these rules: the proxy must route as it
does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypedDict

INGRESS_SYNC = "ingress_sync"
INGRESS_STATS = "ingress_stats"
HTTP_PORT = 80
HTTPS_PORT = 443
MAX_WEIGHT = 1000

PathType = Literal["Exact", "Prefix"]


class HeaderWire(TypedDict):
    name: str
    value: str


class ServerWire(TypedDict):
    ip: str  # a ready endpoint of the Service (a pod IP)
    port: int  # the endpoint's target port


class BackendWire(TypedDict):
    name: str  # "ns/svc:port", the Service port number
    weight: int  # 0..MAX_WEIGHT
    servers: list[ServerWire]  # by IP


class RouteWire(TypedDict):
    name: str  # stable id: "ing/ns/name/<rule>/<path>", "httproute/ns/name/<rule>/<match>"
    path: str
    pathType: PathType
    headers: list[HeaderWire]  # exact matches, all must match
    setHeaders: list[HeaderWire]  # request headers replaced
    addHeaders: list[HeaderWire]  # request headers appended
    removeHeaders: list[str]  # request headers removed
    backends: list[BackendWire]


class HostWire(TypedDict):
    host: str  # "" = any host
    redirectToHTTPS: bool  # HTTP frontends only: answer a redirect to https
    certificate: str | None  # a CertificateWire name (TLS frontends); None: the fallback one
    routes: list[RouteWire]


class FrontendWire(TypedDict):
    port: int
    tls: bool
    hosts: list[HostWire]


class CertificateWire(TypedDict):
    name: str  # "ns/secret"
    pem: str  # certificate chain, then private key, as HAProxy's crt file


class RouteTableWire(TypedDict):
    generation: int
    frontends: list[FrontendWire]
    certificates: list[CertificateWire]


class IngressSyncParams(TypedDict):
    table: RouteTableWire


class IngressSyncResult(TypedDict):
    generation: int  # the table's: the proxy serves it


class RouteStatsWire(TypedDict):
    requests: int  # since the proxy (re)started
    requestsPerSecond: float  # over the last second
    http5xx: int  # since the proxy (re)started
    p99Ms: float | None  # over the last 10 seconds; None: no request then


class IngressStatsResult(TypedDict):
    routes: dict[str, RouteStatsWire]  # by RouteWire name


# --- the reference matcher ------------------------------------------------------------


def host_matches(pattern: str, host: str) -> bool:
    """Whether a request for `host` (lower case, no port) matches a HostWire host."""
    if not pattern:
        return True
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return host == pattern


def path_matches(path_type: PathType, path: str, request_path: str) -> bool:
    if path_type == "Exact":
        return request_path == path
    prefix = path.rstrip("/")
    return not prefix or request_path == prefix or request_path.startswith(prefix + "/")


def _headers_match(wanted: list[HeaderWire], headers: Mapping[str, str]) -> bool:
    given = {k.lower(): v for k, v in headers.items()}
    return all(given.get(h["name"].lower()) == h["value"] for h in wanted)


def select_host(frontend: FrontendWire, host: str) -> HostWire | None:
    """The first of the frontend's hosts that `host` matches (they come in order)."""
    return next((h for h in frontend["hosts"] if host_matches(h["host"], host)), None)


def select_route(
    table: RouteTableWire,
    port: int,
    host: str,
    path: str,
    headers: Mapping[str, str] | None = None,
) -> RouteWire | None:
    """The route a request to `port` for `host` and `path` takes; None: 404."""
    frontend = next((f for f in table["frontends"] if f["port"] == port), None)
    chosen = select_host(frontend, host.lower()) if frontend else None
    if chosen is None:
        return None
    for route in chosen["routes"]:
        if path_matches(route["pathType"], route["path"], path) and _headers_match(
            route["headers"], headers or {}
        ):
            return route
    return None
