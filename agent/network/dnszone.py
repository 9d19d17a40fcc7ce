"""The cluster DNS zone, built from the service table, as Kubernetes' DNS
specification names things (D is the cluster domain, cluster.local by default):

- `<svc>.<ns>.svc.D` A: the ClusterIP; for a headless Service one A per ready
  endpoint; for an ExternalName Service a CNAME to its external name.
- `_<port>._<proto>.<svc>.<ns>.svc.D` SRV for each named port: to the Service
  name, or for a headless Service to each ready endpoint's own name.
- `<hostname>.<svc>.<ns>.svc.D` A for a headless Service's endpoints (an
  endpoint without a hostname is named by its address, `a-b-c-d`).
- `<a-b-c-d>.<ns>.pod.D` A: a.b.c.d, for any such name (CoreDNS's "pods insecure").
- PTR records for ClusterIPs and headless endpoint addresses.

A name in D that does not exist is NXDOMAIN, with the zone's SOA in the
authority section; a name that exists without records of the asked type is
NOERROR with no answer and the SOA. Reverse names the zone does not know, and
names outside D, are for the upstream resolvers.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from dnslib import CNAME, PTR, QTYPE, RCODE, RR, SOA, SRV, A

from agent.protocol.primitives import DNS1123_LABEL_FMT, is_dns1123_subdomain

from .servicetable import Service, ServiceTable

DEFAULT_DOMAIN = "cluster.local"
DEFAULT_TTL = 5
REVERSE_SUFFIX = ".in-addr.arpa"
_CHASE_LIMIT = 8
_POD_NAME = re.compile(rf"(\d{{1,3}}-\d{{1,3}}-\d{{1,3}}-\d{{1,3}})\.({DNS1123_LABEL_FMT})")


@dataclass
class Lookup:
    """What the zone says about one question."""

    rcode: int = RCODE.NOERROR
    answers: list[Any] = field(default_factory=list)  # dnslib RRs
    authority: list[Any] = field(default_factory=list)
    additional: list[Any] = field(default_factory=list)
    forward: bool = False  # not ours: ask the upstream resolvers
    # An ExternalName's target outside the cluster domain, for the upstream
    # resolvers; its records go after the CNAME.
    chase: str | None = None


class ClusterZone:
    def __init__(self, domain: str = DEFAULT_DOMAIN, ttl: int = DEFAULT_TTL) -> None:
        domain = domain.strip(".").lower()
        if not is_dns1123_subdomain(domain):
            raise ValueError(f"domain: not a DNS name: {domain!r}")
        if not 0 <= ttl <= 86400:
            raise ValueError(f"ttl: must be 0 to 86400 seconds, got {ttl}")
        self.domain = domain
        self.ttl = ttl
        self.generation = -1
        self._records: dict[str, dict[int, list[Any]]] = {}
        self._names: set[str] = set()  # every name that exists, with its ancestors in D

    # --- building -----------------------------------------------------------------

    def sync(self, table: ServiceTable) -> None:
        """Rebuilds the zone if the table changed since the last build."""
        if table.generation == self.generation:
            return
        self._records = {}
        self._names = {self.domain, f"svc.{self.domain}", f"pod.{self.domain}"}
        for svc, endpoints in table.items():
            self._add_service(svc, endpoints)
        self.generation = table.generation

    def _add(self, name: str, rtype: int, rdata: Any) -> None:
        by_type = self._records.setdefault(name, {})
        existing = by_type.setdefault(rtype, [])
        if rdata not in existing:
            existing.append(rdata)
        if not name.endswith(REVERSE_SUFFIX):
            self._exists(name)

    def _exists(self, name: str) -> None:
        while name != self.domain and name not in self._names:
            self._names.add(name)
            name = name.split(".", 1)[1]

    def _add_service(self, svc: Service, endpoints: Any) -> None:
        base = f"{svc.name}.{svc.namespace}.svc.{self.domain}"
        self._exists(base)
        if svc.type == "ExternalName":
            self._add(base, QTYPE.CNAME, CNAME(svc.external_name))
            return
        named = [p for p in svc.ports if p.name]
        if svc.cluster_ip is not None:
            self._add(base, QTYPE.A, A(svc.cluster_ip))
            self._add(_reverse(svc.cluster_ip), QTYPE.PTR, PTR(base))
            for p in named:
                srv = f"_{p.name}._{p.protocol.lower()}.{base}"
                self._add(srv, QTYPE.SRV, SRV(0, 100, p.port, base))
            return
        for e in endpoints:
            if not e.ready:
                continue
            own = f"{e.hostname or e.ip.replace('.', '-')}.{base}"
            self._add(base, QTYPE.A, A(e.ip))
            self._add(own, QTYPE.A, A(e.ip))
            self._add(_reverse(e.ip), QTYPE.PTR, PTR(own))
            for p in named:
                if p.name in e.ports:
                    srv = f"_{p.name}._{p.protocol.lower()}.{base}"
                    self._add(srv, QTYPE.SRV, SRV(0, 100, e.ports[p.name], own))

    # --- answering ----------------------------------------------------------------

    def in_domain(self, name: str) -> bool:
        return name == self.domain or name.endswith("." + self.domain)

    def soa(self) -> Any:
        times = (self.generation % (1 << 32), 7200, 1800, 86400, self.ttl)
        rdata = SOA(f"ns.dns.{self.domain}", f"hostmaster.{self.domain}", times)
        return RR(self.domain, QTYPE.SOA, rdata=rdata, ttl=self.ttl)

    def lookup(self, qname: str, qtype: int) -> Lookup:
        name = qname.rstrip(".").lower()
        if name.endswith(REVERSE_SUFFIX):
            if name in self._records:
                return self._answer(name, qtype, 0)
            return Lookup(forward=True)
        if not self.in_domain(name):
            return Lookup(forward=True)
        return self._answer(name, qtype, 0)

    def _answer(self, name: str, qtype: int, depth: int) -> Lookup:
        records = self._records.get(name)
        if records is None:
            pod_ip = self._pod_ip(name)
            if pod_ip is not None:
                records = {QTYPE.A: [A(pod_ip)]}
        if records is None:
            if name == self.domain and qtype in (QTYPE.SOA, QTYPE.ANY):
                return Lookup(answers=[self.soa()])
            if name in self._names or self._is_pod_namespace(name):
                return Lookup(authority=[self.soa()])
            return Lookup(rcode=RCODE.NXDOMAIN, authority=[self.soa()])
        cname = records.get(QTYPE.CNAME)
        if cname and qtype not in (QTYPE.CNAME, QTYPE.ANY):
            result = Lookup(answers=[self._rr(name, QTYPE.CNAME, cname[0])])
            target = str(cname[0].label).rstrip(".").lower()
            if self.in_domain(target):
                if depth < _CHASE_LIMIT:
                    more = self._answer(target, qtype, depth + 1)
                    result.answers += more.answers
                    result.additional += more.additional
                    result.chase = more.chase
                    result.rcode = more.rcode
                    result.authority = more.authority
            else:
                result.chase = target
            return result
        if qtype == QTYPE.ANY:
            rrs = [self._rr(name, t, rd) for t, rds in records.items() for rd in rds]
        else:
            rrs = [self._rr(name, qtype, rd) for rd in records.get(qtype, [])]
        if not rrs:
            return Lookup(authority=[self.soa()])
        result = Lookup(answers=rrs)
        if qtype == QTYPE.SRV:
            for rr in rrs:
                target = str(rr.rdata.target).rstrip(".")
                for rd in self._records.get(target, {}).get(QTYPE.A, []):
                    result.additional.append(self._rr(target, QTYPE.A, rd))
        return result

    def _is_pod_namespace(self, name: str) -> bool:
        """`<ns>.pod.D`: the parent of pod names, which exists for any namespace."""
        suffix = f".pod.{self.domain}"
        return name.endswith(suffix) and "." not in name[: -len(suffix)]

    def _pod_ip(self, name: str) -> str | None:
        suffix = f".pod.{self.domain}"
        if not name.endswith(suffix):
            return None
        m = _POD_NAME.fullmatch(name[: -len(suffix)])
        if m is None:
            return None
        try:
            return str(ipaddress.IPv4Address(m.group(1).replace("-", ".")))
        except ValueError:
            return None

    def _rr(self, name: str, rtype: int, rdata: Any) -> Any:
        return RR(name, rtype, rdata=rdata, ttl=self.ttl)


def _reverse(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + REVERSE_SUFFIX
