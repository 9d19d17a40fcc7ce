"""A route table as a haproxy.cfg (HAProxy 2.6).

Every route gets its own HAProxy backend, whose servers are all the route's
endpoints, each weighted by its backend's share split across that backend's
servers, so that a 90/10 split between two Services holds whatever their pod
counts. Servers sit in fixed slots (`b<backend>s<slot>`), unused ones disabled,
so that endpoint changes are made through the runtime API without a reload:
`Plan.structure` is the configuration with every slot's address, weight and
state left out, and only a change to it needs a reload.

A frontend first picks the host (exact names, then one-label wildcards, then
""), by the Host header without its port; then the host's routes in order, the
first match winning.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .accesslog import LOG_FORMAT
from .routetable import Backend, Frontend, Host, Route, RouteTable

# Slots per backend of a route: the next power of two, at least this many.
MIN_SLOTS = 4
MAX_SERVER_WEIGHT = 256  # HAProxy's
UNUSED_ADDRESS = ("0.0.0.0", 1)
NO_ROUTE_BACKEND = "no_route"
SOCKET_NAME = "haproxy.sock"
# Retries (`_global`): a refused or failed connection is retried for any request,
# each time on another server (a pod that stopped is not coming back), since nothing
# was sent; an empty response or a timeout only for these methods (RFC 9110's
# idempotent ones), since the server may have acted on the request.
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE")
# Folders of the runtime directory, each file named by its content.
CERTIFICATES, CRT_LISTS = "certs", "crt-lists"
FILE_KINDS = (CERTIFICATES, CRT_LISTS)


@dataclass(frozen=True, slots=True)
class SlotState:
    ip: str
    port: int
    weight: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class Plan:
    config: str  # the haproxy.cfg
    structure: str  # the same without the slots' addresses, weights and states
    slots: dict[tuple[str, str], SlotState]  # (HAProxy backend, server) -> state
    # (HAProxy backend, backend index) -> the endpoint in each slot (None: free)
    assignment: dict[tuple[str, int], tuple[tuple[str, int] | None, ...]]
    backends: dict[str, str]  # HAProxy backend -> its route's name
    files: dict[Path, str] = field(default_factory=dict)  # certificates and crt-lists


@dataclass(frozen=True, slots=True)
class Settings:
    runtime_dir: Path  # the stats socket, certificates and crt-lists live here
    bind_address: str = "0.0.0.0"
    default_certificate: Path | None = None  # served when no SNI matches (TLS frontends)
    log_fd: int | None = None  # HAProxy's end of the access log's pipe (accesslog)


def render(table: RouteTable, settings: Settings, previous: Plan | None = None) -> Plan:
    """The configuration for `table`. With `previous`, endpoints stay in the slots
    they had and slot counts never shrink, so that an endpoint change keeps the
    structure."""
    builder = _Builder(table, settings, previous)
    return builder.build()


def quote(text: str) -> str:
    """A double-quoted HAProxy configuration word (no environment variables)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def log_format(text: str) -> str:
    """A quoted HAProxy log-format word that yields `text` literally."""
    return quote(text.replace("%", "%%"))


def prefix_of(path: str) -> str:
    """A Prefix path without its trailing slashes ("/" stays "/")."""
    return path.rstrip("/") or "/"


def server_name(backend_index: int, slot: int) -> str:
    return f"b{backend_index}s{slot}"


def server_weights(backends: Iterable[Backend]) -> list[int]:
    """The HAProxy weight of each server of each backend (one per backend, its
    servers share it): a backend's weight split across its servers, scaled so
    the largest is MAX_SERVER_WEIGHT. A backend with weight > 0 keeps at least 1."""
    shares = [b.weight / len(b.servers) if b.servers else 0.0 for b in backends]
    top = max(shares, default=0.0)
    if top == 0:
        return [0 for _ in shares]
    return [max(1, round(s * MAX_SERVER_WEIGHT / top)) if s > 0 else 0 for s in shares]


