"""The table of resource types the API server serves.

One row per kind: where it lives in the REST tree, whether it is namespaced,
and which subresources it has. Models live beside this file, keyed by kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status: bool = False  # has the `status` subresource
    scale: bool = False  # has the `scale` subresource
    list_kind: str = ""
    categories: tuple[str, ...] = ()  # `kubectl get all` gets the kinds in "all"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`pods`, or `deployments.apps`: how Kubernetes names it in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular_resource(self) -> str:
        """`pod`, or `deployment.apps`: how kubectl names one object's type in its messages."""
        return f"{self.singular}.{self.group}" if self.group else self.singular

    def key(self, namespace: str | None, name: str) -> str:
        """The store key of one object."""
        if self.namespaced:
            return f"/registry/{self.plural}/{namespace}/{name}"
        return f"/registry/{self.plural}/{name}"

    def prefix(self, namespace: str | None = None) -> str:
        """The store prefix of a list: one namespace, or all of them."""
        if self.namespaced and namespace:
            return f"/registry/{self.plural}/{namespace}/"
        return f"/registry/{self.plural}/"

    def base_path(self, namespace: str | None = None) -> str:
        """The REST collection path."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"


def _rt(
    group: str,
    kind: str,
    plural: str,
    namespaced: bool,
    short: tuple[str, ...] = (),
    status: bool = False,
    scale: bool = False,
    version: str = "v1",
    categories: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        group,
        version,
        kind,
        plural,
        kind.lower(),
        namespaced,
        short,
        status,
        scale,
        f"{kind}List",
        categories,
    )


ALL = ("all",)
GATEWAY_API = ("gateway-api",)


GATEWAY_GROUP = "gateway.networking.k8s.io"

RESOURCES: tuple[ResourceType, ...] = (
    _rt("", "Namespace", "namespaces", False, ("ns",), status=True),
    _rt("", "Node", "nodes", False, ("no",), status=True),
    _rt("", "Pod", "pods", True, ("po",), status=True, categories=ALL),
    _rt("", "Service", "services", True, ("svc",), status=True, categories=ALL),
    _rt("", "Endpoints", "endpoints", True, ("ep",)),
    _rt("", "Secret", "secrets", True),
    _rt("", "ConfigMap", "configmaps", True, ("cm",)),
    _rt("", "Event", "events", True, ("ev",)),
    _rt("apps", "Deployment", "deployments", True, ("deploy",), True, True, categories=ALL),
    _rt("apps", "ReplicaSet", "replicasets", True, ("rs",), True, True, categories=ALL),
    _rt("networking.k8s.io", "Ingress", "ingresses", True, ("ing",), status=True),
    _rt("networking.k8s.io", "IngressClass", "ingressclasses", False),
    _rt("discovery.k8s.io", "EndpointSlice", "endpointslices", True),
    _rt(
        GATEWAY_GROUP,
        "GatewayClass",
        "gatewayclasses",
        False,
        ("gc",),
        True,
        categories=GATEWAY_API,
    ),
    _rt(GATEWAY_GROUP, "Gateway", "gateways", True, ("gtw",), True, categories=GATEWAY_API),
    _rt(GATEWAY_GROUP, "HTTPRoute", "httproutes", True, (), True, categories=GATEWAY_API),
    _rt("coordination.k8s.io", "Lease", "leases", True),
    _rt("apps", "DaemonSet", "daemonsets", True, ("ds",), status=True, categories=ALL),
    _rt("batch", "Job", "jobs", True, (), status=True, categories=ALL),
    _rt("batch", "CronJob", "cronjobs", True, ("cj",), status=True, categories=ALL),
)

GROUP_VERSIONS: tuple[tuple[str, str], ...] = (
    ("apps", "v1"),
    ("discovery.k8s.io", "v1"),
    ("networking.k8s.io", "v1"),
    (GATEWAY_GROUP, "v1"),
    ("coordination.k8s.io", "v1"),
    ("batch", "v1"),
)

_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}
_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_NAME: dict[str, ResourceType] = {}
for _r in RESOURCES:
    for _alias in (_r.plural, _r.singular, _r.kind.lower(), *_r.short_names):
        _BY_NAME[_alias] = _r
        _BY_NAME[f"{_alias}.{_r.group}"] = _r


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_KIND.get((api_version, kind))


def by_path(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PATH.get((group, version, plural))


def by_name(name: str) -> ResourceType | None:
    """Resolve what a user types (`po`, `pods`, `deployment`, `deploy.apps`)."""
    return _BY_NAME.get(name.lower())


def _require(api_version: str, kind: str) -> ResourceType:
    rt = by_kind(api_version, kind)
    if rt is None:
        raise KeyError(f"{api_version} {kind}")
    return rt


NAMESPACE = _require("v1", "Namespace")
NODE = _require("v1", "Node")
POD = _require("v1", "Pod")
SERVICE = _require("v1", "Service")
ENDPOINTS = _require("v1", "Endpoints")
SECRET = _require("v1", "Secret")
CONFIGMAP = _require("v1", "ConfigMap")
EVENT = _require("v1", "Event")
DEPLOYMENT = _require("apps/v1", "Deployment")
REPLICASET = _require("apps/v1", "ReplicaSet")
INGRESS = _require("networking.k8s.io/v1", "Ingress")
ENDPOINTSLICE = _require("discovery.k8s.io/v1", "EndpointSlice")
INGRESSCLASS = _require("networking.k8s.io/v1", "IngressClass")
GATEWAYCLASS = _require(f"{GATEWAY_GROUP}/v1", "GatewayClass")
GATEWAY = _require(f"{GATEWAY_GROUP}/v1", "Gateway")
HTTPROUTE = _require(f"{GATEWAY_GROUP}/v1", "HTTPRoute")
LEASE = _require("coordination.k8s.io/v1", "Lease")
DAEMONSET = _require("apps/v1", "DaemonSet")
JOB = _require("batch/v1", "Job")
CRONJOB = _require("batch/v1", "CronJob")


def object_key(obj: dict[str, Any]) -> str:
    """`namespace/name`, or `name` for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))
