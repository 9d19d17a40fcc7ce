"""The ingress proxy's route table, from Ingresses and Gateway API HTTPRoutes.

`route_table` is pure: it reads the objects as the API serves them (plain
JSON) and gives the table (agent.protocol.ingress.RouteTableWire), the Warning
events to record, and each HTTPRoute's `status.parents` entries for the
parents this controller owns.

Ingress (networking.k8s.io/v1) is read as ingress-nginx read it: every host is
served on port 80 and 443; a host in the Ingress' `tls` section gets the
Secret's certificate on 443 and a redirect to HTTPS on 80 (a bad Secret leaves
the proxy's fallback certificate); `defaultBackend` serves the Ingress' hosts'
unmatched paths and, for the oldest Ingress that has one, every other host
(""). A backend that cannot be resolved keeps its path, with no servers (503),
so that its requests do not fall through to a shorter path.

Gateway API (gateway.networking.k8s.io/v1): Gateways of a GatewayClass whose
controllerName is GATEWAY_CONTROLLER; their HTTP and HTTPS (Terminate)
listeners; HTTPRoutes attached to them, with hostnames intersected with the
listeners', path and exact header matches, weighted backendRefs and
RequestHeaderModifier filters. A wildcard hostname left after the
intersection is served as the wire's wildcard, which matches one label where
the Gateway API's matches one or more: "*.example.com" serves "a.example.com",
not "a.b.example.com".

When two sources give the same match on one host, the first wins: Ingresses
before HTTPRoutes, each oldest first, then by namespace/name.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from agent.protocol.ingress import (
    HTTP_PORT,
    HTTPS_PORT,
    MAX_WEIGHT,
    BackendWire,
    CertificateWire,
    FrontendWire,
    HeaderWire,
    HostWire,
    PathType,
    RouteTableWire,
    RouteWire,
    ServerWire,
)
from agent.protocol.services import EndpointWire
from control.nodes.servicetable import slice_endpoints
from control.objects import Obj
from control.objects.discovery import LABEL_SERVICE_NAME
from control.objects.networking import is_default_class
from control.objects.routes import (
    DEFAULT_MATCH,
    backend_weights,
    httproute_route_name,
    ingress_default_route_name,
    ingress_route_name,
    normalise_weights,
)

CLASS_NAME = "pilothouse"
GATEWAY_CONTROLLER = "pilothouse.io/gateway-controller"
GATEWAY_GROUP = "gateway.networking.k8s.io"
TLS_SECRET_TYPE = "kubernetes.io/tls"

Key = tuple[str, str]  # (namespace, name)
Problem = tuple[str, str]  # (reason, message)


@dataclass(frozen=True)
class RouteWarning:
    """One Warning event to record on an object."""

    kind: str  # Ingress, Gateway or HTTPRoute
    key: str  # namespace/name
    reason: str
    message: str


@dataclass
class RouteResult:
    table: RouteTableWire
    warnings: list[RouteWarning]
    route_parents: dict[str, list[Obj]]  # HTTPRoute namespace/name -> status.parents


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _key(obj: Obj) -> Key:
    meta = _meta(obj)
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _age_order(objs: Iterable[Obj]) -> list[Obj]:
    """Oldest first, then by namespace/name: who wins a conflict."""
    return sorted(objs, key=lambda o: (str(_meta(o).get("creationTimestamp") or ""), _key(o)))


# --- certificates ---------------------------------------------------------------------


def certificate_pem(secret: Obj) -> str:
    """The chain and key of a kubernetes.io/tls Secret, as one PEM text.

    Raises ValueError naming what is wrong."""
    if secret.get("type") != TLS_SECRET_TYPE:
        raise ValueError(f"type is {secret.get('type')!r}, not {TLS_SECRET_TYPE}")
    data = secret.get("data") or {}
    raw: dict[str, bytes] = {}
    for name in ("tls.crt", "tls.key"):
        if not data.get(name):
            raise ValueError(f"data.{name} is missing")
        try:
            raw[name] = base64.b64decode(str(data[name]), validate=True)
        except binascii.Error as e:
            raise ValueError(f"data.{name} is not base64") from e
    try:
        chain = x509.load_pem_x509_certificates(raw["tls.crt"])
    except ValueError as e:
        raise ValueError("data.tls.crt holds no PEM certificate") from e
    try:
        key = serialization.load_pem_private_key(raw["tls.key"], password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ValueError("data.tls.key is not an unencrypted PEM private key") from e
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if chain[0].public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise ValueError("data.tls.key does not match the certificate in data.tls.crt")
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    pem += key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode()


# --- services -------------------------------------------------------------------------


class _Services:
    """Services and their ready endpoints, to resolve backends."""

    def __init__(self, services: Iterable[Obj], slices: Iterable[Obj]) -> None:
        self.services = {_key(s): s for s in services}
        grouped: dict[Key, list[Obj]] = {}
        for eps in slices:
            owner = (_meta(eps).get("labels") or {}).get(LABEL_SERVICE_NAME)
            if owner:
                grouped.setdefault((_key(eps)[0], str(owner)), []).append(eps)
        self.endpoints: dict[Key, list[EndpointWire]] = {
            k: slice_endpoints(v) for k, v in grouped.items()
        }

    def backend(
        self, namespace: str, name: str, port: int | str, weight: int
    ) -> tuple[BackendWire, Problem | None]:
        """The backend for a Service port (number or name); with no servers and
        a problem when the Service or its port is not there."""
        empty: BackendWire = {"name": f"{namespace}/{name}:{port}", "weight": weight, "servers": []}
        service = self.services.get((namespace, name))
        if service is None:
            return empty, ("BackendNotFound", f"Service {namespace}/{name} not found")
        for sp in (service.get("spec") or {}).get("ports") or []:
            if sp.get("name") == port if isinstance(port, str) else sp.get("port") == port:
                break
        else:
            return empty, ("BackendNotFound", f"Service {namespace}/{name} has no port {port}")
        port_name = str(sp.get("name") or "")
        servers: list[ServerWire] = [
            {"ip": e["ip"], "port": e["ports"][port_name]}
            for e in self.endpoints.get((namespace, name), [])
            if e["ready"] and port_name in e["ports"]
        ]
        return {
            "name": f"{namespace}/{name}:{sp['port']}",
            "weight": weight,
            "servers": servers,
        }, None


# --- the table being built ------------------------------------------------------------


@dataclass
class _Host:
    redirect: bool = False
    certificate: str | None = None
    routes: list[RouteWire] = field(default_factory=list)
    owners: dict[tuple[object, ...], str] = field(default_factory=dict)  # match -> source


@dataclass
class _Frontend:
    tls: bool
    hosts: dict[str, _Host] = field(default_factory=dict)


def _match_key(route: RouteWire) -> tuple[object, ...]:
    headers = frozenset((h["name"].lower(), h["value"]) for h in route["headers"])
    return route["pathType"], route["path"], headers


def _host_order(host: str) -> tuple[int, int, str]:
    if not host:
        return 2, 0, ""
    if host.startswith("*."):
        return 1, -len(host), host
    return 0, 0, host


def _route_order(route: RouteWire) -> tuple[int, int, int]:
    return route["pathType"] != "Exact", -len(route["path"]), -len(route["headers"])


class _Builder:
    def __init__(self, secrets: Iterable[Obj]) -> None:
        self.frontends = {HTTP_PORT: _Frontend(tls=False), HTTPS_PORT: _Frontend(tls=True)}
        self.secrets = {_key(s): s for s in secrets}
        self.pems: dict[Key, str | Problem] = {}
        self.certificates: dict[str, str] = {}  # name -> PEM, of the good Secrets
        self.warnings: list[RouteWarning] = []

    def warn(self, kind: str, key: Key, problem: Problem) -> None:
        self.warnings.append(RouteWarning(kind, f"{key[0]}/{key[1]}", *problem))

    def certificate(self, kind: str, owner: Key, secret: Key) -> str | None:
        """The certificate name for a Secret, or None (and a warning)."""
        if secret not in self.pems:
            obj = self.secrets.get(secret)
            if obj is None:
                self.pems[secret] = ("SecretNotFound", f"Secret {secret[0]}/{secret[1]} not found")
            else:
                try:
                    self.pems[secret] = certificate_pem(obj)
                except ValueError as e:
                    self.pems[secret] = (
                        "InvalidCertificate",
                        f"Secret {secret[0]}/{secret[1]}: {e}",
                    )
        pem = self.pems[secret]
        if isinstance(pem, tuple):
            self.warn(kind, owner, pem)
            return None
        name = f"{secret[0]}/{secret[1]}"
        self.certificates[name] = pem
        return name

    def host(self, port: int, host: str) -> _Host:
        return self.frontends[port].hosts.setdefault(host, _Host())

    def add(
        self, port: int, host: str, route: RouteWire, source: tuple[str, Key], quiet: bool = False
    ) -> None:
        """Add a route unless an earlier source has its match on this host."""
        entry, match = self.host(port, host), _match_key(route)
        owner = f"{source[0]} {source[1][0]}/{source[1][1]}"
        first = entry.owners.setdefault(match, owner)
        if first != owner:
            if not quiet:
                where = f"{route['pathType']} {route['path']} on {host or '*'}"
                self.warn(*source, ("DuplicatePath", f"{where} is already routed by {first}"))
        elif match not in {_match_key(r) for r in entry.routes}:
            entry.routes.append(route)  # (a source may give one match twice: two listeners)

    def table(self, generation: int) -> RouteTableWire:
        frontends: list[FrontendWire] = []
        for port in sorted(self.frontends):
            front = self.frontends[port]
            hosts: list[HostWire] = [
                {
                    "host": name,
                    "redirectToHTTPS": host.redirect and not front.tls,
                    "certificate": host.certificate if front.tls else None,
                    "routes": sorted(host.routes, key=_route_order),
                }
                for name, host in sorted(front.hosts.items(), key=lambda h: _host_order(h[0]))
            ]
            frontends.append({"port": port, "tls": front.tls, "hosts": hosts})
        used = {h["certificate"] for f in frontends for h in f["hosts"] if h["certificate"]}
        certificates: list[CertificateWire] = [
            {"name": name, "pem": self.certificates[name]} for name in sorted(used)
        ]
        return {"generation": generation, "frontends": frontends, "certificates": certificates}


def _route(name: str, path: str, path_type: PathType, backends: list[BackendWire]) -> RouteWire:
    return {
        "name": name,
        "path": path,
        "pathType": path_type,
        "headers": [],
        "setHeaders": [],
        "addHeaders": [],
        "removeHeaders": [],
        "backends": backends,
    }


# --- Ingress --------------------------------------------------------------------------


def serves_ingress(ingress: Obj, ingress_classes: Iterable[Obj], class_name: str) -> bool:
    """Whether the Ingress is of class `class_name`, named or by default."""
    named = (ingress.get("spec") or {}).get("ingressClassName")
    if named:
        return bool(named == class_name)
    return any(_meta(c).get("name") == class_name and is_default_class(c) for c in ingress_classes)


def _ingress_backend(
    b: _Builder, services: _Services, key: Key, backend: Obj | None
) -> BackendWire | None:
    service = (backend or {}).get("service")
    if not service:
        b.warn("Ingress", key, ("UnsupportedBackend", "only Service backends are supported"))
        return None
    port = service.get("port") or {}
    wanted: int | str = int(port["number"]) if port.get("number") else str(port.get("name") or "")
    wire, problem = services.backend(key[0], str(service.get("name") or ""), wanted, MAX_WEIGHT)
    if problem:
        b.warn("Ingress", key, problem)
    return wire


def _add_ingress(b: _Builder, services: _Services, ingress: Obj) -> None:
    key, spec = _key(ingress), ingress.get("spec") or {}
    source = ("Ingress", key)
    tls_hosts: dict[str, str | None] = {}
    for entry in spec.get("tls") or []:
        for host in entry.get("hosts") or []:
            if host not in tls_hosts:
                secret = entry.get("secretName")
                tls_hosts[host] = (
                    b.certificate("Ingress", key, (key[0], str(secret))) if secret else None
                )

    def add(host: str, route: RouteWire, quiet: bool = False) -> None:
        for port in (HTTP_PORT, HTTPS_PORT):
            entry = b.host(port, host)
            if host in tls_hosts:
                entry.redirect = True
                entry.certificate = entry.certificate or tls_hosts[host]
            b.add(port, host, route, source, quiet)

    hosts: list[str] = []
    for r, rule in enumerate(spec.get("rules") or []):
        host = str(rule.get("host") or "")
        hosts.append(host)
        for p, path in enumerate((rule.get("http") or {}).get("paths") or []):
            value = str(path.get("path") or "/")
            if not value.startswith("/"):
                b.warn("Ingress", key, ("InvalidPath", f"path {value!r} must start with '/'"))
                continue
            backend = _ingress_backend(b, services, key, path.get("backend"))
            if backend is not None:
                path_type: PathType = "Exact" if path.get("pathType") == "Exact" else "Prefix"
                add(host, _route(ingress_route_name(*key, r, p), value, path_type, [backend]))
    if spec.get("defaultBackend"):
        backend = _ingress_backend(b, services, key, spec["defaultBackend"])
        if backend is not None:
            route = _route(ingress_default_route_name(*key), "/", "Prefix", [backend])
            for host in dict.fromkeys(hosts):
                if host:
                    add(host, route, quiet=True)
            add("", route)
    if not spec.get("rules") and not spec.get("defaultBackend"):
        b.warn("Ingress", key, ("NoRules", "the Ingress has no rules and no defaultBackend"))


# --- Gateway API ----------------------------------------------------------------------


@dataclass
class _Listener:
    name: str
    port: int
    hostname: str
    usable: bool  # an HTTP or HTTPS (Terminate) listener this proxy serves
    allowed: Obj  # spec.listeners[].allowedRoutes
    certificate: str | None

    def allows(self, route_namespace: str, gateway_namespace: str) -> bool:
        kinds = self.allowed.get("kinds")
        if kinds and not any(
            k.get("kind") == "HTTPRoute" and (k.get("group") or GATEWAY_GROUP) == GATEWAY_GROUP
            for k in kinds
        ):
            return False
        origin = (self.allowed.get("namespaces") or {}).get("from") or "Same"
        return origin == "All" or (origin == "Same" and route_namespace == gateway_namespace)


_Gateway = list[_Listener]


def _listeners(b: _Builder, gateway: Obj) -> list[_Listener]:
    key, out = _key(gateway), []
    for listener in (gateway.get("spec") or {}).get("listeners") or []:
        name, port = str(listener.get("name") or ""), int(listener.get("port") or 0)
        protocol, tls = listener.get("protocol"), listener.get("tls") or {}
        usable, certificate = protocol in ("HTTP", "HTTPS"), None
        if not usable:
            b.warn("Gateway", key, ("UnsupportedProtocol", f"listener {name}: {protocol}"))
        elif protocol == "HTTPS" and (tls.get("mode") or "Terminate") != "Terminate":
            b.warn("Gateway", key, ("UnsupportedMode", f"listener {name}: TLS {tls.get('mode')}"))
            usable = False
        elif port in b.frontends and b.frontends[port].tls != (protocol == "HTTPS"):
            b.warn("Gateway", key, ("PortConflict", f"listener {name}: port {port} is in use"))
            usable = False
        if usable:
            b.frontends.setdefault(port, _Frontend(tls=protocol == "HTTPS"))
        if usable and protocol == "HTTPS":
            certificate = _listener_certificate(b, key, name, tls.get("certificateRefs") or [])
        allowed = listener.get("allowedRoutes") or {}
        hostname = str(listener.get("hostname") or "")
        out.append(_Listener(name, port, hostname, usable, allowed, certificate))
    return out


def _listener_certificate(b: _Builder, key: Key, listener: str, refs: list[Obj]) -> str | None:
    if not refs:
        b.warn(
            "Gateway", key, ("InvalidCertificateRef", f"listener {listener}: no certificateRefs")
        )
        return None
    ref = refs[0]
    if (ref.get("group") or "") != "" or (ref.get("kind") or "Secret") != "Secret":
        message = f"listener {listener}: certificateRefs must name a Secret"
        b.warn("Gateway", key, ("InvalidCertificateRef", message))
        return None
    if (ref.get("namespace") or key[0]) != key[0]:
        message = f"listener {listener}: a Secret in another namespace needs a ReferenceGrant"
        b.warn("Gateway", key, ("RefNotPermitted", message))
        return None
    return b.certificate("Gateway", key, (key[0], str(ref.get("name") or "")))


def _wildcard_covers(wildcard: str, host: str) -> bool:
    """Gateway API wildcards: "*.example.com" covers one or more labels."""
    suffix = wildcard[1:]
    return host.endswith(suffix) and len(host) > len(suffix)


def intersect_hostnames(listener: str, route: list[str]) -> list[str]:
    """The hostnames a route serves on a listener, per the Gateway API."""
    if not route:
        return [listener]
    if not listener:
        return list(dict.fromkeys(route))
    out: list[str] = []
    for host in route:
        if host == listener or (listener.startswith("*.") and _wildcard_covers(listener, host)):
            out.append(host)
        elif host.startswith("*.") and _wildcard_covers(host, listener):
            out.append(listener)
    return list(dict.fromkeys(out))


def condition(type_: str, problem: Problem | None, ok: str, generation: Any) -> Obj:
    """A Gateway API status condition: True with reason `ok`, or False with
    the problem's reason and message."""
    reason, message = problem or (ok, "")
    return {
        "type": type_,
        "status": "False" if problem else "True",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def _rule_backends(
    services: _Services, namespace: str, refs: list[Obj]
) -> tuple[list[BackendWire], Problem | None]:
    weights = normalise_weights(backend_weights(refs))
    backends, first_problem = [], None
    for ref, weight in zip(refs, weights, strict=True):
        ref_namespace = str(ref.get("namespace") or namespace)
        name, port = str(ref.get("name") or ""), ref.get("port")
        wire: BackendWire = {
            "name": f"{ref_namespace}/{name}:{port}",
            "weight": weight,
            "servers": [],
        }
        problem: Problem | None = None
        if (ref.get("group") or "") != "" or (ref.get("kind") or "Service") != "Service":
            problem = ("InvalidKind", f"{ref.get('kind')} {name}: only Services are supported")
        elif ref_namespace != namespace:
            problem = ("RefNotPermitted", f"Service {ref_namespace}/{name} needs a ReferenceGrant")
        elif not isinstance(port, int):
            problem = ("BackendNotFound", f"Service {ref_namespace}/{name}: port is required")
        else:
            wire, problem = services.backend(ref_namespace, name, port, weight)
        backends.append(wire)
        first_problem = first_problem or problem
    return backends, first_problem


def _header_modifier(
    filters: list[Obj],
) -> tuple[list[HeaderWire], list[HeaderWire], list[str], str | None]:
    """A rule's RequestHeaderModifier set, add and remove, and the first
    unsupported filter type."""
    set_: list[HeaderWire] = []
    add: list[HeaderWire] = []
    remove: list[str] = []
    for f in filters:
        if f.get("type") != "RequestHeaderModifier":
            return set_, add, remove, str(f.get("type"))
        modifier = f.get("requestHeaderModifier") or {}
        set_ += [
            {"name": str(h["name"]), "value": str(h["value"])} for h in modifier.get("set") or []
        ]
        add += [
            {"name": str(h["name"]), "value": str(h["value"])} for h in modifier.get("add") or []
        ]
        remove += [str(h) for h in modifier.get("remove") or []]
    return set_, add, remove, None


def _match_route(name: str, match: Obj) -> tuple[RouteWire | None, str]:
    path = match.get("path") or {}
    kinds: dict[str, PathType] = {"PathPrefix": "Prefix", "Exact": "Exact"}
    path_type = kinds.get(str(path.get("type") or "PathPrefix"))
    if path_type is None:
        return None, f"path type {path.get('type')}"
    if match.get("method") or match.get("queryParams"):
        return None, "method and query parameter matches"
    route = _route(name, str(path.get("value") or "/"), path_type, [])
    seen: set[str] = set()
    for header in match.get("headers") or []:
        if (header.get("type") or "Exact") != "Exact":
            return None, f"header match type {header.get('type')}"
        name, value = str(header.get("name") or ""), str(header.get("value") or "")
        if name.lower() not in seen:  # the first of equal names counts
            seen.add(name.lower())
            route["headers"].append({"name": name, "value": value})
    return route, ""


def _httproute_routes(
    b: _Builder, services: _Services, httproute: Obj
) -> tuple[list[RouteWire], Problem | None]:
    """The wire routes of an HTTPRoute's rules (without hosts), and the first
    unresolved backend reference."""
    key, spec = _key(httproute), httproute.get("spec") or {}
    routes, refs_problem = [], None
    for r, rule in enumerate(spec.get("rules") or [{}]):
        set_, add, remove, unsupported = _header_modifier(rule.get("filters") or [])
        if unsupported:
            b.warn("HTTPRoute", key, ("UnsupportedFilter", f"rule {r}: filter {unsupported}"))
            continue
        backends, problem = _rule_backends(services, key[0], rule.get("backendRefs") or [])
        refs_problem = refs_problem or problem
        for m, match in enumerate(rule.get("matches") or [DEFAULT_MATCH]):
            route, why = _match_route(httproute_route_name(*key, r, m), match)
            if route is None:
                b.warn("HTTPRoute", key, ("UnsupportedMatch", f"rule {r} match {m}: {why}"))
                continue
            route["setHeaders"], route["addHeaders"], route["removeHeaders"] = set_, add, remove
            route["backends"] = backends
            routes.append(route)
    return routes, refs_problem


def _parent_gateway(gateways: dict[Key, _Gateway], namespace: str, parent: Obj) -> Key | None:
    """The Gateway of this controller that a parentRef names, if any."""
    if (parent.get("group") or GATEWAY_GROUP) != GATEWAY_GROUP:
        return None
    if (parent.get("kind") or "Gateway") != "Gateway":
        return None
    key = (str(parent.get("namespace") or namespace), str(parent.get("name") or ""))
    return key if key in gateways else None


def _attach(
    b: _Builder,
    gateways: dict[Key, _Gateway],
    gateway_key: Key,
    httproute: Obj,
    parent: Obj,
    routes: list[RouteWire],
) -> Problem | None:
    """Attach the routes to the parent Gateway's listeners; why not (Accepted
    False), or None."""
    key = _key(httproute)
    listeners = gateways[gateway_key]
    section, port = parent.get("sectionName"), parent.get("port")
    listeners = [ls for ls in listeners if section in (None, ls.name) and port in (None, ls.port)]
    if not listeners:
        return "NoMatchingParent", "no listener matches sectionName and port"
    allowed = [ls for ls in listeners if ls.usable and ls.allows(key[0], gateway_key[0])]
    if not allowed:
        return "NotAllowedByListeners", "no listener allows this route"
    hostnames = [str(h) for h in (httproute.get("spec") or {}).get("hostnames") or []]
    attached = [(ls, h) for ls in allowed for h in intersect_hostnames(ls.hostname, hostnames)]
    if not attached:
        return "NoMatchingListenerHostname", "no hostname matches a listener's hostname"
    for listener, host in attached:
        entry = b.host(listener.port, host)
        entry.certificate = entry.certificate or listener.certificate
        for route in routes:
            b.add(listener.port, host, route, ("HTTPRoute", key))
    return None


def _add_httproute(
    b: _Builder,
    services: _Services,
    gateways: dict[Key, _Gateway],
    httproute: Obj,
) -> list[Obj]:
    routes, refs_problem = _httproute_routes(b, services, httproute)
    generation = _meta(httproute).get("generation")
    parents = []
    for parent in (httproute.get("spec") or {}).get("parentRefs") or []:
        gateway_key = _parent_gateway(gateways, _key(httproute)[0], parent)
        if gateway_key is None:
            continue  # not this controller's to report on
        problem = _attach(b, gateways, gateway_key, httproute, parent, routes)
        parents.append(
            {
                "parentRef": parent,
                "controllerName": GATEWAY_CONTROLLER,
                "conditions": [
                    condition("Accepted", problem, "Accepted", generation),
                    condition("ResolvedRefs", refs_problem, "ResolvedRefs", generation),
                ],
            }
        )
    return parents


# --- the whole table ------------------------------------------------------------------


def route_table(
    ingresses: Iterable[Obj],
    ingress_classes: Iterable[Obj],
    gateways: Iterable[Obj],
    httproutes: Iterable[Obj],
    services: Iterable[Obj],
    slices: Iterable[Obj],
    secrets: Iterable[Obj],
    *,
    class_name: str = CLASS_NAME,
    generation: int,
    gateway_classes: Iterable[Obj] = (),
) -> RouteResult:
    """The route table of the Ingresses of class `class_name` and the HTTPRoutes
    attached to Gateways of this controller's GatewayClasses."""
    b, resolver = _Builder(secrets), _Services(services, slices)
    classes = list(ingress_classes)
    for ingress in _age_order(i for i in ingresses if serves_ingress(i, classes, class_name)):
        _add_ingress(b, resolver, ingress)
    ours = {
        _meta(c).get("name")
        for c in gateway_classes
        if (c.get("spec") or {}).get("controllerName") == GATEWAY_CONTROLLER
    }
    attached: dict[Key, _Gateway] = {}
    for gateway in _age_order(gateways):
        if (gateway.get("spec") or {}).get("gatewayClassName") in ours:
            attached[_key(gateway)] = _listeners(b, gateway)
    statuses: dict[str, list[Obj]] = {}
    for httproute in _age_order(httproutes):
        parents = _add_httproute(b, resolver, attached, httproute)
        if parents:
            namespace, name = _key(httproute)
            statuses[f"{namespace}/{name}"] = parents
    return RouteResult(b.table(generation), list(dict.fromkeys(b.warnings)), statuses)