class _Builder:
    def __init__(self, table: RouteTable, settings: Settings, previous: Plan | None) -> None:
        self.table = table
        self.settings = settings
        self.previous = previous
        self.slots: dict[tuple[str, str], SlotState] = {}
        self.assignment: dict[tuple[str, int], tuple[tuple[str, int] | None, ...]] = {}
        self.routes: dict[str, str] = {}  # route name -> its first HAProxy backend
        self.backends: dict[str, Route] = {}  # HAProxy backend -> its route
        self.files: dict[Path, str] = {}
        self.cert_files = {
            c.name: self._file(CERTIFICATES, c.pem, ".pem") for c in table.certificates
        }

    def build(self) -> Plan:
        frontends = [self._frontend(f) for f in self.table.frontends]
        full = [_global(self.settings), *frontends]
        structure = list(full)
        for name, route in self.backends.items():
            full.append(self._backend(name, route, masked=False))
            structure.append(self._backend(name, route, masked=True))
        full.append(_NO_ROUTE)
        structure.append(_NO_ROUTE)
        return Plan(
            config="\n".join(full),
            structure="\n".join(structure),
            slots=self.slots,
            assignment=self.assignment,
            backends={name: route.name for name, route in self.backends.items()},
            files=self.files,
        )

    def _file(self, kind: str, content: str, suffix: str) -> Path:
        """A file named by its content: writing it never changes what a running
        configuration refers to."""
        digest = hashlib.sha256(content.encode()).hexdigest()[:20]
        path = self.settings.runtime_dir / kind / f"{digest}{suffix}"
        self.files[path] = content
        return path

    def _frontend(self, frontend: Frontend) -> str:
        lines = [f"frontend fe_{frontend.port}", f"    bind {self._bind(frontend)}"]
        proto = "https" if frontend.tls else "http"
        lines += [
            f"    http-request set-header X-Forwarded-Proto {proto}",
            "    http-request set-var(txn.host) req.hdr(host),field(1,:),lower",
            "    http-request set-var(txn.parent) var(txn.host),field(2,.,0)",
            f"    http-request disable-l7-retry unless {{ method {' '.join(IDEMPOTENT_METHODS)} }}",
        ]
        for i, host in enumerate(frontend.hosts):
            lines.append(
                f"    http-request set-var(txn.h) int({i}) if !{{ var(txn.h) -m found }}"
                + _host_condition(host.host)
            )
        for i, host in enumerate(frontend.hosts):
            if host.redirect_to_https and not frontend.tls:
                lines.append(f"    http-request redirect scheme https code 308 if {_on_host(i)}")
        for i, host in enumerate(frontend.hosts):
            for route in host.routes:
                alternatives = [
                    " ".join([_on_host(i), *path, *_header_conditions(route)])
                    for path in _path_conditions(route)
                ]
                lines.append(
                    f"    use_backend {self._route_backend(route)} if " + " || ".join(alternatives)
                )
        lines.append(f"    default_backend {NO_ROUTE_BACKEND}")
        return "\n".join(lines) + "\n"

    def _bind(self, frontend: Frontend) -> str:
        address = f"{self.settings.bind_address}:{frontend.port}"
        if not frontend.tls:
            return address
        default = self.settings.default_certificate
        if default is None:
            raise ValueError("settings.default_certificate: needed for a TLS frontend")
        entries = _crt_list(frontend.hosts, self.cert_files)
        crt_list = self._file(CRT_LISTS, entries, ".txt")
        certificates = f"crt {quote(str(default))} crt-list {quote(str(crt_list))}"
        return f"{address} ssl {certificates} alpn h2,http/1.1"

    def _route_backend(self, route: Route) -> str:
        """The HAProxy backend of a route; the same route in two frontends shares one."""
        if route.name in self.routes and self.backends[self.routes[route.name]] == route:
            return self.routes[route.name]
        base = "r_" + re.sub(r"[^A-Za-z0-9_.:-]", "_", route.name)
        name, n = base, 1
        while name in self.backends:
            n += 1
            name = f"{base}_{n}"
        self.backends[name] = route
        self.routes.setdefault(route.name, name)
        self._place(name, route)
        return name

    def _place(self, name: str, route: Route) -> None:
        weights = server_weights(route.backends)
        for j, backend in enumerate(route.backends):
            wanted = [(s.ip, s.port) for s in backend.servers]
            old = self.previous.assignment.get((name, j), ()) if self.previous else ()
            slots = _assign(wanted, old)
            self.assignment[(name, j)] = slots
            for k, endpoint in enumerate(slots):
                if endpoint is None:
                    state = SlotState(*UNUSED_ADDRESS, weight=0, enabled=False)
                else:
                    state = SlotState(*endpoint, weight=weights[j], enabled=True)
                self.slots[(name, server_name(j, k))] = state

    def _backend(self, name: str, route: Route, *, masked: bool) -> str:
        lines = [f"backend {name}", f"    # route {route.name}", "    balance roundrobin"]
        lines += [
            f"    http-request set-header {h.name} {log_format(h.value)}" for h in route.set_headers
        ]
        lines += [
            f"    http-request add-header {h.name} {log_format(h.value)}" for h in route.add_headers
        ]
        lines += [f"    http-request del-header {h}" for h in route.remove_headers]
        for j, backend in enumerate(route.backends):
            lines.append(f"    # backend {j}: {backend.name}")
            for k in range(len(self.assignment[(name, j)])):
                server = server_name(j, k)
                if masked:
                    lines.append(f"    server {server} SLOT")
                    continue
                state = self.slots[(name, server)]
                line = f"    server {server} {state.ip}:{state.port} weight {state.weight}"
                lines.append(line if state.enabled else line + " disabled")
        return "\n".join(lines) + "\n"


