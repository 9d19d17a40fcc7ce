"""What the API server serves, as discovery describes it: every group,
version and resource with its verbs, scope, names and subresources.

The stored kinds come from the kind table (control.objects.kinds), so a new
kind is listed with no extra work; to them are added the subresources served
beside status and scale (pods' log, exec, attach, eviction, binding; a
namespace's finalize) and the resources that are not stored: metrics.k8s.io
(control.api.metrics) and the self reviews of authorization.k8s.io and
authentication.k8s.io (control.api.selfreview). The policy group is listed
with no resources of its own (PodDisruptionBudgets are not served): its
Eviction is a subresource of pods, and clients look for the group.
"""

from __future__ import annotations

from dataclasses import dataclass

from control.objects.kinds import GROUP_VERSIONS, RESOURCES, ResourceType

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True, slots=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None  # of the kind it answers with, when not the resource's
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ApiResource:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


# Subresources served by handlers of their own (control.api.server's routes).
_EXTRA_SUBRESOURCES: dict[str, tuple[Subresource, ...]] = {
    "Pod": (
        Subresource("attach", "PodAttachOptions", ("create", "get")),
        Subresource("binding", "Binding", ("create",)),
        Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
        Subresource("exec", "PodExecOptions", ("create", "get")),
        Subresource("log", "Pod", ("get",)),
    ),
    "Namespace": (Subresource("finalize", "Namespace", ("update",)),),
}
# Groups served with no resources of their own: policy/v1 holds the Eviction
# of pods/eviction (kubectl drain evicts only when discovery shows it).
_EMPTY_GROUP_VERSIONS = (("policy", "v1"),)

METRICS_GROUP = "metrics.k8s.io"
_READ = ("get", "list")
_UNSTORED: tuple[ApiResource, ...] = (
    ApiResource(METRICS_GROUP, "v1beta1", "nodes", "", "NodeMetrics", False, _READ),
    ApiResource(METRICS_GROUP, "v1beta1", "pods", "", "PodMetrics", True, _READ),
    ApiResource(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        False,
        ("create",),
    ),
    ApiResource(
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        "SelfSubjectRulesReview",
        False,
        ("create",),
    ),
    ApiResource(
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "selfsubjectreview",
        "SelfSubjectReview",
        False,
        ("create",),
    ),
)


def _from_kind(rt: ResourceType) -> ApiResource:
    subs: list[Subresource] = list(_EXTRA_SUBRESOURCES.get(rt.kind, ()))
    if rt.status:
        subs.append(Subresource("status", rt.kind, _SUBRESOURCE_VERBS))
    if rt.scale:
        subs.append(Subresource("scale", "Scale", _SUBRESOURCE_VERBS, "autoscaling", "v1"))
    # Kubernetes serves no deletecollection for namespaces.
    verbs = tuple(v for v in ALL_VERBS if v != "deletecollection" or rt.kind != "Namespace")
    return ApiResource(
        rt.group,
        rt.version,
        rt.plural,
        rt.singular,
        rt.kind,
        rt.namespaced,
        verbs,
        rt.short_names,
        rt.categories,
        tuple(sorted(subs, key=lambda s: s.name)),
    )


def optional_names(r: ApiResource) -> dict[str, list[str]]:
    """shortNames and categories, where a resource has them (both forms of discovery)."""
    names = {"shortNames": list(r.short_names), "categories": list(r.categories)}
    return {key: value for key, value in names.items() if value}


SERVED: tuple[ApiResource, ...] = (*(_from_kind(rt) for rt in RESOURCES), *_UNSTORED)


def group_versions() -> list[tuple[str, str]]:
    """Every (group, version) served but the core group's: the kind table's first."""
    seen: dict[tuple[str, str], None] = dict.fromkeys(GROUP_VERSIONS)
    for r in SERVED:
        if r.group:
            seen.setdefault((r.group, r.version), None)
    seen.update(dict.fromkeys(_EMPTY_GROUP_VERSIONS))
    return list(seen)


def resources_of(group: str, version: str) -> list[ApiResource]:
    return [r for r in SERVED if r.group == group and r.version == version]
