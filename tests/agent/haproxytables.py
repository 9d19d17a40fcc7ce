"""Route tables for the HAProxy tests, in their wire form (agent.protocol.ingress)."""

from __future__ import annotations

from agent.ingress.routetable import RouteTable, parse_route_table
from agent.protocol import ingress as wire


def backend(name: str, *ports: int, weight: int = 1, ip: str = "127.0.0.1") -> wire.BackendWire:
    return wire.BackendWire(
        name=name, weight=weight, servers=[{"ip": ip, "port": port} for port in ports]
    )


def route(
    name: str,
    path: str,
    *backends: wire.BackendWire,
    path_type: wire.PathType = "Prefix",
    headers: list[wire.HeaderWire] | None = None,
    set_headers: list[wire.HeaderWire] | None = None,
    remove_headers: list[str] | None = None,
) -> wire.RouteWire:
    return wire.RouteWire(
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
    name: str, *routes: wire.RouteWire, redirect: bool = False, certificate: str | None = None
) -> wire.HostWire:
    return wire.HostWire(
        host=name, redirectToHTTPS=redirect, certificate=certificate, routes=list(routes)
    )


def frontend(port: int, *hosts: wire.HostWire, tls: bool = False) -> wire.FrontendWire:
    return wire.FrontendWire(port=port, tls=tls, hosts=list(hosts))


def table(
    *frontends: wire.FrontendWire,
    generation: int = 1,
    certificates: list[wire.CertificateWire] | None = None,
) -> RouteTable:
    return parse_route_table(
        {
            "generation": generation,
            "frontends": list(frontends),
            "certificates": certificates or [],
        }
    )
