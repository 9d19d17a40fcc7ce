"""Discovery documents: /version, /api, /apis and the per-group resource lists."""

from __future__ import annotations

import platform
from typing import Any

from control.objects.kinds import GROUP_VERSIONS, RESOURCES, ResourceType

# The Kubernetes API level served: kubectl of this minor version warns of no skew.
KUBE_VERSION = (1, 37)
_ALL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
# Kubernetes serves no deletecollection for namespaces.
_NAMESPACE_VERBS = [v for v in _ALL if v != "deletecollection"]


def git_version(build: str = "") -> str:
    """`v1.37.0-pilothouse`, with `.build` when given (as `-eks-...` and `-gke.N` do)."""
    major, minor = KUBE_VERSION
    return f"v{major}.{minor}.0-pilothouse" + (f".{build}" if build else "")


def version() -> dict[str, Any]:
    major, minor = KUBE_VERSION
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "major": str(major),
        "minor": str(minor),
        "gitVersion": git_version(),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"linux/{machine}",
    }


def core_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def _group(name: str, version_: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{name}/{version_}", "version": version_}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


def group_list() -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g, v) for g, v in GROUP_VERSIONS],
    }


def group(name: str) -> dict[str, Any] | None:
    for g, v in GROUP_VERSIONS:
        if g == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(g, v)}
    return None


def _entries(rt: ResourceType) -> list[dict[str, Any]]:
    main = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": _NAMESPACE_VERBS if rt.kind == "Namespace" else _ALL,
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    out = [main]
    if rt.status:
        out.append(
            {
                "name": f"{rt.plural}/status",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    if rt.scale:
        out.append(
            {
                "name": f"{rt.plural}/scale",
                "singularName": "",
                "namespaced": rt.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }
        )
    return out


def resource_list(group_: str, version_: str) -> dict[str, Any] | None:
    rts = [r for r in RESOURCES if r.group == group_ and r.version == version_]
    if not rts:
        return None
    resources = [e for rt in rts for e in _entries(rt)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group_}/{version_}" if group_ else version_,
        "resources": resources,
    }


def document(path: str) -> dict[str, Any] | None:
    """The discovery document a GET of `path` answers with, if it names one."""
    if path == "/version":
        return version()
    if path == "/api":
        return core_versions()
    if path == "/apis":
        return group_list()
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2 and parts[0] == "api":
        return resource_list("", parts[1])
    if len(parts) == 2 and parts[0] == "apis":
        return group(parts[1])
    if len(parts) == 3 and parts[0] == "apis":
        return resource_list(parts[1], parts[2])
    return None