def _assign(
    wanted: list[tuple[str, int]], old: tuple[tuple[str, int] | None, ...]
) -> tuple[tuple[str, int] | None, ...]:
    """Endpoints in slots: those already in one stay there, new ones take free
    slots; the count grows to a power of two when needed and never shrinks."""
    size = max(len(old), MIN_SLOTS)
    while size < len(wanted):
        size *= 2
    keep = set(wanted)
    slots: list[tuple[str, int] | None] = [e if e in keep else None for e in old]
    slots += [None] * (size - len(slots))
    placed = {e for e in slots if e is not None}
    free = (k for k, e in enumerate(slots) if e is None)
    for endpoint in wanted:
        if endpoint not in placed:
            slots[next(free)] = endpoint
            placed.add(endpoint)
    return tuple(slots)


def _crt_list(hosts: Iterable[Host], cert_files: dict[str, Path]) -> str:
    lines: list[str] = []
    for host in hosts:
        if host.certificate is None:
            continue
        path = str(cert_files[host.certificate])
        line = f"{path} {host.host}" if host.host else path
        if line not in lines:
            lines.append(line)
    return "".join(f"{line}\n" for line in lines)


def _host_condition(host: str) -> str:
    if not host:
        return ""
    if host.startswith("*."):
        return f" {{ var(txn.parent) -m str {quote(host[2:])} }}"
    return f" {{ var(txn.host) -m str {quote(host)} }}"


def _on_host(index: int) -> str:
    return f"{{ var(txn.h) -m int {index} }}"


def _path_conditions(route: Route) -> list[list[str]]:
    """Alternatives (any may hold) of conditions (all must hold) on the path."""
    if route.path_type == "Exact":
        return [[f"{{ path -m str {quote(route.path)} }}"]]
    prefix = prefix_of(route.path)
    if prefix == "/":
        return [[]]
    return [
        [f"{{ path -m str {quote(prefix)} }}"],
        [f"{{ path -m beg {quote(prefix + '/')} }}"],
    ]


def _header_conditions(route: Route) -> list[str]:
    return [f"{{ req.fhdr({h.name}) -m str {quote(h.value)} }}" for h in route.headers]


def _global(settings: Settings) -> str:
    socket = quote(str(settings.runtime_dir / SOCKET_NAME))
    log_global = log_defaults = ""
    if settings.log_fd is not None:
        log_global = f"    log fd@{settings.log_fd} format raw local0 info\n"
        log_defaults = f"    log global\n    log-format {quote(LOG_FORMAT)}\n"
    return f"""global
    stats socket {socket} mode 600 level admin expose-fd listeners
    stats timeout 30s
    hard-stop-after 30s
{log_global}
defaults
    mode http
{log_defaults}    option forwardfor
    option redispatch 1
    retries 3
    retry-on conn-failure empty-response response-timeout
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 30s
"""


_NO_ROUTE = f"""backend {NO_ROUTE_BACKEND}
    http-request deny deny_status 404
"""
