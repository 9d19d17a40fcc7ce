"""Hostile input against the API server: every reject is a 4xx Status naming
what is wrong, nothing is stored, and no traceback is logged."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson
import pytest

from control.client import Client
from control.controlplane import ControlPlane
from control.objects.decoding import MAX_ALIAS_NODES, MAX_DEPTH
from control.objects.kinds import by_name
from control.objects.manifest import ManifestError, load_manifests
from control.store.keyspace import encode_token
from tests.api.test_dry_run import bound_pod, configmap
from tests.api.test_rest import CM, DEPLOY, POD, deployment, pod

CM_PATH = "/api/v1/namespaces/default/configmaps"
POD_PATH = "/api/v1/namespaces/default/pods"
JOB = by_name("jobs")
assert JOB


async def send(
    plane: ControlPlane,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    params: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One request with a raw body over the unix socket: its status and JSON answer."""
    connector = aiohttp.UnixConnector(path=str(plane.socket_path))
    headers = {"Content-Type": content_type} if body is not None else {}
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(
            method, "http://localhost" + path, data=body, headers=headers, params=params
        ) as resp,
    ):
        return resp.status, orjson.loads(await resp.read())


def refused(answer: dict[str, Any], code: int, *words: str) -> dict[str, Any]:
    """`answer` is a failure Status of `code` whose message has each of `words`."""
    assert answer["kind"] == "Status" and answer["status"] == "Failure", answer
    assert answer["code"] == code, answer
    for word in words:
        assert word in answer["message"], answer
    return answer


def cause_fields(answer: dict[str, Any]) -> set[str]:
    return {c["field"] for c in answer.get("details", {}).get("causes", [])}


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def names(client: Client, rt: Any = CM) -> list[str]:
    return [i["metadata"]["name"] for i in (await client.list(rt, "default"))["items"]]


def nested_json(depth: int) -> bytes:
    """A ConfigMap with an unknown field `depth` arrays deep."""
    return b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"x":%s}' % (
        b"[" * depth + b"]" * depth
    )


