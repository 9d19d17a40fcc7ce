"""The service table as one nftables ruleset, in the shape of kube-proxy's nftables
mode, in a table of our own (`table ip pilothouse`).

- nat chains at prerouting and output (priority -100) jump to `services`, where a
  verdict map keyed by `ip daddr . meta l4proto . th dport` (ClusterIP, protocol,
  port) sends each packet to its Service port's chain; NodePorts go through a
  second map for packets to the node's own addresses (`fib daddr type local`).
- A Service port's chain DNATs to one of its endpoints with `numgen random`.
  With ClientIP affinity, a dynamic map keyed by the client's address remembers
  the endpoint for the affinity timeout.
- Service ports without endpoints are REJECTed in filter chains (priority -110,
  before the nat chains), so clients see "connection refused" at once.
- postrouting masquerades what was marked: traffic to a ClusterIP from outside
  the cluster CIDR, NodePort traffic, and hairpin traffic (a pod reaching
  itself through its own Service: source == chosen endpoint).

The ruleset creates, deletes and recreates the table, so one `nft -f` is one
transaction that replaces all of it. Dynamic affinity entries start empty again
each time.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .servicetable import Endpoint, Service, usable_endpoints

log = logging.getLogger(__name__)

FAMILY = "ip"
TABLE = "pilothouse"
DEFAULT_MASQUERADE_MARK = 0x4000
REJECT_CHAIN = "reject-chain"
MASQ_CHAIN = "mark-for-masquerade"


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    # Traffic to a ClusterIP from outside this CIDR (the whole cluster's pod
    # network) is masqueraded; None: nothing is masqueraded for that reason.
    cluster_cidr: str | None = None
    masquerade_mark: int = DEFAULT_MASQUERADE_MARK

    def __post_init__(self) -> None:
        if self.cluster_cidr is not None:
            try:
                ipaddress.IPv4Network(self.cluster_cidr)
            except ValueError:
                raise ValueError(
                    f"cluster_cidr: must be an IPv4 CIDR, got {self.cluster_cidr!r}"
                ) from None
        mark = self.masquerade_mark
        if mark <= 0 or mark >= 1 << 32 or mark & (mark - 1):
            raise ValueError(f"masquerade_mark: must be a single bit, got {mark:#x}")


@dataclass(frozen=True, slots=True)
class PortPlan:
    """What one Service port becomes: where its traffic goes."""

    namespace: str
    service: str
    port_name: str
    protocol: str  # lower case, as nft spells it
    cluster_ip: str
    port: int
    node_port: int | None
    targets: tuple[tuple[str, int], ...]  # (endpoint IP, target port), in a stable order
    affinity_timeout: int | None  # seconds, for ClientIP affinity

    @property
    def id(self) -> str:
        """The chain name suffix: a short hash (for uniqueness) and the readable name."""
        name = f"{self.namespace}/{self.service}/{self.protocol}/{self.port_name or self.port}"
        digest = hashlib.sha256(name.encode()).digest()
        return f"{base64.b32encode(digest)[:8].decode()}-{name}"


def plan(items: Iterable[tuple[Service, Sequence[Endpoint]]]) -> list[PortPlan]:
    """The Service ports that get rules: those of Services with a ClusterIP.
    A ClusterIP port or NodePort that two Services claim goes to the first."""
    plans = []
    seen: set[tuple[str, str, int]] = set()
    seen_node_ports: set[tuple[str, int]] = set()
    for svc, endpoints in items:
        if svc.cluster_ip is None or svc.type == "ExternalName":
            continue
        usable = usable_endpoints(endpoints)
        affinity = svc.affinity_timeout if svc.session_affinity == "ClientIP" else None
        for sp in svc.ports:
            targets = sorted(
                {(e.ip, e.ports[sp.name]) for e in usable if sp.name in e.ports},
                key=lambda t: (ipaddress.IPv4Address(t[0]), t[1]),
            )
            protocol = sp.protocol.lower()
            if (svc.cluster_ip, protocol, sp.port) in seen:
                log.warning(
                    "service %s/%s: %s %s/%d is taken by another Service; skipped",
                    svc.namespace,
                    svc.name,
                    svc.cluster_ip,
                    protocol,
                    sp.port,
                )
                continue
            seen.add((svc.cluster_ip, protocol, sp.port))
            node_port = sp.node_port if svc.type in ("NodePort", "LoadBalancer") else None
            if node_port is not None:
                if (protocol, node_port) in seen_node_ports:
                    log.warning(
                        "service %s/%s: nodePort %s/%d is taken by another Service; skipped",
                        svc.namespace,
                        svc.name,
                        protocol,
                        node_port,
                    )
                    node_port = None
                else:
                    seen_node_ports.add((protocol, node_port))
            plans.append(
                PortPlan(
                    namespace=svc.namespace,
                    service=svc.name,
                    port_name=sp.name,
                    protocol=protocol,
                    cluster_ip=svc.cluster_ip,
                    port=sp.port,
                    node_port=node_port,
                    targets=tuple(targets),
                    affinity_timeout=affinity,
                )
            )
    return plans


def render_ruleset(
    items: Iterable[tuple[Service, Sequence[Endpoint]]], config: ProxyConfig | None = None
) -> str:
    """The whole ruleset for `nft -f`, from (Service, endpoints) pairs such as
    `ServiceTable.items()`."""
    return render_plans(plan(items), config or ProxyConfig())


def render_delete() -> str:
    """A ruleset that removes our table, whether or not it exists."""
    return f"table {FAMILY} {TABLE} {{}}\ndelete table {FAMILY} {TABLE}\n"


def render_plans(plans: Sequence[PortPlan], config: ProxyConfig) -> str:
    mark = f"{config.masquerade_mark:#x}"
    service_ips: list[str] = []
    nodeports: list[str] = []
    no_ep_services: list[str] = []
    no_ep_nodeports: list[str] = []
    hairpin: set[str] = set()
    chains: list[str] = []
    sets: list[str] = []

    for p in plans:
        if not p.targets:
            no_ep_services.append(f"{p.cluster_ip} . {p.protocol} . {p.port} : goto {REJECT_CHAIN}")
            if p.node_port is not None:
                no_ep_nodeports.append(f"{p.protocol} . {p.node_port} : goto {REJECT_CHAIN}")
            continue
        svc_chain = f"svc-{p.id}"
        service_ips.append(f"{p.cluster_ip} . {p.protocol} . {p.port} : goto {svc_chain}")
        if p.node_port is not None:
            ext_chain = f"ext-{p.id}"
            nodeports.append(f"{p.protocol} . {p.node_port} : goto {ext_chain}")
            chains.append(_chain(ext_chain, [f"jump {MASQ_CHAIN}", f"goto {svc_chain}"]))
        hairpin.update(ip for ip, _ in p.targets)
        rules = []
        if config.cluster_cidr:
            rules.append(
                f"ip daddr {p.cluster_ip} {p.protocol} dport {p.port} "
                f"ip saddr != {config.cluster_cidr} jump {MASQ_CHAIN}"
            )
        dnat = f"meta l4proto {p.protocol} dnat ip"
        if p.affinity_timeout is None:
            if len(p.targets) == 1:
                rules.append(f"{dnat} to {_addr(p.targets[0])}")
            else:
                choices = ", ".join(
                    f"{i} : {ip} . {port}" for i, (ip, port) in enumerate(p.targets)
                )
                rules.append(
                    f"{dnat} addr . port to numgen random mod {len(p.targets)} map {{ {choices} }}"
                )
        else:
            aff = f"aff-{p.id}"
            sets.append(
                f"\tmap {aff} {{\n"
                f"\t\ttype ipv4_addr : ipv4_addr . inet_service\n"
                f"\t\tflags dynamic,timeout\n"
                f"\t\ttimeout {p.affinity_timeout}s\n"
                f"\t}}\n"
            )
            rules.append(f"{dnat} addr . port to ip saddr map @{aff}")
            ep_chains = []
            for ip, port in p.targets:
                ep_chain = f"ep-{p.id}__{ip}/{port}"
                ep_chains.append(ep_chain)
                chains.append(
                    _chain(
                        ep_chain,
                        [
                            f"update @{aff} {{ ip saddr timeout {p.affinity_timeout}s : "
                            f"{ip} . {port} }}",
                            f"{dnat} to {ip}:{port}",
                        ],
                    )
                )
            if len(ep_chains) == 1:
                rules.append(f"goto {ep_chains[0]}")
            else:
                choices = ", ".join(f"{i} : goto {c}" for i, c in enumerate(ep_chains))
                rules.append(f"numgen random mod {len(ep_chains)} vmap {{ {choices} }}")
        chains.append(_chain(svc_chain, rules))

    out = [render_delete(), f"table {FAMILY} {TABLE} {{\n"]
    out.append(_map("service-ips", "ipv4_addr . inet_proto . inet_service : verdict", service_ips))
    out.append(_map("service-nodeports", "inet_proto . inet_service : verdict", nodeports))
    out.append(
        _map(
            "no-endpoint-services",
            "ipv4_addr . inet_proto . inet_service : verdict",
            no_ep_services,
        )
    )
    out.append(
        _map("no-endpoint-nodeports", "inet_proto . inet_service : verdict", no_ep_nodeports)
    )
    out.append(
        _set(
            "hairpin",
            "ipv4_addr . ipv4_addr",
            [f"{ip} . {ip}" for ip in sorted(hairpin, key=ipaddress.IPv4Address)],
        )
    )
    out.extend(sets)
    local = "fib daddr type local ip daddr != 127.0.0.0/8"
    out.append(
        _chain(
            "nat-prerouting",
            ["jump services"],
            "type nat hook prerouting priority -100; policy accept;",
        )
    )
    out.append(
        _chain(
            "nat-output", ["jump services"], "type nat hook output priority -100; policy accept;"
        )
    )
    out.append(
        _chain(
            "nat-postrouting",
            [
                f"ct status dnat ip saddr . ip daddr @hairpin jump {MASQ_CHAIN}",
                f"meta mark & {mark} == 0 return",
                f"meta mark set meta mark ^ {mark}",
                "masquerade fully-random",
            ],
            "type nat hook postrouting priority 100; policy accept;",
        )
    )
    out.append(_chain(MASQ_CHAIN, [f"meta mark set meta mark | {mark}"]))
    out.append(
        _chain(
            "services",
            [
                "ip daddr . meta l4proto . th dport vmap @service-ips",
                f"{local} meta l4proto . th dport vmap @service-nodeports",
            ],
        )
    )
    filter_hooks = {
        "input": ["nodeport-endpoints-check", "service-endpoints-check"],
        "forward": ["service-endpoints-check"],
        "output": ["service-endpoints-check", "nodeport-endpoints-check"],
    }
    for hook, checks in filter_hooks.items():
        out.append(
            _chain(
                f"filter-{hook}",
                [f"ct state new jump {c}" for c in checks],
                f"type filter hook {hook} priority -110; policy accept;",
            )
        )
    out.append(
        _chain(
            "service-endpoints-check",
            ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"],
        )
    )
    out.append(
        _chain(
            "nodeport-endpoints-check",
            [f"{local} meta l4proto . th dport vmap @no-endpoint-nodeports"],
        )
    )
    out.append(_chain(REJECT_CHAIN, ["reject"]))
    out.extend(chains)
    out.append("}\n")
    return "".join(out)


def _addr(target: tuple[str, int]) -> str:
    return f"{target[0]}:{target[1]}"


def _chain(name: str, rules: Sequence[str], base: str = "") -> str:
    head = f"\tchain {name} {{\n"
    if base:
        head += f"\t\t{base}\n"
    return head + "".join(f"\t\t{r}\n" for r in rules) + "\t}\n"


def _map(name: str, type_: str, elements: Sequence[str]) -> str:
    return _set(name, type_, elements, kind="map")


def _set(name: str, type_: str, elements: Sequence[str], kind: str = "set") -> str:
    body = f"\t{kind} {name} {{\n\t\ttype {type_}\n"
    if elements:
        body += "\t\telements = {\n" + ",\n".join(f"\t\t\t{e}" for e in elements) + "\n\t\t}\n"
    return body + "\t}\n"
