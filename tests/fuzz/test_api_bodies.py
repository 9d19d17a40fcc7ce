"""Fuzzing the bodies of every POST and PUT the API serves: every resource
discovery lists with `create` or `update`, and their subresources. Each body
is accepted, or refused with a 4xx Status and the store unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from control.api.protobuf import k8s_pb2
from control.api.protobuf.decode import CONTENT_TYPE as PROTOBUF
from control.api.protobuf.decode import MAGIC
from tests.fuzz.fuzzing import JSON, YAML_SOUP, budget, dumps, mutated, ran
from tests.fuzz.seeds import NAME, NAMESPACE, seed, seeded
from tests.fuzz.served import Api, check_answer, check_refusal_wrote_nothing
from tests.fuzz.targets import resources

# Streams, not bodies: tests/api covers them.
_STREAMS = {"exec", "attach"}


@dataclass(frozen=True)
class Target:
    method: str
    path: str
    seed: dict[str, Any]


def _special_seed(kind: str, group_version: str) -> dict[str, Any]:
    """The body of a subresource or a review that is no stored kind."""
    if kind == "Scale":
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {"replicas": 1},
        }
    if kind == "Binding":
        return {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NAME},
        }
    if kind == "Eviction":
        return {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "deleteOptions": {"gracePeriodSeconds": 0, "dryRun": ["All"]},
        }
    spec: dict[str, Any] = {
        "SelfSubjectAccessReview": {
            "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": NAMESPACE}
        },
        "SelfSubjectRulesReview": {"namespace": NAMESPACE},
    }.get(kind, {})
    return {"apiVersion": group_version, "kind": kind, "spec": spec}


def _post_put() -> list[Target]:
    """Every POST and PUT discovery promises."""
    out: list[Target] = []
    for r in resources():
        if r.sub in _STREAMS:
            continue
        stored = r.rt is not None and r.sub in ("", "status", "finalize")
        body = seed(r.rt) if stored and r.rt else _special_seed(r.kind, r.group_version)
        if "create" in r.verbs:
            if r.sub:
                out.append(Target("POST", r.object, body))
            else:
                out.append(Target("POST", r.collection, seed(r.rt, None) if r.rt else body))
        if "update" in r.verbs:
            out.append(Target("PUT", r.object, body))
    return out


POST_PUT = _post_put()
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
EVICTION = f"/api/v1/namespaces/{NAMESPACE}/pods/{NAME}/eviction"


async def _restore_seeds(api: Api) -> None:
    """Put back a seed an accepted eviction deleted."""
    for rt in seeded():
        answer = await api.send_json("POST", rt.base_path(NAMESPACE), seed(rt))
        assert answer.status in (201, 409), answer


async def _exercise(api: Api, target: Target, raw: bytes, content_type: str | None) -> None:
    what = f"{target.method} {target.path} {content_type}: {raw[:300]!r}"
    before = await api.revision()
    answer = await api.request(target.method, target.path, body=raw, content_type=content_type)
    check_answer(answer, what)
    await check_refusal_wrote_nothing(api, before, answer, what)
    if answer.status < 400 and target.path.endswith("/eviction"):
        await _restore_seeds(api)


def _with_body(target: Target) -> st.SearchStrategy[tuple[Target, Any]]:
    """`target` with a body: its seed mutated, or now and then any JSON."""
    seeded = mutated(target.seed)
    body = st.integers(0, 9).flatmap(lambda i: JSON if i == 9 else seeded)
    return st.tuples(st.just(target), body)


@budget(700)
@given(target=st.sampled_from(POST_PUT).flatmap(_with_body), as_yaml=st.integers(0, 4))
@example(  # the kind was read before it was defaulted
    target=(Target("POST", "/api/v1/namespaces", {}), {"apiVersion": "v2"}), as_yaml=1
)
@example(  # and in the self reviews, the apiVersion
    target=(Target("POST", SSAR, {}), {"kind": None}), as_yaml=1
)
@example(  # an Eviction whose metadata is no object
    target=(Target("POST", EVICTION, {}), {"kind": "Eviction", "metadata": []}), as_yaml=1
)
async def test_json_bodies(api: Api, target: tuple[Target, Any], as_yaml: int) -> None:
    """Seeds of every target, mutated, as JSON (and now and then as YAML)."""
    to, value = target
    if as_yaml == 0:
        raw, content_type = yaml.safe_dump(value).encode(), "application/yaml"
    else:
        raw, content_type = dumps(value), "application/json"
    ran("test_json_bodies")
    await _exercise(api, to, raw, content_type)


_CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/yaml",
        PROTOBUF,
        "text/plain",
        "application/json-patch+json",
        None,
    ]
)
_PROTOBUF_KINDS = [
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "Ingress"),
    ("policy/v1", "Eviction"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("meta.k8s.io/v1", "DeleteOptions"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ("authentication.k8s.io/v1", "SelfSubjectReview"),
    ("v1", "Pod"),
]


@st.composite
def _protobuf_bodies(draw: st.DrawFn) -> bytes:
    """A `k8s\\0` envelope of a kind, around random message bytes."""
    api_version, kind = draw(st.sampled_from(_PROTOBUF_KINDS))
    envelope = k8s_pb2.Unknown()
    envelope.typeMeta.apiVersion = api_version
    envelope.typeMeta.kind = kind
    envelope.raw = draw(st.binary(max_size=64))
    return MAGIC + envelope.SerializeToString()


@budget(300)
@given(
    target=st.sampled_from(POST_PUT),
    content_type=_CONTENT_TYPES,
    raw=st.one_of(
        _protobuf_bodies(),
        st.binary(max_size=64),
        st.text(max_size=64).map(str.encode),
        YAML_SOUP.map(str.encode),
    ),
)
@example(  # YAML whose scalar constructor fails: a date out of range, a bare !!int
    target=Target("POST", CONFIGMAPS, {}),
    content_type="application/yaml",
    raw=b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: 2024-13-45}",
)
@example(target=Target("POST", CONFIGMAPS, {}), content_type="application/yaml", raw=b"!!int")
@example(  # past 64 bits: stored, then the store could not encode it
    target=Target("POST", CONFIGMAPS, {}),
    content_type="application/yaml",
    raw=b"apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x, a: 18446744073709551616}",
)
async def test_raw_bodies(api: Api, target: Target, content_type: str | None, raw: bytes) -> None:
    """Any bytes under any content type, and protobuf envelopes of random messages."""
    ran("test_raw_bodies")
    await _exercise(api, target, raw, content_type)
