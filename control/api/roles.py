"""What each role may do: the one rule control.api.auth enforces and the self
reviews (control.api.selfreview) report. The admin role may do anything. The
read-only role may get, list and watch, as Kubernetes' `view` role may: no
Secrets, and none of the pod subresources that run something in a container."""

from __future__ import annotations

from control.api.apiresources import SERVED

READ_VERBS = ("get", "list", "watch")
# Pod subresources that run something in a container: the admin role's alone.
ADMIN_POD_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
# (group, resource) the read-only role may not read: Secrets hold credentials.
_UNREADABLE = (("", "secrets"),)
# What every authenticated user may create: questions about itself.
_SELF_REVIEWS = {
    "authorization.k8s.io": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    "authentication.k8s.io": ["selfsubjectreviews"],
}

Rule = dict[str, list[str]]


def resource_decision(
    role: str, verb: str, group: str, resource: str, subresource: str = ""
) -> tuple[bool, str]:
    """Whether `role` may `verb` the resource (group "*" and resource "*" are
    every one, as in a SelfSubjectAccessReview), and why."""
    if role == "admin":
        return True, "the admin role may do anything"
    if verb == "create" and resource in _SELF_REVIEWS.get(group, ()) and not subresource:
        return True, "every user may review itself"
    if group in ("", "*") and resource in ("pods", "*") and subresource in ADMIN_POD_SUBRESOURCES:
        return False, f"the {role} role may not use pods/{subresource}"
    if verb not in READ_VERBS:
        return False, f"the {role} role may only read"
    for unreadable_group, unreadable in _UNREADABLE:
        if group in (unreadable_group, "*") and resource in (unreadable, "*"):
            return False, f"the {role} role may not read {unreadable}"
    return True, f"the {role} role may read"


def path_decision(role: str, verb: str) -> tuple[bool, str]:
    """Whether `role` may `verb` (an HTTP method, lower case) a non-resource path."""
    if role == "admin":
        return True, "the admin role may do anything"
    if verb in ("get", "head"):
        return True, f"the {role} role may read"
    return False, f"the {role} role may only read"


def rules(role: str) -> tuple[list[Rule], list[Rule]]:
    """The role's (resource rules, non-resource rules) in RBAC's shape, the
    self reviews included: what a SelfSubjectRulesReview answers."""
    self_rules: list[Rule] = [
        {"verbs": ["create"], "apiGroups": [group], "resources": resources}
        for group, resources in _SELF_REVIEWS.items()
    ]
    if role == "admin":
        return (
            [*self_rules, {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        )
    # RBAC has no exceptions: what may be read is named resource by resource.
    readable: dict[str, set[str]] = {}
    for r in SERVED:
        names = [r.plural] if set(READ_VERBS) & set(r.verbs) else []
        names += [f"{r.plural}/{s.name}" for s in r.subresources if "get" in s.verbs]
        for name in names:
            plural, _, sub = name.partition("/")
            if resource_decision(role, "get", r.group, plural, sub)[0]:
                readable.setdefault(r.group, set()).add(name)
    read_rules: list[Rule] = [
        {"verbs": list(READ_VERBS), "apiGroups": [group], "resources": sorted(names)}
        for group, names in readable.items()
    ]
    return [*self_rules, *read_rules], [{"verbs": ["get"], "nonResourceURLs": ["*"]}]
