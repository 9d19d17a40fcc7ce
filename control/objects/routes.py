"""The routes of Ingresses and HTTPRoutes, read from the objects alone, under
the names the ingress proxy's route table gives them; their backends' weights;
and the nodes that serve them.

A route is one Ingress path, "ing/<ns>/<name>/<rule>/<path>" (its default
backend "ing/<ns>/<name>/default"), or one match of an HTTPRoute rule,
"httproute/<ns>/<name>/<rule>/<match>". The proxy counts its traffic by these
names (agent.protocol.ingress: RouteWire.name, IngressStatsResult), so the
console's rows, `describe` and the proxy's statistics meet on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.protocol.ingress import MAX_WEIGHT
from control.objects import Obj

# Nodes with this label = "true" run the ingress proxy.
INGRESS_NODE_LABEL = "pilothouse.io/ingress"
# An HTTPRoute backendRef without a weight has this one (the Gateway API's default).
DEFAULT_WEIGHT = 1


def is_ingress_node(node: Obj | None) -> bool:
    labels = ((node or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(INGRESS_NODE_LABEL) == "true"


def ingress_route_name(namespace: str, name: str, rule: int, path: int) -> str:
    return f"ing/{namespace}/{name}/{rule}/{path}"


def ingress_default_route_name(namespace: str, name: str) -> str:
    return f"ing/{namespace}/{name}/default"


def httproute_route_name(namespace: str, name: str, rule: int, match: int) -> str:
    return f"httproute/{namespace}/{name}/{rule}/{match}"


def normalise_weights(weights: list[int], total: int = MAX_WEIGHT) -> list[int]:
    """Weights scaled to sum to `total` (largest remainders rounded up); all
    zero stay zero."""
    given = sum(weights)
    if given <= 0:
        return [0] * len(weights)
    scaled = [w * total / given for w in weights]
    out = [int(s) for s in scaled]
    by_remainder = sorted(range(len(weights)), key=lambda i: out[i] - scaled[i])
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


def backend_weights(refs: list[Obj]) -> list[int]:
    """The weights of an HTTPRoute rule's backendRefs, as written or defaulted."""
    return [int(r["weight"]) if r.get("weight") is not None else DEFAULT_WEIGHT for r in refs]


@dataclass(frozen=True)
class Backend:
    namespace: str
    service: str  # "" when the backend is not a Service
    port: str  # the Service port's number or name
    percent: int | None = None  # an HTTPRoute rule's share, 0..100

    @property
    def label(self) -> str:
        """ "svc:port", with the share of a weighted rule: "svc:port 90%"."""
        text = f"{self.service}:{self.port}" if self.service else "<none>"
        return text if self.percent is None else f"{text} {self.percent}%"


@dataclass(frozen=True)
class Route:
    name: str  # the route table's name
    kind: str  # "Ingress" or "HTTPRoute"
    namespace: str
    owner: str  # the Ingress' or HTTPRoute's name
    rule: int | None  # the index in spec.rules (None: an Ingress' defaultBackend)
    hosts: tuple[str, ...]  # () = any host
    path: str
    path_type: str  # as written: Prefix, Exact, PathPrefix, ...
    headers: tuple[tuple[str, str], ...]
    backends: tuple[Backend, ...]

    @property
    def weighted(self) -> bool:
        """An HTTPRoute rule whose traffic is split: `+`/`-` shift its weights."""
        return self.kind == "HTTPRoute" and len(self.backends) >= 2

    @property
    def host_text(self) -> str:
        return ",".join(self.hosts) or "*"


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _ingress_backend(namespace: str, backend: Obj | None) -> Backend:
    service = (backend or {}).get("service") or {}
    port = service.get("port") or {}
    return Backend(
        namespace, str(service.get("name") or ""), str(port.get("number") or port.get("name") or "")
    )


def ingress_routes(ingress: Obj) -> list[Route]:
    """One route per path of each rule, and one for the defaultBackend."""
    (namespace, name), spec = _meta(ingress), ingress.get("spec") or {}
    # (route name, rule, hosts, path, pathType, backend)
    found: list[tuple[str, int | None, tuple[str, ...], str, str, Obj | None]] = []
    for r, rule in enumerate(spec.get("rules") or []):
        hosts = (str(rule["host"]),) if rule.get("host") else ()
        for p, path in enumerate((rule.get("http") or {}).get("paths") or []):
            value, path_type = str(path.get("path") or "/"), str(path.get("pathType") or "Prefix")
            found.append(
                (
                    ingress_route_name(namespace, name, r, p),
                    r,
                    hosts,
                    value,
                    path_type,
                    path.get("backend"),
                )
            )
    if spec.get("defaultBackend"):
        default = ingress_default_route_name(namespace, name)
        found.append((default, None, (), "/", "Prefix", spec["defaultBackend"]))
    return [
        Route(
            route,
            "Ingress",
            namespace,
            name,
            r,
            hosts,
            path,
            path_type,
            (),
            (_ingress_backend(namespace, backend),),
        )
        for route, r, hosts, path, path_type, backend in found
    ]


# A rule without matches matches every path.
DEFAULT_MATCH: Obj = {"path": {"type": "PathPrefix", "value": "/"}}


def httproute_routes(httproute: Obj) -> list[Route]:
    """One route per match of each rule (a rule without matches matches every path)."""
    (namespace, name), spec = _meta(httproute), httproute.get("spec") or {}
    hosts = tuple(str(h) for h in spec.get("hostnames") or [])
    out: list[Route] = []
    for r, rule in enumerate(spec.get("rules") or [{}]):
        refs = rule.get("backendRefs") or []
        percents = normalise_weights(backend_weights(refs), 100)
        backends = tuple(
            Backend(
                str(ref.get("namespace") or namespace),
                str(ref.get("name") or ""),
                str(ref.get("port") or ""),
                percent if len(refs) > 1 else None,
            )
            for ref, percent in zip(refs, percents, strict=True)
        )
        for m, match in enumerate(rule.get("matches") or [DEFAULT_MATCH]):
            path = match.get("path") or {}
            headers = tuple(
                (str(h.get("name") or ""), str(h.get("value") or ""))
                for h in match.get("headers") or []
            )
            out.append(
                Route(
                    httproute_route_name(namespace, name, r, m),
                    "HTTPRoute",
                    namespace,
                    name,
                    r,
                    hosts,
                    str(path.get("value") or "/"),
                    str(path.get("type") or "PathPrefix"),
                    headers,
                    backends,
                )
            )
    return out


def routes_of(obj: Obj) -> list[Route]:
    """The routes of an Ingress or an HTTPRoute, by the object's kind; none of
    other kinds."""
    kind = obj.get("kind")
    if kind == "Ingress":
        return ingress_routes(obj)
    if kind == "HTTPRoute":
        return httproute_routes(obj)
    return []
