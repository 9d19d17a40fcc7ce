"""The columns `get` shows for each kind, as kubectl shows them.

One place for them, so that the CLI and the console agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agent.protocol.primitives import parse_rfc3339
from control.objects import Obj

Column = tuple[str, Callable[[Obj], str], bool]  # header, cell, wide-only


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
    """The STATUS column: a waiting or terminated reason beats the phase."""
    if _get(pod, "metadata", "deletionTimestamp"):
        return "Terminating"
    for cs in _get(pod, "status", "containerStatuses") or []:
        state = cs.get("state") or {}
        for key in ("waiting", "terminated"):
            reason = (state.get(key) or {}).get("reason")
            if reason:
                return str(reason)
    return str(_get(pod, "status", "phase") or "Pending")


def _pod_ready(pod: Obj) -> str:
    statuses = _get(pod, "status", "containerStatuses") or []
    total = len(_get(pod, "spec", "containers") or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    return f"{ready}/{total}"


def _pod_restarts(pod: Obj) -> str:
    return str(
        sum(
            int(cs.get("restartCount") or 0)
            for cs in _get(pod, "status", "containerStatuses") or []
        )
    )


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


NAME: Column = ("NAME", _name, False)
AGE: Column = ("AGE", _age, False)

COLUMNS: dict[str, list[Column]] = {
    "Pod": [
        NAME,
        ("READY", _pod_ready, False),
        ("STATUS", pod_status, False),
        ("RESTARTS", _pod_restarts, False),
        AGE,
        ("IP", _str("status", "podIP"), True),
        ("NODE", _str("spec", "nodeName"), True),
    ],
    "Deployment": [
        NAME,
        ("READY", _of("readyReplicas"), False),
        ("UP-TO-DATE", _num("status", "updatedReplicas"), False),
        ("AVAILABLE", _num("status", "availableReplicas"), False),
        AGE,
        ("IMAGES", _images, True),
        ("SELECTOR", _selector, True),
    ],
    "ReplicaSet": [
        NAME,
        ("DESIRED", _num("spec", "replicas"), False),
        ("CURRENT", _num("status", "replicas"), False),
        ("READY", _num("status", "readyReplicas"), False),
        AGE,
        ("IMAGES", _images, True),
    ],
    "Service": [
        NAME,
        ("TYPE", _str("spec", "type", default="ClusterIP"), False),
        ("CLUSTER-IP", _str("spec", "clusterIP"), False),
        ("EXTERNAL-IP", _external_ip, False),
        ("PORT(S)", _ports, False),
        AGE,
        ("SELECTOR", _selector, True),
    ],
    "Ingress": [
        NAME,
        ("CLASS", _str("spec", "ingressClassName"), False),
        ("HOSTS", _ingress_hosts, False),
        (
            "ADDRESS",
            lambda o: ",".join(
                str(i.get("ip") or i.get("hostname"))
                for i in _get(o, "status", "loadBalancer", "ingress") or []
            ),
            False,
        ),
        ("PORTS", lambda o: "80, 443" if _get(o, "spec", "tls") else "80", False),
        AGE,
    ],
    "IngressClass": [
        NAME,
        ("CONTROLLER", _str("spec", "controller"), False),
        ("PARAMETERS", _ingress_class_parameters, False),
        AGE,
    ],
    "GatewayClass": [
        NAME,
        ("CONTROLLER", _str("spec", "controllerName", default=""), False),
        ("ACCEPTED", _condition_status("Accepted"), False),
        AGE,
    ],
    "Gateway": [
        NAME,
        ("CLASS", _str("spec", "gatewayClassName", default=""), False),
        (
            "ADDRESS",
            lambda o: ",".join(str(a.get("value")) for a in _get(o, "status", "addresses") or []),
            False,
        ),
        ("PROGRAMMED", _condition_status("Programmed"), False),
        AGE,
    ],
    "HTTPRoute": [NAME, ("HOSTNAMES", _hostnames, False), AGE],
    "Lease": [NAME, ("HOLDER", _str("spec", "holderIdentity", default=""), False), AGE],
    "Node": [
        NAME,
        ("STATUS", node_status, False),
        ("ROLES", _roles, False),
        AGE,
        ("VERSION", _str("status", "nodeInfo", "kubeletVersion", default=""), False),
        (
            "INTERNAL-IP",
            lambda o: next(
                (
                    str(a.get("address"))
                    for a in _get(o, "status", "addresses") or []
                    if a.get("type") == "InternalIP"
                ),
                "<none>",
            ),
            True,
        ),
    ],
    "Namespace": [NAME, ("STATUS", _str("status", "phase", default="Active"), False), AGE],
    "Endpoints": [NAME, ("ENDPOINTS", _endpoints, False), AGE],
    "EndpointSlice": [
        NAME,
        ("ADDRESSTYPE", _str("addressType"), False),
        ("PORTS", _slice_ports, False),
        ("ENDPOINTS", _slice_endpoints, False),
        AGE,
    ],
    "ConfigMap": [
        NAME,
        ("DATA", lambda o: str(len(o.get("data") or {}) + len(o.get("binaryData") or {})), False),
        AGE,
    ],
    "Secret": [
        NAME,
        ("TYPE", _str("type", default="Opaque"), False),
        ("DATA", lambda o: str(len(o.get("data") or {})), False),
        AGE,
    ],
    "Event": [
        (
            "LAST SEEN",
            lambda o: age(o.get("lastTimestamp") or _get(o, "metadata", "creationTimestamp")),
            False,
        ),
        ("TYPE", _str("type", default="Normal"), False),
        ("REASON", _str("reason", default=""), False),
        (
            "OBJECT",
            lambda o: (
                f"{str(_get(o, 'involvedObject', 'kind') or '').lower()}/{_get(o, 'involvedObject', 'name') or ''}"
            ),
            False,
        ),
        ("MESSAGE", _str("message", default=""), False),
    ],
}


def columns_for(kind: str, *, wide: bool = False) -> list[Column]:
    cols = COLUMNS.get(kind, [NAME, AGE])
    return [c for c in cols if wide or not c[2]]


def rows(kind: str, objs: list[Obj], *, wide: bool = False) -> tuple[list[str], list[list[str]]]:
    cols = columns_for(kind, wide=wide)
    return [c[0] for c in cols], [[c[1](o) for c in cols] for o in objs]
