"""What each view shows: its kind, columns and row keys.

Cells come from `control.objects.columns` (the CLI's `get` columns) where the
console shows the same thing; the console adds what needs other kinds (pods per
node, endpoint counts, nodes whose service rules are in sync) from the shared
caches in `Context`.
"""

from __future__ import annotations

import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from rich.text import Text

from agent.protocol.primitives import quantity_milli_value, quantity_value
from console.tui.traffic import RouteTraffic
from control.objects import Obj, kinds
from control.objects.columns import age, columns_for
from control.objects.kinds import ResourceType
from control.objects.routes import routes_of
from control.objects.servicestatus import (
    node_in_sync,
    ready_addresses,
    slice_counts,
    slice_service,
)

Cell = str | Text
Row = tuple[str, list[Cell]]  # row key, cells

BAD_STATUS = {
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "Error",
    "Failed",
    "OOMKilled",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "NotReady",
    "Unknown",
}
WARN_STATUS = {"Pending", "ContainerCreating", "Terminating", "PodInitializing"}
SPARK = "▁▂▃▄▅▆▇█"


def parse_cpu(q: Any) -> int:
    """Millicores from a CPU quantity (`250m`, `2`, `0.5`); 0 when absent or malformed."""
    try:
        return quantity_milli_value(q or 0)
    except ValueError:
        return 0


def parse_mem(q: Any) -> int:
    """Bytes from a memory quantity (`64Mi`, `1G`, `1048576`); 0 when absent or malformed."""
    try:
        return quantity_value(q or 0)
    except ValueError:
        return 0


