"""The classes of hostile input another change fixes (deep nesting, YAML
aliases, DeleteOptions of the wrong types, huge grace periods and
resourceVersions, int32 fields, quantity bounds, 1.5 MiB objects, field
selectors on unsupported fields, patches of name, namespace or uid), one
request each, held to the suite's property."""

from __future__ import annotations

import pytest

from tests.fuzz.fuzzing import dumps
from tests.fuzz.seeds import NAMESPACE
from tests.fuzz.served import Api, check_answer, check_refusal_wrote_nothing, too_large_rv

NS = f"/api/v1/namespaces/{NAMESPACE}"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
JSON = "application/json"
YAML = "application/yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
_LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def _configmap(**data: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"generateName": "k-"},
        "data": data,
    }


def _deployment(replicas: object = 1, cpu: object = "1") -> dict[str, object]:
    labels = {"app": "k"}
    container = {"name": "c", "image": "busybox", "resources": {"limits": {"cpu": cpu}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"generateName": "k-"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


# (method, path, query, body, content type): each must be refused with a 4xx
# (a resourceVersion may also be answered as too large, with 504, as Kubernetes does).
CASES: dict[str, tuple[str, str, dict[str, str], bytes | None, str]] = {
    "deep JSON": ("POST", f"{NS}/configmaps", {}, b"[" * 100_000 + b"]" * 100_000, JSON),
    "deep YAML": ("POST", f"{NS}/configmaps", {}, b"[" * 100_000 + b"]" * 100_000, YAML),
    "YAML aliases": ("POST", f"{NS}/configmaps", {}, _LAUGHS.encode(), YAML),
    "preconditions.uid a number": (
        "DELETE",
        f"{NS}/configmaps/seed",
        {},
        dumps({"preconditions": {"uid": 5}}),
        JSON,
    ),
    "preconditions a list": (
        "DELETE",
        f"{NS}/configmaps/seed",
        {},
        dumps({"preconditions": []}),
        JSON,
    ),
    "gracePeriodSeconds a string": (
        "DELETE",
        f"{NS}/configmaps/seed",
        {},
        dumps({"gracePeriodSeconds": "soon"}),
        JSON,
    ),
    "huge gracePeriodSeconds": (
        "DELETE",
        f"{NS}/pods/seed",
        {"gracePeriodSeconds": str(2**70), "dryRun": "All"},
        None,
        JSON,
    ),
    "huge gracePeriodSeconds in the body": (
        "DELETE",
        f"{NS}/pods/seed",
        {"dryRun": "All"},
        dumps({"gracePeriodSeconds": 10**30}),
        JSON,
    ),
    "list resourceVersion 2**63": (
        "GET",
        f"{NS}/pods",
        {"resourceVersion": str(2**63)},
        None,
        JSON,
    ),
    "watch resourceVersion 2**64": (
        "GET",
        f"{NS}/pods",
        {"watch": "true", "resourceVersion": str(2**64)},
        None,
        JSON,
    ),
    "replicas past int32": ("POST", DEPLOYMENTS, {}, dumps(_deployment(replicas=2**31)), JSON),
    "replicas past int64": ("POST", DEPLOYMENTS, {}, dumps(_deployment(replicas=2**70)), JSON),
    "a quantity past any bound": ("POST", DEPLOYMENTS, {}, dumps(_deployment(cpu="1e400")), JSON),
    "a quantity of 10**30 Ei": (
        "POST",
        DEPLOYMENTS,
        {},
        dumps(_deployment(cpu="1" + "0" * 30 + "Ei")),
        JSON,
    ),
    "an object of 1.5 MiB": (
        "POST",
        f"{NS}/configmaps",
        {},
        dumps(_configmap(k="x" * 1_600_000)),
        JSON,
    ),
    "an unsupported field selector": (
        "GET",
        f"{NS}/pods",
        {"fieldSelector": "spec.nope=x"},
        None,
        JSON,
    ),
    "a patch of the name": (
        "PATCH",
        f"{NS}/configmaps/seed",
        {},
        dumps({"metadata": {"name": "other"}}),
        MERGE,
    ),
    "a patch of the namespace": (
        "PATCH",
        f"{NS}/configmaps/seed",
        {},
        dumps({"metadata": {"namespace": "default"}}),
        MERGE,
    ),
    "a patch of the uid": (
        "PATCH",
        f"{NS}/configmaps/seed",
        {},
        dumps([{"op": "replace", "path": "/metadata/uid", "value": "u"}]),
        JSON_PATCH,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_known_class(api: Api, case: str) -> None:
    method, path, query, body, content_type = CASES[case]
    before = await api.revision()
    answer = await api.request(
        method, path, query=query, body=body, content_type=content_type, stream=True
    )
    if not (
        case.startswith(("list resourceVersion", "watch resourceVersion")) and too_large_rv(answer)
    ):
        assert 400 <= answer.status < 500, f"{case}: {answer.status} {answer.body!r:.300}"
        check_answer(answer, case)
    await check_refusal_wrote_nothing(api, before, answer, case)
