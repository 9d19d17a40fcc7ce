"""The ingress route table a node's proxy serves, parsed from its wire form
(agent.protocol.ingress) and checked field by field: the HAProxy configuration
is rendered from these values, so nothing unchecked reaches it."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.protocol.ingress import PathType

MAX_WEIGHT = 1000

# What HAProxy and HTTP accept: RFC 9110 tokens for header names, printable
# characters for values and paths.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_HOST_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class RouteTableError(ValueError):
    """A route table that cannot be used; the text names the field."""


@dataclass(frozen=True, slots=True)
class Server:
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class Backend:
    name: str  # "ns/svc:port"
    weight: int
    servers: tuple[Server, ...]


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    path: str
    path_type: PathType
    headers: tuple[Header, ...] = ()
    set_headers: tuple[Header, ...] = ()
    add_headers: tuple[Header, ...] = ()
    remove_headers: tuple[str, ...] = ()
    backends: tuple[Backend, ...] = ()


@dataclass(frozen=True, slots=True)
class Host:
    host: str  # "" any, "*.example.com" one label
    routes: tuple[Route, ...]
    redirect_to_https: bool = False
    certificate: str | None = None


@dataclass(frozen=True, slots=True)
class Frontend:
    port: int
    tls: bool
    hosts: tuple[Host, ...]


@dataclass(frozen=True, slots=True)
class Certificate:
    name: str
    pem: str


@dataclass(frozen=True, slots=True)
class RouteTable:
    generation: int
    frontends: tuple[Frontend, ...] = ()
    certificates: tuple[Certificate, ...] = ()


def parse_route_table(obj: Any) -> RouteTable:
    """A `RouteTableWire` as a RouteTable; RouteTableError names the bad field."""
    where = "table"
    _object(obj, where)
    generation = obj.get("generation")
    if not _is_int(generation) or generation < 0:
        raise RouteTableError(f"{where}.generation: must be a non-negative integer")
    certificates = tuple(
        _certificate(c, f"{where}.certificates[{i}]")
        for i, c in enumerate(_list(obj.get("certificates"), f"{where}.certificates"))
    )
    names = [c.name for c in certificates]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise RouteTableError(f"{where}.certificates[{i}].name: duplicate {name!r}")
    frontends = tuple(
        _frontend(f, f"{where}.frontends[{i}]", set(names))
        for i, f in enumerate(_list(obj.get("frontends"), f"{where}.frontends"))
    )
    ports = [f.port for f in frontends]
    for i, port in enumerate(ports):
        if port in ports[:i]:
            raise RouteTableError(f"{where}.frontends[{i}].port: duplicate {port}")
    return RouteTable(generation=generation, frontends=frontends, certificates=certificates)


def _frontend(obj: Any, where: str, certificates: set[str]) -> Frontend:
    _object(obj, where)
    port = _port(obj.get("port"), f"{where}.port")
    tls = _bool(obj.get("tls"), f"{where}.tls")
    hosts = tuple(
        _host(h, f"{where}.hosts[{i}]", tls, certificates)
        for i, h in enumerate(_list(obj.get("hosts"), f"{where}.hosts"))
    )
    return Frontend(port=port, tls=tls, hosts=hosts)


def _host(obj: Any, where: str, tls: bool, certificates: set[str]) -> Host:
    _object(obj, where)
    host = _host_name(obj.get("host"), f"{where}.host")
    redirect = _bool(obj.get("redirectToHTTPS", False), f"{where}.redirectToHTTPS")
    certificate = obj.get("certificate")
    if certificate is not None:
        if not tls:
            raise RouteTableError(f"{where}.certificate: only on a TLS frontend")
        if certificate not in certificates:
            raise RouteTableError(f"{where}.certificate: no certificate named {certificate!r}")
    routes = tuple(
        _route(r, f"{where}.routes[{i}]")
        for i, r in enumerate(_list(obj.get("routes"), f"{where}.routes"))
    )
    return Host(host=host, routes=routes, redirect_to_https=redirect, certificate=certificate)


def _route(obj: Any, where: str) -> Route:
    _object(obj, where)
    name = obj.get("name")
    if not isinstance(name, str) or not name or not _PRINTABLE.fullmatch(name):
        raise RouteTableError(f"{where}.name: must be a non-empty printable string")
    where = f"{where} {name}"
    path_type = obj.get("pathType", "Prefix")
    if path_type == "ImplementationSpecific":
        path_type = "Prefix"
    if path_type not in ("Exact", "Prefix"):
        raise RouteTableError(f"{where}.pathType: must be Exact or Prefix, got {path_type!r}")
    path = obj.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/") or not _visible(path):
        raise RouteTableError(f"{where}.path: must start with / and have no spaces, got {path!r}")
    return Route(
        name=name,
        path=path,
        path_type=path_type,
        headers=_headers(obj.get("headers"), f"{where}.headers"),
        set_headers=_headers(obj.get("setHeaders"), f"{where}.setHeaders"),
        add_headers=_headers(obj.get("addHeaders"), f"{where}.addHeaders"),
        remove_headers=tuple(
            _header_name(n, f"{where}.removeHeaders[{i}]")
            for i, n in enumerate(_list(obj.get("removeHeaders"), f"{where}.removeHeaders"))
        ),
        backends=tuple(
            _backend(b, f"{where}.backends[{i}]")
            for i, b in enumerate(_list(obj.get("backends"), f"{where}.backends"))
        ),
    )


def _backend(obj: Any, where: str) -> Backend:
    _object(obj, where)
    name = obj.get("name")
    if not isinstance(name, str) or not name or not _visible(name):
        raise RouteTableError(f"{where}.name: must be a non-empty string without spaces")
    weight = obj.get("weight", 1)
    if not _is_int(weight) or not 0 <= weight <= MAX_WEIGHT:
        raise RouteTableError(f"{where}.weight: must be an integer from 0 to {MAX_WEIGHT}")
    servers = []
    for i, s in enumerate(_list(obj.get("servers"), f"{where}.servers")):
        at = f"{where}.servers[{i}]"
        _object(s, at)
        ip, port = _ipv4(s.get("ip"), f"{at}.ip"), _port(s.get("port"), f"{at}.port")
        servers.append(Server(ip=ip, port=port))
    return Backend(name=name, weight=weight, servers=tuple(servers))


def _certificate(obj: Any, where: str) -> Certificate:
    _object(obj, where)
    name = obj.get("name")
    if not isinstance(name, str) or not name or not _visible(name):
        raise RouteTableError(f"{where}.name: must be a non-empty string without spaces")
    pem = obj.get("pem")
    if not isinstance(pem, str) or "-----BEGIN" not in pem:
        raise RouteTableError(f"{where}.pem: must be PEM text (certificate chain and key)")
    return Certificate(name=name, pem=pem)


def _headers(value: Any, where: str) -> tuple[Header, ...]:
    out = []
    for i, h in enumerate(_list(value, where)):
        _object(h, f"{where}[{i}]")
        header_value = h.get("value")
        if not isinstance(header_value, str) or not _PRINTABLE.fullmatch(header_value):
            raise RouteTableError(f"{where}[{i}].value: must be a printable string")
        out.append(Header(_header_name(h.get("name"), f"{where}[{i}].name"), header_value))
    return tuple(out)


def _header_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise RouteTableError(f"{where}: must be an HTTP header name, got {value!r}")
    return value.lower()


def _host_name(value: Any, where: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise RouteTableError(f"{where}: must be a host name, got {value!r}")
    name = value.lower()
    labels = name.removeprefix("*.").split(".")
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise RouteTableError(f"{where}: must be a host name or *.domain, got {value!r}")
    return name


def _visible(text: str) -> bool:
    return bool(_PRINTABLE.fullmatch(text)) and " " not in text


def _object(value: Any, where: str) -> None:
    if not isinstance(value, Mapping):
        raise RouteTableError(f"{where}: must be an object")


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RouteTableError(f"{where}: must be a list")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise RouteTableError(f"{where}: must be true or false")
    return value


def _port(value: Any, where: str) -> int:
    if not _is_int(value) or not 1 <= value <= 65535:
        raise RouteTableError(f"{where}: must be a port number from 1 to 65535, got {value!r}")
    return int(value)


def _ipv4(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise RouteTableError(f"{where}: must be an IPv4 address, got {value!r}")
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise RouteTableError(f"{where}: must be an IPv4 address, got {value!r}") from None
