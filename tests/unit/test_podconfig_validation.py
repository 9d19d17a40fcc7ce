"""Validation and defaults of env valueFrom, envFrom and the configMap,
secret, downwardAPI and projected volumes: Kubernetes' rules, with field paths."""

from __future__ import annotations

from typing import Any

import pytest

from control.errors import ApiError
from control.objects.admission import admit


def pod(volumes: list[Any] | None = None, **container: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "busybox", **container}]}
    if volumes is not None:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def causes(obj: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ApiError) as info:
        admit(obj)
    assert info.value.code == 422
    return {c.field: c.message for c in info.value.causes}


def test_volume_sources_get_kubernetes_defaults() -> None:
    out = admit(
        pod(
            [
                {"name": "c", "configMap": {"name": "cfg"}},
                {"name": "s", "secret": {"secretName": "sec", "defaultMode": 0o400}},
                {
                    "name": "d",
                    "downwardAPI": {
                        "items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]
                    },
                },
                {"name": "p", "projected": {"sources": [{"configMap": {"name": "cfg"}}]}},
            ]
        )
    )
    vols = {v["name"]: v for v in out["spec"]["volumes"]}
    assert vols["c"]["configMap"] == {"name": "cfg", "defaultMode": 420}
    assert vols["s"]["secret"] == {"secretName": "sec", "defaultMode": 256}
    assert vols["d"]["downwardAPI"]["items"][0]["fieldRef"] == {
        "apiVersion": "v1",
        "fieldPath": "metadata.name",
    }
    assert vols["p"]["projected"]["defaultMode"] == 420


def test_env_value_from_round_trips_and_keeps_what_was_written() -> None:
    env = [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "b", "optional": True}}},
        {
            "name": "C",
            "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
        },
    ]
    out = admit(pod(env=env, envFrom=[{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}]))
    c = out["spec"]["containers"][0]
    assert c["env"][0]["valueFrom"] == {"configMapKeyRef": {"name": "cfg", "key": "a"}}
    assert c["env"][1]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert c["env"][2]["valueFrom"]["resourceFieldRef"]["divisor"] == "1Mi"
    assert c["envFrom"] == [{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}]


def test_env_errors_name_their_fields() -> None:
    env = [
        {"name": "A", "valueFrom": {}},
        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "bad key"}}},
        {"name": "C", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "spec.nothing"}}},
        {"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}},
        {"name": "F=G", "value": "x"},
    ]
    got = causes(pod(env=env, envFrom=[{"prefix": "P_"}]))
    base = "spec.containers[0]"
    assert got[f"{base}.env[0].valueFrom"].startswith("must specify one of: `fieldRef`")
    assert "valid config key" in got[f"{base}.env[1].valueFrom.configMapKeyRef.key"]
    assert got[f"{base}.env[2].valueFrom"] == "may not be specified when `value` is not empty"
    assert got[f"{base}.env[3].valueFrom.fieldRef.fieldPath"].startswith(
        'unsupported value "spec.nothing"'
    )
    assert got[f"{base}.env[4].valueFrom.resourceFieldRef.resource"].startswith("unsupported value")
    assert "printable ASCII" in got[f"{base}.env[5].name"]
    assert got[f"{base}.envFrom[0]"] == "must specify one of: `configMapRef` or `secretRef`"


def test_volume_errors_name_their_fields() -> None:
    volumes = [
        {"name": "a", "configMap": {"name": "c", "items": [{"key": "k", "path": "../up"}]}},
        {"name": "b", "secret": {"secretName": "s", "defaultMode": 0o1777}},
        {"name": "c", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
        {"name": "d", "emptyDir": {}, "configMap": {"name": "c"}},
        {"name": "e"},
        {"name": "f", "configMap": {}},
        {
            "name": "g",
            "downwardAPI": {
                "items": [{"path": "x", "resourceFieldRef": {"resource": "limits.cpu"}}]
            },
        },
    ]
    got = causes(pod(volumes))
    assert got["spec.volumes[0].configMap.items[0].path"] == "must not contain '..'"
    assert got["spec.volumes[1].secret.defaultMode"].startswith(
        "must be a number between 0 and 0777"
    )
    assert "not supported" in got["spec.volumes[2].projected.sources[0].serviceAccountToken"]
    assert got["spec.volumes[3].configMap"] == "may not specify more than 1 volume type"
    assert got["spec.volumes[4]"] == "must specify a volume type"
    assert "spec.volumes[5].configMap.name" in got
    assert got["spec.volumes[6].downwardAPI.items[0].resourceFieldRef.containerName"] == "required"
