"""The service table a node routes and answers DNS from: Services keyed by
namespace/name, and the endpoints of each.

The control plane sends it over the node link as JSON (the `*Wire` shapes of
agent.protocol.services): whole after a (re)connect, then changes. Parsing
checks every field and names the bad one; the proxy rules and DNS names are
built from these values, so nothing unchecked reaches them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from agent.protocol.primitives import is_dns1123_label
from agent.protocol.services import (
    DEFAULT_AFFINITY_TIMEOUT,
    ChangeOp,
    EndpointsWire,
    EndpointWire,
    ServicePortWire,
    ServiceTableWire,
    ServiceWire,
)

ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
PortProtocol = Literal["TCP", "UDP", "SCTP"]
SessionAffinity = Literal["None", "ClientIP"]
ServiceKey = tuple[str, str]  # (namespace, name)

MAX_AFFINITY_TIMEOUT = 86400

_DNS_NAME_LABEL = re.compile(r"[A-Za-z0-9_]([-A-Za-z0-9_]{0,61}[A-Za-z0-9])?")


class ServiceTableError(ValueError):
    """A service table message that cannot be used; the text names the field."""


# --- the model --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str  # "" when the Service has one unnamed port
    protocol: PortProtocol
    port: int
    node_port: int | None = None

    def to_wire(self) -> ServicePortWire:
        out = ServicePortWire(name=self.name, protocol=self.protocol, port=self.port)
        if self.node_port is not None:
            out["nodePort"] = self.node_port
        return out


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    type: ServiceType = "ClusterIP"
    cluster_ip: str | None = None  # None: headless, or ExternalName
    ports: tuple[ServicePort, ...] = ()
    session_affinity: SessionAffinity = "None"
    affinity_timeout: int = DEFAULT_AFFINITY_TIMEOUT
    external_name: str | None = None

    @property
    def key(self) -> ServiceKey:
        return (self.namespace, self.name)

    @property
    def headless(self) -> bool:
        return self.type != "ExternalName" and self.cluster_ip is None

    def to_wire(self) -> ServiceWire:
        out = ServiceWire(
            namespace=self.namespace,
            name=self.name,
            type=self.type,
            clusterIP=self.cluster_ip,
            ports=[p.to_wire() for p in self.ports],
            sessionAffinity=self.session_affinity,
            sessionAffinityTimeoutSeconds=self.affinity_timeout,
        )
        if self.external_name is not None:
            out["externalName"] = self.external_name
        return out


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    ports: Mapping[str, int] = field(default_factory=dict)  # Service port name -> target port
    node_name: str | None = None
    hostname: str | None = None

    def to_wire(self) -> EndpointWire:
        out = EndpointWire(
            ip=self.ip,
            ready=self.ready,
            serving=self.serving,
            terminating=self.terminating,
            ports=dict(self.ports),
        )
        if self.node_name is not None:
            out["nodeName"] = self.node_name
        if self.hostname is not None:
            out["hostname"] = self.hostname
        return out


def usable_endpoints(endpoints: Sequence[Endpoint]) -> list[Endpoint]:
    """The endpoints traffic goes to, as kube-proxy picks them: the ready ones, or
    when none is ready, those still serving while they terminate."""
    ready = [e for e in endpoints if e.ready]
    if ready:
        return ready
    return [e for e in endpoints if e.serving and e.terminating]


# --- the table --------------------------------------------------------------------


class ServiceTable:
    """Services and their endpoints. `generation` grows with every change, so
    readers (the proxy, the DNS index) can tell whether they are behind."""

    def __init__(self) -> None:
        self._services: dict[ServiceKey, Service] = {}
        self._endpoints: dict[ServiceKey, tuple[Endpoint, ...]] = {}
        self.generation = 0

    def __len__(self) -> int:
        return len(self._services)

    def service(self, namespace: str, name: str) -> Service | None:
        return self._services.get((namespace, name))

    def endpoints(self, namespace: str, name: str) -> tuple[Endpoint, ...]:
        return self._endpoints.get((namespace, name), ())

    def items(self) -> list[tuple[Service, tuple[Endpoint, ...]]]:
        """Every Service with its endpoints, in namespace/name order."""
        return [(self._services[k], self._endpoints.get(k, ())) for k in sorted(self._services)]

    def upsert_service(self, service: Service) -> bool:
        """Adds or replaces one Service (its endpoints stay); True if it changed."""
        if self._services.get(service.key) == service:
            return False
        self._services[service.key] = service
        self.generation += 1
        return True

    def delete_service(self, namespace: str, name: str) -> bool:
        """Removes a Service and its endpoints; True if there was one."""
        key = (namespace, name)
        found = self._services.pop(key, None) is not None
        found = self._endpoints.pop(key, None) is not None or found
        if found:
            self.generation += 1
        return found

    def set_endpoints(self, namespace: str, name: str, endpoints: Iterable[Endpoint]) -> bool:
        """Replaces the endpoints of one Service (which may arrive before the
        Service itself); True if they changed."""
        key = (namespace, name)
        new = tuple(endpoints)
        if self._endpoints.get(key, ()) == new:
            return False
        if new:
            self._endpoints[key] = new
        else:
            self._endpoints.pop(key, None)
        self.generation += 1
        return True

    def replace(
        self,
        services: Iterable[Service],
        endpoints: Mapping[ServiceKey, Iterable[Endpoint]],
    ) -> None:
        """Replaces everything, as after a reconnect."""
        self._services = {s.key: s for s in services}
        self._endpoints = {k: tuple(v) for k, v in endpoints.items() if v}
        self.generation += 1

    # The wire form, for the node link.

    def apply_service_wire(self, obj: Any) -> bool:
        return self.upsert_service(parse_service(obj))

    def apply_endpoints_wire(self, obj: Any) -> bool:
        (namespace, name), endpoints = parse_endpoints(obj)
        return self.set_endpoints(namespace, name, endpoints)

    def replace_from_wire(self, obj: Any) -> None:
        """A full table (`ServiceTableWire`); on an error the table is unchanged."""
        if not isinstance(obj, Mapping):
            raise ServiceTableError("service table: must be an object")
        services = [
            parse_service(s, f"services[{i}]")
            for i, s in enumerate(_list(obj.get("services", []), "services"))
        ]
        endpoints = dict(
            parse_endpoints(e, f"endpoints[{i}]")
            for i, e in enumerate(_list(obj.get("endpoints", []), "endpoints"))
        )
        self.replace(services, endpoints)

    def apply_changes_wire(self, obj: Any) -> bool:
        """A list of changes (`Change`), made in order; on an error the table is
        unchanged. True if any of them changed it."""
        parsed = [parse_change(c, f"changes[{i}]") for i, c in enumerate(_list(obj, "changes"))]
        changed = False
        for change in parsed:
            changed = change(self) or changed
        return changed

    def to_wire(self) -> ServiceTableWire:
        return ServiceTableWire(
            services=[s.to_wire() for s in self._services.values()],
            endpoints=[
                EndpointsWire(namespace=k[0], name=k[1], endpoints=[e.to_wire() for e in eps])
                for k, eps in self._endpoints.items()
            ],
        )


# --- parsing ----------------------------------------------------------------------


def parse_service(obj: Any, where: str = "service") -> Service:
    """A `ServiceWire` as a Service; ServiceTableError names the bad field."""
    if not isinstance(obj, Mapping):
        raise ServiceTableError(f"{where}: must be an object")
    namespace = _label(obj.get("namespace"), f"{where}.namespace")
    name = _label(obj.get("name"), f"{where}.name")
    where = f"{where} {namespace}/{name}"
    stype = _choice(obj.get("type", "ClusterIP"), ServiceType, f"{where}.type")
    cluster_ip = obj.get("clusterIP")
    if cluster_ip in ("", "None"):
        cluster_ip = None
    if cluster_ip is not None:
        cluster_ip = _ipv4(cluster_ip, f"{where}.clusterIP")
    external_name = obj.get("externalName")
    if stype == "ExternalName":
        external_name = _dns_name(external_name, f"{where}.externalName")
        cluster_ip = None
    elif external_name is not None:
        raise ServiceTableError(f"{where}.externalName: only for type ExternalName")
    ports = tuple(
        _service_port(p, f"{where}.ports[{i}]")
        for i, p in enumerate(_list(obj.get("ports", []), f"{where}.ports"))
    )
    seen: set[tuple[str, int]] = set()
    names: set[str] = set()
    for i, p in enumerate(ports):
        if (p.protocol, p.port) in seen:
            raise ServiceTableError(f"{where}.ports[{i}]: duplicate {p.port}/{p.protocol}")
        if p.name in names:
            raise ServiceTableError(f'{where}.ports[{i}].name: duplicate "{p.name}"')
        seen.add((p.protocol, p.port))
        names.add(p.name)
    affinity = _choice(
        obj.get("sessionAffinity", "None"), SessionAffinity, f"{where}.sessionAffinity"
    )
    timeout = obj.get("sessionAffinityTimeoutSeconds", DEFAULT_AFFINITY_TIMEOUT)
    if not _is_int(timeout) or not 1 <= timeout <= MAX_AFFINITY_TIMEOUT:
        raise ServiceTableError(
            f"{where}.sessionAffinityTimeoutSeconds: must be an integer "
            f"from 1 to {MAX_AFFINITY_TIMEOUT}"
        )
    return Service(
        namespace=namespace,
        name=name,
        type=stype,
        cluster_ip=cluster_ip,
        ports=ports,
        session_affinity=affinity,
        affinity_timeout=timeout,
        external_name=external_name,
    )


def parse_endpoints(obj: Any, where: str = "endpoints") -> tuple[ServiceKey, list[Endpoint]]:
    """An `EndpointsWire` as (namespace, name) and its endpoints."""
    if not isinstance(obj, Mapping):
        raise ServiceTableError(f"{where}: must be an object")
    namespace = _label(obj.get("namespace"), f"{where}.namespace")
    name = _label(obj.get("name"), f"{where}.name")
    where = f"{where} {namespace}/{name}"
    items = _list(obj.get("endpoints", []), f"{where}.endpoints")
    return (namespace, name), [
        parse_endpoint(e, f"{where}.endpoints[{i}]") for i, e in enumerate(items)
    ]


def parse_change(obj: Any, where: str = "change") -> Callable[[ServiceTable], bool]:
    """A `Change` as what makes it on a table (which returns True if the table changed)."""
    if not isinstance(obj, Mapping):
        raise ServiceTableError(f"{where}: must be an object")
    op = _choice(obj.get("op"), ChangeOp, f"{where}.op")
    if op == "upsertService":
        service = parse_service(obj.get("service"), f"{where}.service")
        return lambda table: table.upsert_service(service)
    if op == "deleteService":
        namespace = _label(obj.get("namespace"), f"{where}.namespace")
        name = _label(obj.get("name"), f"{where}.name")
        return lambda table: table.delete_service(namespace, name)
    (namespace, name), endpoints = parse_endpoints(obj.get("endpoints"), f"{where}.endpoints")
    return lambda table: table.set_endpoints(namespace, name, endpoints)


def parse_endpoint(obj: Any, where: str = "endpoint") -> Endpoint:
    if not isinstance(obj, Mapping):
        raise ServiceTableError(f"{where}: must be an object")
    ip = _ipv4(obj.get("ip"), f"{where}.ip")
    ready = _bool(obj.get("ready", True), f"{where}.ready")
    serving = _bool(obj.get("serving", ready), f"{where}.serving")
    terminating = _bool(obj.get("terminating", False), f"{where}.terminating")
    raw_ports = obj.get("ports", {})
    if not isinstance(raw_ports, Mapping):
        raise ServiceTableError(f"{where}.ports: must be an object of port name to port")
    ports = {}
    for pname, port in raw_ports.items():
        if pname != "":
            _label(pname, f"{where}.ports name")
        ports[pname] = _port(port, f"{where}.ports[{pname!r}]")
    node_name = obj.get("nodeName")
    if node_name is not None and not isinstance(node_name, str):
        raise ServiceTableError(f"{where}.nodeName: must be a string")
    hostname = obj.get("hostname")
    if hostname in ("", None):
        hostname = None
    else:
        hostname = _label(hostname, f"{where}.hostname")
    return Endpoint(
        ip=ip,
        ready=ready,
        serving=serving,
        terminating=terminating,
        ports=ports,
        node_name=node_name or None,
        hostname=hostname,
    )


def _service_port(obj: Any, where: str) -> ServicePort:
    if not isinstance(obj, Mapping):
        raise ServiceTableError(f"{where}: must be an object")
    name = obj.get("name") or ""
    if name:
        _label(name, f"{where}.name")
    protocol = _choice(obj.get("protocol", "TCP"), PortProtocol, f"{where}.protocol")
    port = _port(obj.get("port"), f"{where}.port")
    node_port = obj.get("nodePort")
    if node_port is not None:
        node_port = _port(node_port, f"{where}.nodePort")
    return ServicePort(name=name, protocol=protocol, port=port, node_port=node_port)


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ServiceTableError(f"{where}: must be a list")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ServiceTableError(f"{where}: must be true or false")
    return value


def _port(value: Any, where: str) -> int:
    if not _is_int(value) or not 1 <= value <= 65535:
        raise ServiceTableError(f"{where}: must be a port number from 1 to 65535, got {value!r}")
    return cast(int, value)


def _label(value: Any, where: str) -> str:
    if not isinstance(value, str) or not is_dns1123_label(value):
        raise ServiceTableError(
            f"{where}: must be a DNS-1123 label (lower case letters, digits, '-'), got {value!r}"
        )
    return value


def _dns_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value.rstrip(".")) > 253:
        raise ServiceTableError(f"{where}: must be a DNS name, got {value!r}")
    name = value.rstrip(".").lower()
    if not all(_DNS_NAME_LABEL.fullmatch(part) for part in name.split(".")):
        raise ServiceTableError(f"{where}: must be a DNS name, got {value!r}")
    return name


def _ipv4(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ServiceTableError(f"{where}: must be an IPv4 address, got {value!r}")
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ServiceTableError(f"{where}: must be an IPv4 address, got {value!r}") from None


def _choice(value: Any, choices: Any, where: str) -> Any:
    allowed = get_args(choices)
    if value not in allowed:
        raise ServiceTableError(f"{where}: must be one of {', '.join(allowed)}, got {value!r}")
    return value