def fmt_cpu(m: int) -> str:
    return f"{m}m" if m % 1000 else str(m // 1000)


def fmt_mem(b: int) -> str:
    for unit, size in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if b >= size:
            v = b / size
            return f"{v:.1f}{unit}" if v < 10 and v != int(v) else f"{int(v)}{unit}"
    return str(b)


def sparkline(samples: list[float]) -> str:
    """Fractions 0..1 as block characters."""
    return "".join(
        SPARK[min(len(SPARK) - 1, max(0, int(v * (len(SPARK) - 1) + 0.5)))] for v in samples
    )


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def obj_key(obj: Obj) -> str:
    meta = _meta(obj)
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


@lru_cache(maxsize=1024)
def _styled(text: str, style: str) -> Text:
    """One shared `Text` per styled value: thousands of rows show the same few.
    The table never changes a cell, so sharing is safe."""
    return Text(text, style=style)


@lru_cache(maxsize=1024)
def _status_text(status: str) -> Cell:
    if status in BAD_STATUS or status.startswith(("Init:Error", "Init:CrashLoop")):
        return _styled(status, "bold red")
    if status in WARN_STATUS:
        return _styled(status, "yellow")
    return status


def _keep(d: Obj, keys: tuple[str, ...]) -> Obj:
    return {k: d[k] for k in keys if k in d}


_POD_META = (
    "name",
    "namespace",
    "labels",
    "creationTimestamp",
    "deletionTimestamp",
    "resourceVersion",
)


def _slim_state(state: Obj) -> Obj:
    return {k: _keep(v, ("reason",)) if isinstance(v, dict) else v for k, v in state.items()}


class _Shared:
    """One instance of each equal value, for parts that thousands of pods repeat
    (labels, container requests). Whoever reads a projection must not change it.
    Bounded: past `limit` distinct values it starts over, sharing less."""

    def __init__(self, limit: int = 20000) -> None:
        self.limit = limit
        self.values: dict[Any, Any] = {}

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        value = self.values.get(key)
        if value is None:
            if len(self.values) >= self.limit:
                self.values.clear()
            value = self.values[key] = make()
        return value


_LABELS = _Shared()
_CONTAINERS = _Shared()


def _containers_key(containers: list[Obj]) -> tuple[Any, ...]:
    key = []
    for c in containers:
        requests = (c.get("resources") or {}).get("requests")
        key.append((c.get("name"), tuple(sorted(requests.items())) if requests else ()))
    return tuple(key)


def _slim_containers(containers: list[Obj]) -> list[Obj]:
    key = _containers_key(containers)
    return _CONTAINERS.get(
        key, lambda: [{"name": name, "resources": {"requests": dict(r)}} for name, r in key]
    )


_NO_STATE: Obj = {}


def slim_pod(obj: Obj) -> Obj:
    """What the console reads of a pod: its row, its labels (for `/` selectors),
    its node and requests (for the Nodes view). At 20,000 pods the full objects
    would be most of the console's memory; describe, YAML and edit fetch the
    whole object from the API. Equal labels and containers are shared.

    The hot path of opening the Pods view: one pass, reading each field once.
    """
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    intern = sys.intern
    out_meta = {k: meta[k] for k in _POD_META if k in meta}
    ns = out_meta.get("namespace")
    if ns is not None:
        out_meta["namespace"] = intern(str(ns))
    labels = out_meta.get("labels")
    if labels:
        out_meta["labels"] = _LABELS.get(tuple(sorted(labels.items())), lambda: labels)
    out_spec: Obj = {"containers": _slim_containers(spec.get("containers") or [])}
    node = spec.get("nodeName")
    if node:
        out_spec["nodeName"] = intern(str(node))
    out_status: Obj = {}
    if status:
        for k in ("podIP", "reason"):
            if k in status:
                out_status[k] = status[k]
        phase = status.get("phase")
        if phase is not None:
            out_status["phase"] = intern(str(phase))
        statuses = status.get("containerStatuses")
        if statuses is not None:
            out_status["containerStatuses"] = [
                {
                    "name": cs.get("name"),
                    "ready": cs.get("ready"),
                    "restartCount": cs.get("restartCount"),
                    "state": _slim_state(cs.get("state") or _NO_STATE),
                }
                for cs in statuses or ()
            ]
    return {"metadata": out_meta, "spec": out_spec, "status": out_status}


@dataclass(slots=True)
class PodInfo:
    node: str
    phase: str
    cpu_m: int
    mem_b: int


@dataclass
class Context:
    """Shared caches the views read from, kept by the app."""

    objects: dict[str, dict[str, Obj]] = field(default_factory=dict)  # plural -> key -> obj
    pods: dict[str, PodInfo] = field(default_factory=dict)
    history: dict[str, tuple[deque[float], deque[float]]] = field(default_factory=dict)
    # Kept as pods change, so the header and the Nodes view never walk every pod.
    phases: Counter[str] = field(default_factory=Counter)
    usage: dict[str, list[int]] = field(default_factory=dict)  # node -> [cpu, mem, pods]
    # Kept as slices change: slice key -> (service key, ready, total), and the sums.
    slices: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    endpoints: dict[str, list[int]] = field(default_factory=dict)  # service -> [ready, total]
    service_slices: dict[str, set[str]] = field(default_factory=dict)  # service -> slice keys
    traffic: RouteTraffic = field(default_factory=RouteTraffic)  # the ingress routes'
    # Kept as nodes change: the nodes whose service rules are in sync, and the
    # summary the Services view last showed.
    rules_synced: set[str] = field(default_factory=set)
    rules_shown: tuple[int, int] = (0, 0)

    def of(self, rt: ResourceType) -> dict[str, Obj]:
        return self.objects.get(rt.plural, {})

    def _count(self, info: PodInfo, sign: int) -> None:
        self.phases[info.phase] += sign
        if info.node and info.phase not in ("Succeeded", "Failed"):
            usage = self.usage.get(info.node)
            if usage is None:
                usage = self.usage[info.node] = [0, 0, 0]
            usage[0] += sign * info.cpu_m
            usage[1] += sign * info.mem_b
            usage[2] += sign

    def update_pods(self, keys: set[str]) -> set[str]:
        """Index changed pods by node; returns the nodes whose pods changed."""
        nodes: set[str] = set()
        pods = self.of(kinds.POD)
        infos, count = self.pods, self._count
        for key in keys:
            old = infos.pop(key, None)
            if old is not None:
                count(old, -1)
                nodes.add(old.node)
            obj = pods.get(key)
            if obj is None:
                continue
            spec = obj.get("spec") or {}
            cpu = mem = 0
            for c in spec.get("containers") or ():
                req = (c.get("resources") or {}).get("requests") or {}
                cpu += parse_cpu(req.get("cpu"))
                mem += parse_mem(req.get("memory"))
            phase = (obj.get("status") or {}).get("phase") or "Pending"
            info = infos[key] = PodInfo(spec.get("nodeName") or "", phase, cpu, mem)
            count(info, 1)
            nodes.add(info.node)
        nodes.discard("")
        return nodes

    def node_usage(self, node: str) -> tuple[int, int, int]:
        """(cpu millicores, memory bytes, pod count) requested by pods bound to `node`."""
        cpu, mem, n = self.usage.get(node) or (0, 0, 0)
        return cpu, mem, n

    def sample_nodes(self, width: int = 11) -> None:
        """Record each node's requested/allocatable fractions for the sparklines."""
        for name, node in self.of(kinds.NODE).items():
            alloc = (node.get("status") or {}).get("allocatable") or {}
            cpu_a, mem_a = parse_cpu(alloc.get("cpu")), parse_mem(alloc.get("memory"))
            cpu, mem, _ = self.node_usage(name)
            cpu_h, mem_h = self.history.setdefault(name, (deque(maxlen=width), deque(maxlen=width)))
            cpu_h.append(cpu / cpu_a if cpu_a else 0.0)
            mem_h.append(mem / mem_a if mem_a else 0.0)

    def update_slices(self, keys: set[str]) -> None:
        """Count the endpoints of changed EndpointSlices by service."""
        slices = self.of(kinds.ENDPOINTSLICE)
        for key in keys:
            old = self.slices.pop(key, None)
            if old is not None:
                sums = self.endpoints[old[0]]
                sums[0] -= old[1]
                sums[1] -= old[2]
                if sums == [0, 0]:
                    del self.endpoints[old[0]]
                of_service = self.service_slices[old[0]]
                of_service.discard(key)
                if not of_service:
                    del self.service_slices[old[0]]
            eps = slices.get(key)
            service = slice_service(eps) if eps is not None else None
            if eps is None or service is None:
                continue
            ready, total = slice_counts(eps)
            self.slices[key] = (service, ready, total)
            self.service_slices.setdefault(service, set()).add(key)
            sums = self.endpoints.setdefault(service, [0, 0])
            sums[0] += ready
            sums[1] += total

    def service_endpoints(self, namespace: str, service: str) -> tuple[int, int]:
        """(ready, total) endpoints of a service's EndpointSlices."""
        ready, total = self.endpoints.get(f"{namespace}/{service}") or (0, 0)
        return ready, total

    def update_rules(self, keys: set[str]) -> bool:
        """Note which changed nodes have their service rules in sync; whether
        `rules_summary()` changed."""
        nodes = self.of(kinds.NODE)
        for key in keys:
            node = nodes.get(key)
            if node is not None and node_in_sync(node):
                self.rules_synced.add(key)
            else:
                self.rules_synced.discard(key)
        shown, self.rules_shown = self.rules_shown, self.rules_summary()
        return shown != self.rules_shown

    def rules_summary(self) -> tuple[int, int]:
        """(nodes whose service rules are in sync, nodes)."""
        return len(self.rules_synced), len(self.of(kinds.NODE))

    def ready_addresses(self, namespace: str, service: str) -> list[str]:
        """The addresses of a service's ready endpoints, from its EndpointSlices."""
        slices = self.of(kinds.ENDPOINTSLICE)
        keys = self.service_slices.get(f"{namespace}/{service}") or ()
        return ready_addresses(slices[k] for k in keys if k in slices)


RowsFunc = Callable[[Obj, Context], list[Row]]


@dataclass
class ViewSpec:
    name: str
    title: str
    rt: ResourceType
    headers: list[str]
    rows: RowsFunc
    # Names for `:view` besides the view's and its kind's (short names, singular, plural).
    more_aliases: tuple[str, ...] = ()
    # Other kinds whose changes re-render every row of this view.
    depends: tuple[ResourceType, ...] = ()
    # More kinds whose objects make rows here too. Then the view keys every
    # object "<plural>:<key>" (see object_keys and target).
    also: tuple[ResourceType, ...] = ()
    # Rows sort by (sort(obj), row key); None sorts by row key alone.
    sort: Callable[[Obj], str] | None = None
    reverse: bool = False
    resort_on_update: bool = False

    @property
    def aliases(self) -> tuple[str, ...]:
        """What `:` accepts for this view besides its name; the first is the shortest."""
        return (*self.rt.short_names, self.rt.singular, self.rt.plural, *self.more_aliases)

    @property
    def row_kinds(self) -> tuple[ResourceType, ...]:
        return (self.rt, *self.also)

    def objects(self, ctx: Context) -> dict[str, Obj]:
        """The objects that make rows, by the view's object keys."""
        if not self.also:
            return ctx.of(self.rt)
        return {f"{rt.plural}:{k}": obj for rt in self.row_kinds for k, obj in ctx.of(rt).items()}

    def object_keys(self, rt: ResourceType, keys: set[str]) -> set[str]:
        """The view's keys for objects of `rt` keyed `namespace/name`."""
        return {f"{rt.plural}:{k}" for k in keys} if self.also else keys

    def target(self, key: str) -> tuple[ResourceType, str]:
        """The kind and `namespace/name` of the object the view keys `key`."""
        if not self.also:
            return self.rt, key
        plural, _, name = key.partition(":")
        return next(rt for rt in self.row_kinds if rt.plural == plural), name


def _cols(kind: str, *headers: str) -> list[Callable[[Obj], str]]:
    by_header = {c[0]: c[1] for c in columns_for(kind, wide=True)}
    return [by_header[h] for h in headers]


def _ns(obj: Obj) -> str:
    return str(_meta(obj).get("namespace") or "")


@lru_cache(maxsize=8192)
def _age_at(timestamp: str | None, now_s: int) -> str:
    return age(timestamp, datetime.fromtimestamp(now_s, UTC))


def now() -> float:
    """The views' clock for ages, in seconds since the epoch; snapshot tests fix it."""
    return time.time()


def cached_age(timestamp: str | None) -> str:
    """`columns.age`, cached per timestamp and second: thousands of pods share a few."""
    return _age_at(timestamp, int(now()))


def _created(obj: Obj) -> str:
    return cached_age(_meta(obj).get("creationTimestamp"))


_POD_READY, _POD_STATUS, _POD_RESTARTS = _cols("Pod", "READY", "STATUS", "RESTARTS")


def pod_rows(obj: Obj, ctx: Context) -> list[Row]:
    # The hot path at 20,000 pods: plain field reads inline, derived cells from columns.py.
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace") or "", meta.get("name") or ""
    restarts = _POD_RESTARTS(obj)
    status = _POD_STATUS(obj)
    return [
        (
            f"{ns}/{name}",
            [
                ns,
                name,
                _POD_READY(obj),
                _status_text(status) if status != "Running" else status,
                _styled(restarts, "yellow") if restarts != "0" else restarts,
                (obj.get("spec") or {}).get("nodeName") or "<none>",
                (obj.get("status") or {}).get("podIP") or "<none>",
                cached_age(meta.get("creationTimestamp")),
            ],
        )
    ]


_DEPLOY = _cols("Deployment", "NAME", "READY", "UP-TO-DATE", "AVAILABLE")


def _progress(obj: Obj) -> Cell:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    replicas = spec.get("replicas")
    want = int(replicas) if replicas is not None else 1
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    if spec.get("paused"):
        return Text("paused", style="yellow")
    if want == 0 and total == 0:
        return "scaled to 0"
    if updated >= want and available >= want and total == want:
        return Text("complete", style="green")
    width = 10
    done = min(width, round(width * min(updated, available) / want)) if want else width
    return Text("█" * done + "░" * (width - done) + f" {min(updated, available)}/{want}", "cyan")


def deploy_rows(obj: Obj, ctx: Context) -> list[Row]:
    name, ready, updated, available = (f(obj) for f in _DEPLOY)
    return [
        (obj_key(obj), [_ns(obj), name, ready, updated, available, _progress(obj), _created(obj)])
    ]


_SVC = _cols("Service", "NAME", "TYPE", "CLUSTER-IP", "PORT(S)")


def service_rows(obj: Obj, ctx: Context) -> list[Row]:
    name, typ, ip, ports = (f(obj) for f in _SVC)
    ready, total = ctx.service_endpoints(_ns(obj), name)
    eps: Cell = f"{ready}/{total}"
    if not ready and (obj.get("spec") or {}).get("selector"):
        eps = _styled(eps, "yellow")
    synced, nodes = ctx.rules_summary()
    rules: Cell = f"{synced}/{nodes}" if synced == nodes else _styled(f"{synced}/{nodes}", "yellow")
    return [(obj_key(obj), [_ns(obj), name, typ, ip, ports, eps, rules, _created(obj)])]


def _endpoints_cell(addresses: list[str], shown: int = 3) -> Cell:
    if not addresses:
        return _styled("0", "bold red")
    more = f",+{len(addresses) - shown}" if len(addresses) > shown else ""
    return f"{len(addresses)} {','.join(addresses[:shown])}{more}"


def route_rows(obj: Obj, ctx: Context) -> list[Row]:
    """One row per route (an Ingress path, an HTTPRoute rule's match), keyed by
    the route table's name, with its live traffic."""
    out: list[Row] = []
    traffic = ctx.traffic
    for route in routes_of(obj):
        path = f"{route.path} ({route.path_type})"
        if route.headers:
            path += " " + ",".join(f"{k}={v}" for k, v in route.headers)
        addresses = sorted(
            {a for b in route.backends for a in ctx.ready_addresses(b.namespace, b.service)}
        )
        sample = traffic.routes.get(route.name)
        cells: list[Cell] = [
            route.namespace,
            route.host_text,
            path,
            f"{route.kind.lower()}/{route.owner}",
            ", ".join(b.label for b in route.backends) or "<none>",
            _endpoints_cell(addresses),
        ]
        if sample is None:
            cells += ["-", "-", "-", ""]
        else:
            share = sample.error_share
            errors: Cell = "-" if share is None else f"{share:.1%}"
            if share:
                errors = _styled(str(errors), "bold red")
            p99 = sample.p99_ms
            cells += [
                f"{sample.requests_per_second:.1f}",
                errors,
                "-" if p99 is None else f"{p99:.0f}ms",
                sparkline(traffic.fractions(route.name)),
            ]
        out.append((route.name, cells))
    return out


def _event_time(obj: Obj) -> str:
    return str(
        obj.get("lastTimestamp")
        or obj.get("eventTime")
        or obj.get("firstTimestamp")
        or _meta(obj).get("creationTimestamp")
        or ""
    )


def event_rows(obj: Obj, ctx: Context) -> list[Row]:
    typ = str(obj.get("type") or "Normal")
    involved = obj.get("involvedObject") or {}
    target = f"{str(involved.get('kind') or '').lower()}/{involved.get('name') or ''}"
    style = "bold yellow" if typ == "Warning" else ""
    cells: list[Cell] = [
        _ns(obj),
        cached_age(_event_time(obj) or None),
        Text(typ, style=style) if style else typ,
        Text(str(obj.get("reason") or ""), style=style) if style else str(obj.get("reason") or ""),
        target,
        str(obj.get("count") or 1),
        Text(str(obj.get("message") or ""), style=style)
        if style
        else str(obj.get("message") or ""),
    ]
    return [(obj_key(obj), cells)]


_NODE = _cols("Node", "NAME", "STATUS", "ROLES")


def node_rows(obj: Obj, ctx: Context) -> list[Row]:
    name, status, roles = (f(obj) for f in _NODE)
    alloc = (obj.get("status") or {}).get("allocatable") or {}
    cpu_a, mem_a = parse_cpu(alloc.get("cpu")), parse_mem(alloc.get("memory"))
    cpu, mem, pods = ctx.node_usage(name)
    cpu_h, mem_h = ctx.history.get(name, ([], []))
    cordoned = bool((obj.get("spec") or {}).get("unschedulable"))
    status_cell: Cell = (
        Text(status, style="bold red")
        if status.startswith(("NotReady", "Unknown"))
        else Text(status, style="yellow")
        if cordoned
        else status
    )
    cap = alloc.get("pods")
    return [
        (
            name,
            [
                name,
                status_cell,
                roles,
                # Sampled history, then the value now.
                f"{fmt_cpu(cpu)}/{fmt_cpu(cpu_a)} {sparkline([*cpu_h, cpu / cpu_a if cpu_a else 0])}",
                f"{fmt_mem(mem)}/{fmt_mem(mem_a)} {sparkline([*mem_h, mem / mem_a if mem_a else 0])}",
                f"{pods}/{cap}" if cap else str(pods),
                Text("cordoned", style="yellow") if cordoned else "",
                _created(obj),
            ],
        )
    ]


def _column_rows(kind: str, *headers: str) -> RowsFunc:
    """Rows of a view that shows a kind's own columns, after its namespace."""
    cells = _cols(kind, "NAME", *headers)

    def rows(obj: Obj, ctx: Context) -> list[Row]:
        return [(obj_key(obj), [_ns(obj), *(f(obj) for f in cells), _created(obj)])]

    return rows


def _column_view(rt: ResourceType, title: str, *headers: str) -> ViewSpec:
    """A view of a kind's own columns: DaemonSets, Jobs, CronJobs."""
    return ViewSpec(
        rt.plural,
        title,
        rt,
        ["NAMESPACE", "NAME", *headers, "AGE"],
        _column_rows(rt.kind, *headers),
    )


VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec(
        "pods",
        "Pods",
        kinds.POD,
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "NODE", "IP", "AGE"],
        pod_rows,
    ),
    ViewSpec(
        "deployments",
        "Deployments",
        kinds.DEPLOYMENT,
        ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "ROLLOUT", "AGE"],
        deploy_rows,
        more_aliases=("dp",),
    ),
    _column_view(
        kinds.DAEMONSET,
        "DaemonSets",
        *("DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR"),
    ),
    _column_view(kinds.JOB, "Jobs", "STATUS", "COMPLETIONS", "DURATION"),
    _column_view(
        kinds.CRONJOB, "CronJobs", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE"
    ),
    ViewSpec(
        "services",
        "Services",
        kinds.SERVICE,
        ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "ENDPOINTS", "RULES", "AGE"],
        service_rows,  # node changes mark it when the count in sync changes (App._changed)
        depends=(kinds.ENDPOINTSLICE,),
    ),
    ViewSpec(
        "ingress",
        "Ingress routes",
        kinds.INGRESS,
        [
            "NAMESPACE",
            "HOST",
            "PATH",
            "ROUTE",
            "BACKENDS",
            "ENDPOINTS",
            "REQ/S",
            "5XX",
            "P99",
            "TRAFFIC",
        ],
        route_rows,  # the traffic polls mark it (App._poll_traffic)
        more_aliases=("routes", "httproute", "httproutes"),
        depends=(kinds.ENDPOINTSLICE,),
        also=(kinds.HTTPROUTE,),
    ),
    ViewSpec(
        "nodes",
        "Nodes",
        kinds.NODE,
        ["NAME", "STATUS", "ROLES", "CPU req/alloc", "MEM req/alloc", "PODS", "CORDON", "AGE"],
        node_rows,  # pod changes mark their nodes through Context.update_pods
    ),
    ViewSpec(
        "events",
        "Events",
        kinds.EVENT,
        ["NAMESPACE", "LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE"],
        event_rows,
        sort=_event_time,
        reverse=True,
        resort_on_update=True,
    ),
)

# What the console's watch caches keep of each kind, where not the whole object.
PROJECTIONS: dict[str, Callable[[Obj], Obj]] = {kinds.POD.plural: slim_pod}

BY_ALIAS: dict[str, ViewSpec] = {a: v for v in VIEWS for a in (v.name, *v.aliases)}


def find_view(name: str) -> ViewSpec | None:
    return BY_ALIAS.get(name.strip().lstrip(":").lower())
