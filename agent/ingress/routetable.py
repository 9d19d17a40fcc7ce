"""The ingress route table a node's proxy serves, parsed from its wire form
(agent.protocol.ingress) and checked field by field: the HAProxy configuration
is rendered from these values, so nothing unchecked reaches it."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from agent.protocol.ingress import PathType

MAX_WEIGHT = 1000

# What HAProxy and HTTP accept: RFC 9110 tokens for header names, printable
# characters for values and paths.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_NAME = re.compile(r"[\x20-\x7e]+")
_VISIBLE = re.compile(r"[\x21-\x7e]+")
_PATH = re.compile(r"/[\x21-\x7e]*")
_PEM = re.compile(r".*-----BEGIN .*", re.DOTALL)
_HOST_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class RouteTableError(ValueError):
    """A route table that cannot be used; the text names the field."""


class Server(NamedTuple):
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class Backend:
    name: str  # "ns/svc:port"
    weight: int
    servers: tuple[Server, ...]


class Header(NamedTuple):
    name: str
    value: str


class Certificate(NamedTuple):
    name: str
    pem: str


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
class RouteTable:
    generation: int
    frontends: tuple[Frontend, ...] = ()
    certificates: tuple[Certificate, ...] = ()


def parse_route_table(obj: Any) -> RouteTable:
    """A `RouteTableWire` as a RouteTable; RouteTableError names the bad field."""
    top = _Object(obj, "table")
    generation = top.integer("generation", 0, None)
    certificates = tuple(_certificate(c) for c in top.objects("certificates"))
    names = [c.name for c in certificates]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise top.fail(f"certificates[{i}].name", f"duplicate {name!r}")
    frontends = tuple(_frontend(f, set(names)) for f in top.objects("frontends"))
    ports = [f.port for f in frontends]
    for i, port in enumerate(ports):
        if port in ports[:i]:
            raise top.fail(f"frontends[{i}].port", f"duplicate {port}")
    return RouteTable(generation=generation, frontends=frontends, certificates=certificates)


def _frontend(obj: _Object, certificates: set[str]) -> Frontend:
    tls = obj.boolean("tls")
    hosts = tuple(_host(h, tls, certificates) for h in obj.objects("hosts"))
    return Frontend(port=obj.integer("port", 1, 65535), tls=tls, hosts=hosts)


def _host(obj: _Object, tls: bool, certificates: set[str]) -> Host:
    host = _host_name(obj, obj.value.get("host"))
    certificate = obj.value.get("certificate")
    if certificate is not None:
        if not tls:
            raise obj.fail("certificate", "only on a TLS frontend")
        if certificate not in certificates:
            raise obj.fail("certificate", f"no certificate named {certificate!r}")
    return Host(
        host=host,
        routes=tuple(_route(r) for r in obj.objects("routes")),
        redirect_to_https=obj.boolean("redirectToHTTPS", False),
        certificate=certificate,
    )


def _route(obj: _Object) -> Route:
    name = obj.text("name", _NAME, "a non-empty printable string")
    obj.where = f"{obj.where} {name}"
    path_type = obj.value.get("pathType", "Prefix")
    if path_type == "ImplementationSpecific":
        path_type = "Prefix"
    if path_type not in ("Exact", "Prefix"):
        raise obj.fail("pathType", f"must be Exact or Prefix, got {path_type!r}")
    path = obj.text("path", _PATH, "a path starting with / without spaces", "/")
    return Route(
        name=name,
        path=path,
        path_type=path_type,
        headers=_headers(obj, "headers"),
        set_headers=_headers(obj, "setHeaders"),
        add_headers=_headers(obj, "addHeaders"),
        remove_headers=tuple(_header_name(at, n) for at, n in obj.items("removeHeaders")),
        backends=tuple(_backend(b) for b in obj.objects("backends")),
    )


def _backend(obj: _Object) -> Backend:
    servers = tuple(
        Server(ip=_ipv4(s, s.value.get("ip")), port=s.integer("port", 1, 65535))
        for s in obj.objects("servers")
    )
    return Backend(
        name=obj.text("name", _VISIBLE, "a non-empty string without spaces"),
        weight=obj.integer("weight", 0, MAX_WEIGHT, 1),
        servers=servers,
    )


def _certificate(obj: _Object) -> Certificate:
    name = obj.text("name", _VISIBLE, "a non-empty string without spaces")
    pem = obj.text("pem", _PEM, "PEM text (certificate chain and key)")
    return Certificate(name=name, pem=pem)


def _headers(obj: _Object, key: str) -> tuple[Header, ...]:
    return tuple(
        Header(
            name=_header_name(f"{h.where}.name", h.value.get("name")),
            value=h.text("value", _PRINTABLE, "a printable string"),
        )
        for h in obj.objects(key)
    )


def _header_name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise RouteTableError(f"{where}: must be an HTTP header name, got {value!r}")
    return value.lower()


def _host_name(obj: _Object, value: Any) -> str:
    if value is None or value == "":
        return ""
    name = value.lower() if isinstance(value, str) else ""
    labels = name.removeprefix("*.").split(".")
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise obj.fail("host", f"must be a host name or *.domain, got {value!r}")
    return name


def _ipv4(obj: _Object, value: Any) -> str:
    try:
        if isinstance(value, str):
            return str(ipaddress.IPv4Address(value))
    except ValueError:
        pass
    raise obj.fail("ip", f"must be an IPv4 address, got {value!r}")


class _Object:
    """A JSON object of the table, and where it is (for the messages)."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, Mapping):
            raise RouteTableError(f"{where}: must be an object")
        self.value: Mapping[str, Any] = value
        self.where = where

    def fail(self, key: str, message: str) -> RouteTableError:
        return RouteTableError(f"{self.where}.{key}: {message}")

    def items(self, key: str) -> list[tuple[str, Any]]:
        """The items of a list field (absent: none), each with where it is."""
        value = self.value.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, "must be a list")
        return [(f"{self.where}.{key}[{i}]", item) for i, item in enumerate(value)]

    def objects(self, key: str) -> list[_Object]:
        return [_Object(item, at) for at, item in self.items(key)]

    def integer(self, key: str, low: int, high: int | None, default: int | None = None) -> int:
        value = self.value.get(key, default)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
        if not ok or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise self.fail(key, f"must be an integer {bounds}, got {value!r}")
        return int(value)

    def boolean(self, key: str, default: bool | None = None) -> bool:
        value = self.value.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def text(self, key: str, pattern: re.Pattern[str], what: str, default: str = "") -> str:
        value = self.value.get(key, default)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self.fail(key, f"must be {what}, got {value!r}")
        return value
