"""The columns `get` shows for each kind, as kubectl shows them.

One place for them, so that the CLI and the console agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from agent.protocol.primitives import parse_rfc3339
from control.objects import Obj


class Column(NamedTuple):
    """One column: its header as `get` prints it, its cell, whether only
    `-o wide` shows it (Kubernetes' priority 1), and what a meta.k8s.io
    Table says of it."""

    header: str
    cell: Callable[[Obj], str]
    wide: bool = False
    name: str = ""  # Kubernetes' name, when it is not the header capitalised
    type: str = "string"  # "integer" cells are sent as numbers in a Table
    format: str = ""  # "name" marks the object's name
    description: str = ""

    @property
    def title(self) -> str:
        return self.name or self.header.capitalize()


def _get(obj: Obj, *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """Kubernetes' short age: 45s, 12m, 3h, 5d."""
    if not timestamp:
        return "<unknown>"
    try:
        then = parse_rfc3339(timestamp)
    except ValueError:
        return "<unknown>"
    secs = int(((now or datetime.now(UTC)) - then).total_seconds())
    if secs < 0:
        secs = 0
    if secs < 120:
        return f"{secs}s"
    if secs < 3600 * 2:
        return f"{secs // 60}m"
    if secs < 86400 * 2:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def _age(obj: Obj) -> str:
    return age(_get(obj, "metadata", "creationTimestamp"))


def _name(obj: Obj) -> str:
    return str(_get(obj, "metadata", "name") or "")


def pod_status(pod: Obj) -> str:
    """The STATUS column, as kubectl's printer makes it: the phase (or reason),
    `Init:N/M` or the reason of the first init container that has not
    succeeded, then the reason of the first container with one."""
    status = pod.get("status") or {}
    reason = str(status.get("reason") or status.get("phase") or "Pending")
    init_specs = _get(pod, "spec", "initContainers") or []
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting") or {}
        if term is not None and term.get("exitCode") == 0:
            continue
        if term is not None:
            reason = "Init:" + _terminated_reason(term)
        elif waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    if not initializing or _condition_true(pod, "Initialized"):
        running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            term, waiting = state.get("terminated"), state.get("waiting") or {}
            if waiting.get("reason"):
                reason = str(waiting["reason"])
            elif term is not None:
                reason = _terminated_reason(term)
            elif cs.get("ready") and state.get("running") is not None:
                running = True
        if reason == "Completed" and running:
            reason = "Running" if _condition_true(pod, "Ready") else "NotReady"
    deleting = _get(pod, "metadata", "deletionTimestamp")
    if deleting and status.get("reason") == "NodeLost":
        return "Unknown"
    if deleting and status.get("phase") not in ("Succeeded", "Failed"):
        return "Terminating"
    return reason


def _terminated_reason(term: Obj) -> str:
    if term.get("reason"):
        return str(term["reason"])
    if term.get("signal"):
        return f"Signal:{term['signal']}"
    return f"ExitCode:{term.get('exitCode', 0)}"


def _condition_true(obj: Obj, type_: str) -> bool:
    conditions = _get(obj, "status", "conditions") or []
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def _pod_ready(pod: Obj) -> str:
    statuses = _get(pod, "status", "containerStatuses") or []
    total = len(_get(pod, "spec", "containers") or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    return f"{ready}/{total}"


def _pod_restarts(pod: Obj) -> str:
    """kubectl's RESTARTS: the init containers' while the pod initializes."""
    status = pod.get("status") or {}
    init = status.get("initContainerStatuses") or []
    initialized = not init or _condition_true(pod, "Initialized")
    statuses = status.get("containerStatuses") if initialized else init
    return str(sum(int(cs.get("restartCount") or 0) for cs in statuses or []))


def _ports(svc: Obj) -> str:
    out = []
    for p in _get(svc, "spec", "ports") or []:
        s = f"{p.get('port')}"
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        out.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _external_ip(svc: Obj) -> str:
    """kubectl's EXTERNAL-IP: external IPs; for a LoadBalancer its ingress
    first (`<pending>` until it has one); for ExternalName the name."""
    kind = _get(svc, "spec", "type") or "ClusterIP"
    external = [str(ip) for ip in _get(svc, "spec", "externalIPs") or []]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = _get(svc, "status", "loadBalancer", "ingress") or []
        addresses = (i.get("ip") or i.get("hostname") for i in ingress)
        balancers = [str(a) for a in addresses if a]
        return ",".join(balancers + external) or "<pending>"
    if kind == "ExternalName":
        return str(_get(svc, "spec", "externalName") or "")
    return "<unknown>"


def node_status(node: Obj) -> str:
    """As kubectl prints it: Ready=False and Ready=Unknown (the node stopped
    reporting) are both NotReady; Unknown only when there is no Ready condition."""
    ready = "Unknown"
    for c in _get(node, "status", "conditions") or []:
        if c.get("type") == "Ready":
            ready = "Ready" if c.get("status") == "True" else "NotReady"
    if _get(node, "spec", "unschedulable"):
        ready += ",SchedulingDisabled"
    return ready


def _roles(node: Obj) -> str:
    labels = _get(node, "metadata", "labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    return ",".join(roles) or "<none>"


def _endpoints(ep: Obj) -> str:
    addrs = []
    for subset in _get(ep, "subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for a in subset.get("addresses") or []:
            for port in ports:
                addrs.append(f"{a.get('ip')}:{port}" if port else str(a.get("ip")))
    if not addrs:
        return "<none>"
    shown = ",".join(addrs[:3])
    return shown + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")


def _listed(items: list[str], shown: int = 3) -> str:
    """kubectl's short list: the first three, then how many more; `<unset>` when empty."""
    if not items:
        return "<unset>"
    more = len(items) - shown
    return ",".join(items[:shown]) + (f" + {more} more..." if more > 0 else "")


def _slice_ports(eps: Obj) -> str:
    return _listed(
        [
            str(p["port"]) if p.get("port") is not None else str(p.get("name") or "*")
            for p in _get(eps, "ports") or []
        ]
    )


def _slice_endpoints(eps: Obj) -> str:
    return _listed([str(a) for e in _get(eps, "endpoints") or [] for a in e.get("addresses") or []])


def _ingress_hosts(ing: Obj) -> str:
    hosts = [r.get("host") or "*" for r in _get(ing, "spec", "rules") or []]
    return ",".join(hosts) or "*"


def _selector(obj: Obj) -> str:
    sel = _get(obj, "spec", "selector") or {}
    labels = sel.get("matchLabels", sel) if isinstance(sel, dict) else {}
    return ",".join(f"{k}={v}" for k, v in labels.items() if isinstance(v, str)) or "<none>"


def _images(obj: Obj) -> str:
    containers = _get(obj, "spec", "template", "spec", "containers") or []
    return ",".join(str(c.get("image")) for c in containers)


def _str(*path: str, default: str = "<none>") -> Callable[[Obj], str]:
    def cell(obj: Obj) -> str:
        value = _get(obj, *path)
        return default if value in (None, "") else str(value)

    return cell


def _num(*path: str) -> Callable[[Obj], str]:
    def cell(obj: Obj) -> str:
        return str(_get(obj, *path) or 0)

    return cell


def _of(*path: str) -> Callable[[Obj], str]:
    """`ready/desired` as in `2/3`."""

    def cell(obj: Obj) -> str:
        return f"{_get(obj, 'status', path[0]) or 0}/{_get(obj, 'spec', 'replicas') or 0}"

    return cell


def _condition_status(kind_type: str) -> Callable[[Obj], str]:
    """A CRD column `.status.conditions[?(@.type==...)].status`: empty when unset."""

    def cell(obj: Obj) -> str:
        for c in _get(obj, "status", "conditions") or []:
            if c.get("type") == kind_type:
                return str(c.get("status") or "")
        return ""

    return cell


def _ingress_class_parameters(obj: Obj) -> str:
    params = _get(obj, "spec", "parameters")
    if not params:
        return "<none>"
    kind = str(params.get("kind") or "")
    if params.get("apiGroup"):
        kind = f"{kind}.{params['apiGroup']}"
    return f"{kind}/{params.get('name') or ''}"


def _hostnames(obj: Obj) -> str:
    """As kubectl prints a CRD column holding a list: compact JSON."""
    hosts = _get(obj, "spec", "hostnames")
    return json.dumps(hosts, separators=(",", ":")) if hosts else ""


NAME = Column("NAME", _name, format="name", description="The object's name.")
AGE = Column("AGE", _age, description="Time since the object was created.")


def _integer(header: str, cell: Callable[[Obj], str], description: str = "") -> Column:
    return Column(header, cell, type="integer", description=description)


def _containers(obj: Obj) -> str:
    containers = _get(obj, "spec", "template", "spec", "containers") or []
    return ",".join(str(c.get("name")) for c in containers)


def _readiness_gates(pod: Obj) -> str:
    gates = _get(pod, "spec", "readinessGates") or []
    if not gates:
        return "<none>"
    wanted = {g.get("conditionType") for g in gates}
    true = sum(
        1
        for c in _get(pod, "status", "conditions") or []
        if c.get("type") in wanted and c.get("status") == "True"
    )
    return f"{true}/{len(gates)}"


def _node_address(kind: str) -> Callable[[Obj], str]:
    def cell(node: Obj) -> str:
        for a in _get(node, "status", "addresses") or []:
            if a.get("type") == kind:
                return str(a.get("address"))
        return "<none>"

    return cell


def _event_source(event: Obj) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or ""
    return f"{component}, {host}" if host else str(component)


# A Deployment's and a ReplicaSet's last columns.
_WORKLOAD_WIDE = (
    AGE,
    Column("CONTAINERS", _containers, wide=True),
    Column("IMAGES", _images, wide=True),
    Column("SELECTOR", _selector, wide=True),
)

# Kubernetes' own columns (kube-apiserver's printers, and the Gateway API
# CRDs' additionalPrinterColumns); `wide` ones have priority 1.
COLUMNS: dict[str, list[Column]] = {
    "Pod": [
        NAME,
        Column("READY", _pod_ready),
        Column("STATUS", pod_status),
        Column("RESTARTS", _pod_restarts),
        AGE,
        Column("IP", _str("status", "podIP"), wide=True, name="IP"),
        Column("NODE", _str("spec", "nodeName"), wide=True),
        Column(
            "NOMINATED NODE",
            _str("status", "nominatedNodeName"),
            wide=True,
            name="Nominated Node",
        ),
        Column("READINESS GATES", _readiness_gates, wide=True, name="Readiness Gates"),
    ],
    "Deployment": [
        NAME,
        Column("READY", _of("readyReplicas")),
        _integer("UP-TO-DATE", _num("status", "updatedReplicas")),
        _integer("AVAILABLE", _num("status", "availableReplicas")),
        *_WORKLOAD_WIDE,
    ],
    "ReplicaSet": [
        NAME,
        _integer("DESIRED", _num("spec", "replicas")),
        _integer("CURRENT", _num("status", "replicas")),
        _integer("READY", _num("status", "readyReplicas")),
        *_WORKLOAD_WIDE,
    ],
    "Service": [
        NAME,
        Column("TYPE", _str("spec", "type", default="ClusterIP")),
        Column("CLUSTER-IP", _str("spec", "clusterIP"), name="Cluster-IP"),
        Column("EXTERNAL-IP", _external_ip, name="External-IP"),
        Column("PORT(S)", _ports),
        AGE,
        Column("SELECTOR", _selector, wide=True),
    ],
    "Ingress": [
        NAME,
        Column("CLASS", _str("spec", "ingressClassName")),
        Column("HOSTS", _ingress_hosts),
        Column(
            "ADDRESS",
            lambda o: ",".join(
                str(i.get("ip") or i.get("hostname"))
                for i in _get(o, "status", "loadBalancer", "ingress") or []
            ),
        ),
        Column("PORTS", lambda o: "80, 443" if _get(o, "spec", "tls") else "80"),
        AGE,
    ],
    "IngressClass": [
        NAME,
        Column("CONTROLLER", _str("spec", "controller")),
        Column("PARAMETERS", _ingress_class_parameters),
        AGE,
    ],
    "GatewayClass": [
        NAME,
        Column("CONTROLLER", _str("spec", "controllerName", default="")),
        Column("ACCEPTED", _condition_status("Accepted")),
        AGE,
        Column("DESCRIPTION", _str("spec", "description", default=""), wide=True),
    ],
    "Gateway": [
        NAME,
        Column("CLASS", _str("spec", "gatewayClassName", default="")),
        Column(
            "ADDRESS",
            lambda o: ",".join(str(a.get("value")) for a in _get(o, "status", "addresses") or []),
        ),
        Column("PROGRAMMED", _condition_status("Programmed")),
        AGE,
    ],
    "HTTPRoute": [NAME, Column("HOSTNAMES", _hostnames), AGE],
    "Lease": [NAME, Column("HOLDER", _str("spec", "holderIdentity", default="")), AGE],
    "Node": [
        NAME,
        Column("STATUS", node_status),
        Column("ROLES", _roles),
        AGE,
        Column("VERSION", _str("status", "nodeInfo", "kubeletVersion", default="")),
        Column("INTERNAL-IP", _node_address("InternalIP"), wide=True, name="Internal-IP"),
        Column("EXTERNAL-IP", _node_address("ExternalIP"), wide=True, name="External-IP"),
        Column(
            "OS-IMAGE",
            _str("status", "nodeInfo", "osImage", default="<unknown>"),
            wide=True,
            name="OS-Image",
        ),
        Column(
            "KERNEL-VERSION",
            _str("status", "nodeInfo", "kernelVersion", default="<unknown>"),
            wide=True,
            name="Kernel-Version",
        ),
        Column(
            "CONTAINER-RUNTIME",
            _str("status", "nodeInfo", "containerRuntimeVersion", default="<unknown>"),
            wide=True,
            name="Container-Runtime",
        ),
    ],
    "Namespace": [NAME, Column("STATUS", _str("status", "phase", default="Active")), AGE],
    "Endpoints": [NAME, Column("ENDPOINTS", _endpoints), AGE],
    "EndpointSlice": [
        NAME,
        Column("ADDRESSTYPE", _str("addressType"), name="AddressType"),
        Column("PORTS", _slice_ports),
        Column("ENDPOINTS", _slice_endpoints),
        AGE,
    ],
    "ConfigMap": [
        NAME,
        _integer("DATA", lambda o: str(len(o.get("data") or {}) + len(o.get("binaryData") or {}))),
        AGE,
    ],
    "Secret": [
        NAME,
        Column("TYPE", _str("type", default="Opaque")),
        _integer("DATA", lambda o: str(len(o.get("data") or {}))),
        AGE,
    ],
    "Event": [
        Column(
            "LAST SEEN",
            lambda o: age(o.get("lastTimestamp") or _get(o, "metadata", "creationTimestamp")),
            name="Last Seen",
        ),
        Column("TYPE", _str("type", default="Normal")),
        Column("REASON", _str("reason", default="")),
        Column(
            "OBJECT",
            lambda o: (
                f"{str(_get(o, 'involvedObject', 'kind') or '').lower()}/{_get(o, 'involvedObject', 'name') or ''}"
            ),
        ),
        Column("SUBOBJECT", _str("involvedObject", "fieldPath", default=""), wide=True),
        Column("SOURCE", _event_source, wide=True),
        Column("MESSAGE", _str("message", default="")),
        Column(
            "FIRST SEEN",
            lambda o: age(o.get("firstTimestamp") or _get(o, "metadata", "creationTimestamp")),
            wide=True,
            name="First Seen",
        ),
        Column("COUNT", lambda o: str(o.get("count") or 1), wide=True),
        NAME._replace(wide=True),
    ],
}


def columns_for(kind: str, *, wide: bool = False) -> list[Column]:
    cols = COLUMNS.get(kind, [NAME, AGE])
    return [c for c in cols if wide or not c.wide]


def aligned(headers: list[str], body: list[list[str]]) -> list[str]:
    """A table as text lines, as kubectl prints one: columns padded, three spaces apart."""
    widths = [len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    return [
        "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [headers, *body]
    ]


def rows(kind: str, objs: list[Obj], *, wide: bool = False) -> tuple[list[str], list[list[str]]]:
    cols = columns_for(kind, wide=wide)
    return [c.header for c in cols], [[c.cell(o) for c in cols] for o in objs]


# -- DaemonSet, Job, CronJob -----------------------------------------------------


def human_duration(seconds: float) -> str:
    """apimachinery's HumanDuration: `45s`, `5m30s`, `3h10m`, `2d5h`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 120:
        return f"{max(s, 0)}s"
    minutes, hours = s // 60, s // 3600
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def _since(timestamp: str | None, until: str | None = None) -> str:
    """HumanDuration from `timestamp` to `until` (or now); `<none>` without one."""
    if not timestamp:
        return "<none>"
    try:
        start = parse_rfc3339(timestamp)
        end = parse_rfc3339(until) if until else datetime.now(UTC)
    except ValueError:
        return "<unknown>"
    return human_duration((end - start).total_seconds())


def _node_selector(ds: Obj) -> str:
    selector = _get(ds, "spec", "template", "spec", "nodeSelector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"


def _has_condition(obj: Obj, kind_type: str) -> bool:
    return any(
        c.get("type") == kind_type and c.get("status") == "True"
        for c in _get(obj, "status", "conditions") or []
    )


def job_status(job: Obj) -> str:
    """kubectl's STATUS of a Job: its finished conditions first."""
    if _has_condition(job, "Complete"):
        return "Complete"
    if _has_condition(job, "Failed"):
        return "Failed"
    if _get(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    for reason in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _has_condition(job, reason):
            return reason
    return "Running"


def job_completions(job: Obj) -> str:
    succeeded = _get(job, "status", "succeeded") or 0
    completions = _get(job, "spec", "completions")
    if completions is not None:
        return f"{succeeded}/{completions}"
    parallelism = _get(job, "spec", "parallelism") or 0
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(job: Obj) -> str:
    start = _get(job, "status", "startTime")
    if not start:
        return ""
    return _since(start, _get(job, "status", "completionTime"))


def _job_template(cronjob: Obj) -> Obj:
    return {"spec": _get(cronjob, "spec", "jobTemplate", "spec") or {}}


def _suspend(cronjob: Obj) -> str:
    value = _get(cronjob, "spec", "suspend")
    return "<unset>" if value is None else str(bool(value))


COLUMNS["DaemonSet"] = [
    NAME,
    _integer("DESIRED", _num("status", "desiredNumberScheduled")),
    _integer("CURRENT", _num("status", "currentNumberScheduled")),
    _integer("READY", _num("status", "numberReady")),
    _integer("UP-TO-DATE", _num("status", "updatedNumberScheduled")),
    _integer("AVAILABLE", _num("status", "numberAvailable")),
    Column("NODE SELECTOR", _node_selector, name="Node Selector"),
    *_WORKLOAD_WIDE,
]
COLUMNS["Job"] = [
    NAME,
    Column("STATUS", job_status, description="Status of the job."),
    Column("COMPLETIONS", job_completions),
    Column("DURATION", _job_duration),
    *_WORKLOAD_WIDE,
]
COLUMNS["CronJob"] = [
    NAME,
    Column("SCHEDULE", _str("spec", "schedule", default="")),
    Column("TIMEZONE", _str("spec", "timeZone"), name="Timezone"),
    Column("SUSPEND", _suspend),
    _integer("ACTIVE", lambda o: str(len(_get(o, "status", "active") or []))),
    Column(
        "LAST SCHEDULE",
        lambda o: _since(_get(o, "status", "lastScheduleTime")),
        name="Last Schedule",
    ),
    AGE,
    Column("CONTAINERS", lambda o: _containers(_job_template(o)), wide=True),
    Column("IMAGES", lambda o: _images(_job_template(o)), wide=True),
    Column("SELECTOR", lambda o: _selector(_job_template(o)), wide=True),
]