async def test_deep_json_is_400(
    plane: ControlPlane, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    for depth in (254, 1023):
        status, answer = await send(plane, "POST", CM_PATH, nested_json(depth))
        assert status == 400
        refused(answer, 400, f"nested deeper than {MAX_DEPTH} levels")
    status, answer = await send(
        plane, "PATCH", CM_PATH + "/x", nested_json(300), "application/merge-patch+json"
    )
    assert status == 400, answer
    assert await names(client) == []
    no_tracebacks(caplog)
    # Within the bound (the top object is one level, the field one more).
    status, _ = await send(plane, "POST", CM_PATH, nested_json(MAX_DEPTH - 2))
    assert status == 201


async def test_deep_yaml_is_400_before_it_is_composed(
    plane: ControlPlane, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    for depth in (MAX_DEPTH + 1, 300, 3000):
        body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\nx: %s\n" % (
            "[" * depth + "]" * depth
        )
        status, answer = await send(plane, "POST", CM_PATH, body.encode(), "application/yaml")
        assert status == 400
        # Deep enough, libyaml's scanner refuses first.
        words = ["nest"] if depth > 1000 else [f"nested deeper than {MAX_DEPTH} levels"]
        refused(answer, 400, "not valid YAML", *words)
    assert await names(client) == []
    no_tracebacks(caplog)


def laughs() -> str:
    """A "billion laughs": 9**7 strings from a few hundred bytes of aliases."""
    text = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\na: &a ["x","x","x","x","x","x","x","x","x"]\n'
    previous = "a"
    for anchor in "bcdefg":
        text += f"{anchor}: &{anchor} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = anchor
    return text


async def test_yaml_aliases_are_bounded_in_bodies_and_manifests(
    plane: ControlPlane, client: Client
) -> None:
    status, answer = await send(plane, "POST", CM_PATH, laughs().encode(), "application/yaml")
    assert status == 400
    refused(answer, 400, f"aliases expand to more than {MAX_ALIAS_NODES} nodes")
    assert await names(client) == []
    with pytest.raises(ManifestError, match=r"document 2: line 11.*aliases expand"):
        load_manifests("apiVersion: v1\nkind: Namespace\n---\n" + laughs(), "lol.yaml")
    # A few aliases, as manifests use them, are fine.
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: &d {k: v}\nx: *d\n"
    status, answer = await send(plane, "POST", CM_PATH, body.encode(), "application/yaml")
    assert status == 201 and answer["x"] == {"k": "v"}


async def test_delete_options_of_the_wrong_type_are_400_naming_the_field(
    plane: ControlPlane, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    await client.create(CM, configmap("c"))
    for field, value in (
        ("preconditions", "str"),
        ("propagationPolicy", 3),
        ("gracePeriodSeconds", "x"),
        ("dryRun", "All"),
        ("orphanDependents", "yes"),
    ):
        status, answer = await send(plane, "DELETE", CM_PATH + "/c", orjson.dumps({field: value}))
        assert status == 400, (field, answer)
        refused(answer, 400, field)
    await bound_pod(client, "p")
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": "x"}
    status, answer = await send(plane, "POST", POD_PATH + "/p/eviction", orjson.dumps(eviction))
    refused(answer, 400, "metadata")
    assert await names(client) == ["c"]
    assert "deletionTimestamp" not in (await client.get(POD, "p", "default"))["metadata"]
    no_tracebacks(caplog)


async def test_grace_periods_beyond_int64_are_400_and_negative_reads_as_one(
    plane: ControlPlane, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    await bound_pod(client, "p")
    for body, params in (
        (None, {"gracePeriodSeconds": str(10**30)}),
        (orjson.dumps({"gracePeriodSeconds": 2**63}), None),
    ):
        status, answer = await send(plane, "DELETE", POD_PATH + "/p", body, params=params)
        assert status == 400
        refused(answer, 400, "gracePeriodSeconds", "int64")
    assert "deletionTimestamp" not in (await client.get(POD, "p", "default"))["metadata"]
    # The largest int64 is a grace period whose end RFC 3339 cannot write: the last it can.
    params = {"gracePeriodSeconds": str(2**63 - 1)}
    status, answer = await send(plane, "DELETE", POD_PATH + "/p", params=params)
    assert status == 200
    assert answer["metadata"]["deletionTimestamp"] == "9999-12-31T23:59:59Z"
    await bound_pod(client, "q")
    status, answer = await send(
        plane, "DELETE", POD_PATH + "/q", params={"gracePeriodSeconds": "-5"}
    )
    assert status == 200 and answer["metadata"]["deletionGracePeriodSeconds"] == 1
    no_tracebacks(caplog)


async def test_resource_versions_beyond_int64_are_400_before_a_watch_starts(
    plane: ControlPlane, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    await client.create(CM, configmap("c"))
    huge = str(2**63)
    for params in (
        {"resourceVersion": huge},
        {"resourceVersion": huge, "resourceVersionMatch": "Exact"},
        {"resourceVersion": huge, "watch": "1"},
        {"resourceVersion": str(2**64), "watch": "1"},
    ):
        status, answer = await send(plane, "GET", CM_PATH, params=params)
        assert status == 400, params
        assert cause_fields(refused(answer, 400, "invalid resource version")) == {"resourceVersion"}
    token = encode_token(2**63, "/registry/configmaps/default/", "/registry/configmaps/default/")
    status, answer = await send(plane, "GET", CM_PATH, params={"continue": token, "limit": "1"})
    refused(answer, 400, "continue")
    precondition = {"preconditions": {"resourceVersion": huge}}
    status, answer = await send(plane, "DELETE", CM_PATH + "/c", orjson.dumps(precondition))
    assert cause_fields(refused(answer, 400, "invalid resource version")) == {
        "preconditions.resourceVersion"
    }
    assert await names(client) == ["c"]
    no_tracebacks(caplog)


async def test_int32_and_int64_fields_are_bounded(plane: ControlPlane, client: Client) -> None:
    cases: list[tuple[Any, dict[str, Any], str]] = []
    for replicas in (2**31, -1):
        d = deployment("web")
        d["spec"]["replicas"] = replicas
        cases.append((DEPLOY, d, "spec.replicas"))
    for field in ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"):
        d = deployment("web")
        d["spec"][field] = 2**31
        cases.append((DEPLOY, d, f"spec.{field}"))
    d = deployment("web")
    d["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 2**31}]
    cases.append((DEPLOY, d, "spec.template.spec.containers[0].ports[0].containerPort"))
    d = deployment("web")
    d["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2**31}}
    cases.append((DEPLOY, d, "spec.strategy.rollingUpdate.maxSurge"))
    for field in ("parallelism", "completions", "backoffLimit"):
        job: dict[str, Any] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "spec": {
                field: 2**31,
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}
                },
            },
        }
        cases.append((JOB, job, f"spec.{field}"))
    p = pod("p")
    p["spec"]["terminationGracePeriodSeconds"] = 2**63
    cases.append((POD, p, "spec.terminationGracePeriodSeconds"))
    p = pod("p")
    p["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["true"]},
        "periodSeconds": 2**31,
    }
    cases.append((POD, p, "spec.containers[0].readinessProbe.periodSeconds"))
    for rt, body, field in cases:
        status, answer = await send(plane, "POST", rt.base_path("default"), orjson.dumps(body))
        assert status == 422, (field, answer)
        assert field in cause_fields(refused(answer, 422)), (field, answer)
    for rt in (DEPLOY, JOB, POD):
        assert await names(client, rt) == []
    # The scale subresource writes spec.replicas through the same check.
    await client.create(DEPLOY, deployment("web"))
    scale = {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2**31},
    }
    status, answer = await send(
        plane, "PUT", DEPLOY.base_path("default") + "/web/scale", orjson.dumps(scale)
    )
    assert status == 422 and "spec.replicas" in cause_fields(answer), answer
    assert (await client.get(DEPLOY, "web", "default"))["spec"]["replicas"] == 2


async def test_resource_quantities_are_non_negative_bounded_and_limits_cover_requests(
    plane: ControlPlane, client: Client
) -> None:
    at = "spec.containers[0].resources"
    for resources, field, words in (
        ({"requests": {"cpu": "-1"}}, f"{at}.requests[cpu]", "greater than or equal to 0"),
        ({"limits": {"memory": "-1Gi"}}, f"{at}.limits[memory]", "greater than or equal to 0"),
        ({"requests": {"memory": "1e30"}}, f"{at}.requests[memory]", "less than or equal to"),
        ({"requests": {"cpu": "10Ei"}}, f"{at}.requests[cpu]", "less than or equal to"),
        (
            {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
            f"{at}.requests[cpu]",
            "cpu limit of 1",
        ),
    ):
        p = pod("p")
        p["spec"]["containers"][0]["resources"] = resources
        status, answer = await send(plane, "POST", POD_PATH, orjson.dumps(p))
        assert status == 422, resources
        assert field in cause_fields(refused(answer, 422, words)), answer
    assert await names(client, POD) == []
    p = pod("p")
    p["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "500m"},
        "limits": {"cpu": "1", "memory": "64Mi"},
    }
    assert (await client.create(POD, p))["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "500m",
        "memory": "64Mi",
    }


async def test_objects_are_capped_at_kubernetes_size(plane: ControlPlane, client: Client) -> None:
    big = configmap("big")
    big["note"] = "x" * 1_600_000  # an unknown field: ConfigMap data alone is capped at 1 MiB
    status, answer = await send(plane, "POST", CM_PATH, orjson.dumps(big))
    assert status == 413
    assert refused(answer, 413, "1572864")["reason"] == "RequestEntityTooLarge"
    await client.create(CM, configmap("c"))
    patch = orjson.dumps({"note": "x" * 1_600_000})
    status, answer = await send(
        plane, "PATCH", CM_PATH + "/c", patch, "application/merge-patch+json"
    )
    assert status == 413, answer
    assert await names(client) == ["c"]
    assert "note" not in await client.get(CM, "c", "default")


async def test_integers_beyond_64_bits_are_400(
    plane: ControlPlane, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # YAML reads any integer; the store can hold 64 bits.
    body = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: n}}\nx: {10**30}\n"
    status, answer = await send(plane, "POST", CM_PATH, body.encode(), "application/yaml")
    assert status == 400
    refused(answer, 400, "64-bit")
    assert await names(client) == []
    no_tracebacks(caplog)


async def test_unsupported_field_selectors_are_400(plane: ControlPlane, client: Client) -> None:
    await bound_pod(client, "p")
    for path, selector in (
        (CM_PATH, "spec.foo=x"),
        (CM_PATH, "status.phase=Running"),
        (POD_PATH, "spec.nodeName=node-1,spec.image=x"),
    ):
        for watch in ("", "1"):
            status, answer = await send(
                plane, "GET", path, params={"fieldSelector": selector, "watch": watch}
            )
            assert status == 400, selector
            assert cause_fields(refused(answer, 400, "field label not supported: ")) == {
                "fieldSelector"
            }
    status, answer = await send(plane, "GET", POD_PATH, params={"fieldSelector": "spec.nodeName"})
    refused(answer, 400, "spec.nodeName")
    # What Kubernetes supports still selects.
    for selector in (
        "spec.nodeName=node-1",
        "metadata.name=p",
        "status.phase=Pending,metadata.namespace=default",
    ):
        listed = await client.list(POD, "default", field_selector=selector)
        assert [i["metadata"]["name"] for i in listed["items"]] == ["p"], selector


async def test_writes_cannot_change_name_namespace_or_uid(
    plane: ControlPlane, client: Client
) -> None:
    created = await client.create(CM, configmap("c"))
    path = CM_PATH + "/c"
    merge = "application/merge-patch+json"
    for content_type, patch, code, field in (
        (merge, {"metadata": {"name": "other"}}, 400, "metadata.name"),
        (merge, {"metadata": {"namespace": "kube-system"}}, 400, "metadata.namespace"),
        (merge, {"metadata": {"uid": "0000"}}, 422, "metadata.uid"),
        (
            "application/strategic-merge-patch+json",
            {"metadata": {"name": "other"}},
            400,
            "metadata.name",
        ),
        (
            "application/json-patch+json",
            [{"op": "replace", "path": "/metadata/name", "value": "o"}],
            400,
            "metadata.name",
        ),
        (
            "application/json-patch+json",
            [{"op": "replace", "path": "/metadata/uid", "value": "u"}],
            422,
            "metadata.uid",
        ),
    ):
        status, answer = await send(plane, "PATCH", path, orjson.dumps(patch), content_type)
        assert status == code, (patch, answer)
        assert field in cause_fields(refused(answer, code)), answer
    replaced = {**configmap("c"), "metadata": {"name": "c", "uid": "0000"}}
    status, answer = await send(plane, "PUT", path, orjson.dumps(replaced))
    assert status == 422 and cause_fields(answer) == {"metadata.uid"}, answer
    status, answer = await send(plane, "PUT", path, orjson.dumps(configmap("other")))
    refused(answer, 400, "does not match the name on the URL")
    stored = await client.get(CM, "c", "default")
    assert stored["metadata"] == created["metadata"]
    assert await names(client) == ["c"]
