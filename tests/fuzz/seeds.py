"""A valid object of every kind the API serves: what the fuzzers create first,
and mutate into bodies."""

from __future__ import annotations

from typing import Any

from control.objects.kinds import RESOURCES, ResourceType

Obj = dict[str, Any]

NAMESPACE = "fuzz"
NAME = "seed"

_POD_SPEC: Obj = {
    "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]
}
_TEMPLATE: Obj = {"metadata": {"labels": {"app": "web"}}, "spec": _POD_SPEC}
_SELECTOR: Obj = {"matchLabels": {"app": "web"}}

_BODIES: dict[str, Obj] = {
    "Namespace": {},
    "Node": {"spec": {"podCIDR": "10.244.9.0/24"}},
    "Pod": {"metadata": {"labels": {"app": "web"}}, "spec": _POD_SPEC},
    "Service": {"spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    "Endpoints": {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
    "Secret": {"type": "Opaque", "data": {"k": "dg=="}, "stringData": {"s": "v"}},
    "ConfigMap": {"data": {"k": "v"}, "binaryData": {"b": "dg=="}},
    "Event": {
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": NAMESPACE},
        "reason": "Fuzzed",
        "message": "m",
        "type": "Normal",
        "count": 1,
    },
    "Deployment": {"spec": {"replicas": 1, "selector": _SELECTOR, "template": _TEMPLATE}},
    "ReplicaSet": {"spec": {"replicas": 1, "selector": _SELECTOR, "template": _TEMPLATE}},
    "DaemonSet": {"spec": {"selector": _SELECTOR, "template": _TEMPLATE}},
    "Job": {
        "spec": {
            "template": {"spec": {**_POD_SPEC, "restartPolicy": "Never"}},
            "backoffLimit": 1,
        }
    },
    "CronJob": {
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "spec": {"template": {"spec": {**_POD_SPEC, "restartPolicy": "OnFailure"}}}
            },
        }
    },
    "Ingress": {
        "spec": {
            "rules": [
                {
                    "host": "a.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        }
    },
    "IngressClass": {"spec": {"controller": "pilothouse.io/ingress"}},
    "EndpointSlice": {
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.2"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    },
    "GatewayClass": {"spec": {"controllerName": "pilothouse.io/gateway"}},
    "Gateway": {
        "spec": {
            "gatewayClassName": "pilothouse",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        }
    },
    "HTTPRoute": {
        "spec": {
            "parentRefs": [{"name": "web"}],
            "hostnames": ["a.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"name": "web", "port": 80, "weight": 1}],
                }
            ],
        }
    },
    "Lease": {"spec": {"holderIdentity": "a", "leaseDurationSeconds": 40}},
}


def seed(rt: ResourceType, name: str | None = NAME) -> Obj:
    """A valid `rt` object named `name` (in NAMESPACE when namespaced), or with
    a generateName when `name` is None."""
    meta: Obj = {"name": name} if name else {"generateName": "fz-"}
    if rt.namespaced:
        meta["namespace"] = NAMESPACE
    body = _BODIES[rt.kind]
    meta.update(body.get("metadata", {}))
    rest = {k: v for k, v in body.items() if k != "metadata"}
    return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": meta, **rest}


def seeded() -> list[ResourceType]:
    """The kinds with a seed: every kind the API serves."""
    return [rt for rt in RESOURCES if rt.kind in _BODIES]
