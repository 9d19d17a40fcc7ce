"""Discovery documents: /version, /api, /apis and the per-group resource lists."""

from __future__ import annotations

import platform
from typing import Any

from control.api.apiresources import ApiResource, group_versions, optional_names, resources_of

# The Kubernetes API level served: kubectl of this minor version warns of no skew.
KUBE_VERSION = (1, 37)


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
        "groups": [_group(g, v) for g, v in group_versions()],
    }


def group(name: str) -> dict[str, Any] | None:
    for g, v in group_versions():
        if g == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(g, v)}
    return None


def _entries(r: ApiResource) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": list(r.verbs),
        **optional_names(r),
    }
    out = [main]
    for sub in r.subresources:
        entry: dict[str, Any] = {
            "name": f"{r.plural}/{sub.name}",
            "singularName": "",
            "namespaced": r.namespaced,
        }
        if sub.group is not None:
            entry["group"], entry["version"] = sub.group, sub.version
        entry["kind"], entry["verbs"] = sub.kind, list(sub.verbs)
        out.append(entry)
    return out


def resource_list(group_: str, version_: str) -> dict[str, Any] | None:
    served = resources_of(group_, version_)
    if not served and (group_, version_) not in group_versions():
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group_}/{version_}" if group_ else version_,
        "resources": [e for r in served for e in _entries(r)],
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
