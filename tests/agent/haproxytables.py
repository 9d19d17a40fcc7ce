"""Route tables for the HAProxy tests, in their wire form (agent.protocol.ingress)."""

from __future__ import annotations

from agent.ingress.routetable import RouteTable, parse_route_table
from agent.protocol.ingress import (
    BackendWire,
    CertificateWire,
    FrontendWire,
    HeaderWire,
    HostWire,
    PathType,
    RouteWire,
)


def backend(name: str, *ports: int, weight: int = 1, ip: str = "127.0.0.1") -> BackendWire:
    return BackendWire(
        name=name, weight=weight, servers=[{"ip": ip, "port": port} for port in ports]
    )


def route(
    name: str,
    path: str,
    *backends: BackendWire,
    path_type: PathType = "Prefix",
    headers: list[HeaderWire] | None = None,
    set_headers: list[HeaderWire] | None = None,
    remove_headers: list[str] | None = None,
) -> RouteWire:
    return RouteWire(
        name=name,
        path=path,
        pathType=path_type,
        headers=headers or [],
        setHeaders=set_headers or [],
        addHeaders=[],
        removeHeaders=remove_headers or [],
        backends=list(backends),
    )


def host(
    name: str, *routes: RouteWire, redirect: bool = False, certificate: str | None = None
) -> HostWire:
    return HostWire(
        host=name, redirectToHTTPS=redirect, certificate=certificate, routes=list(routes)
    )


def frontend(port: int, *hosts: HostWire, tls: bool = False) -> FrontendWire:
    return FrontendWire(port=port, tls=tls, hosts=list(hosts))


def table(
    *frontends: FrontendWire,
    generation: int = 1,
    certificates: list[CertificateWire] | None = None,
) -> RouteTable:
    return parse_route_table(
        {
            "generation": generation,
            "frontends": list(frontends),
            "certificates": certificates or [],
        }
    )
