"""The self reviews: SelfSubjectAccessReview (authorization.k8s.io/v1, what
`kubectl auth can-i` asks) answered from the roles control.api.auth
enforces, SelfSubjectRulesReview (`kubectl auth can-i --list`: the same
roles as RBAC rules), and SelfSubjectReview (authentication.k8s.io/v1,
`kubectl auth whoami`): the user's name and groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from control import errors
from control.api.auth import ROLE, bearer_token
from control.api.bodies import body
from control.api.responses import json_response
from control.api.roles import path_decision, resource_decision, rules
from control.errors import Cause

SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SSRR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
SSR_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
_GROUPS = {
    "admin": ["system:masters", "system:authenticated"],
    "readonly": ["pilothouse:readonly", "system:authenticated"],
}
# The unix socket is trusted: its user is the admin role itself.
_SOCKET_USER = "admin"


async def answer(
    request: web.Request, path: str, user_of_token: Callable[[str], str | None] | None
) -> web.Response | None:
    """The answer to a POST of a self review, or None when `path` is not one."""
    if path == SSAR_PATH:
        return await _access_review(request)
    if path == SSRR_PATH:
        return await _rules_review(request)
    if path == SSR_PATH:
        return await _self_review(request, user_of_token)
    return None


def allowed(role: str, attributes: dict[str, Any], *, resource: bool) -> tuple[bool, str]:
    """Whether `role` may do what a review's resourceAttributes (or
    nonResourceAttributes) describe, and why."""
    verb = str(attributes.get("verb") or "")
    if not resource:
        return path_decision(role, verb)
    return resource_decision(
        role,
        verb,
        str(attributes.get("group") or ""),
        str(attributes.get("resource") or ""),
        str(attributes.get("subresource") or ""),
    )


async def _access_review(request: web.Request) -> web.Response:
    review = await _review_body(request, "SelfSubjectAccessReview", "authorization.k8s.io/v1")
    spec = review.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    res, non_res = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    attributes = non_res if res is None else res
    if (res is None) == (non_res is None) or not isinstance(attributes, dict):
        raise errors.invalid(
            "SelfSubjectAccessReview",
            "",
            [
                Cause(
                    "spec.resourceAttributes",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )
            ],
            "authorization.k8s.io",
        )
    ok, reason = allowed(request[ROLE], attributes, resource=res is not None)
    review["status"] = {"allowed": ok, "reason": reason}
    return json_response(review, 201)


async def _rules_review(request: web.Request) -> web.Response:
    review = await _review_body(request, "SelfSubjectRulesReview", "authorization.k8s.io/v1")
    spec = review.get("spec")
    if not isinstance(spec, dict) or not spec.get("namespace"):
        raise errors.invalid(
            "SelfSubjectRulesReview",
            "",
            [Cause("spec.namespace", "Required value")],
            "authorization.k8s.io",
        )
    resource_rules, non_resource_rules = rules(request[ROLE])
    review["status"] = {
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": False,
    }
    return json_response(review, 201)


async def _self_review(
    request: web.Request, user_of_token: Callable[[str], str | None] | None
) -> web.Response:
    review = await _review_body(request, "SelfSubjectReview", "authentication.k8s.io/v1")
    role = request[ROLE]
    token = bearer_token(request)
    user = (user_of_token(token) if token and user_of_token else None) or _SOCKET_USER
    review["status"] = {"userInfo": {"username": user, "groups": _GROUPS.get(role, [])}}
    return json_response(review, 201)


async def _review_body(request: web.Request, kind: str, api_version: str) -> dict[str, Any]:
    review = await body(request)  # JSON, YAML or protobuf (control.api.protobuf)
    if not isinstance(review, dict):
        raise errors.bad_request(f"the request body must be a {api_version} {kind}")
    errors.check_type(review, api_version, kind)
    meta = review.get("metadata")
    review["metadata"] = {**(meta if isinstance(meta, dict) else {}), "creationTimestamp": None}
    return review
