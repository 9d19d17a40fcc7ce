"""An update that changes only metadata is admitted exactly as a whole object is."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from control.errors import ApiError
from control.objects.admission import _METADATA_ONLY, admit, admit_update
from tests.manifests import workload

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "busybox",
                "ports": [{"containerPort": 8080}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            }
        ],
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
        ],
    },
    "status": {"phase": "Running", "podIP": "10.0.0.5"},
}
DEPLOYMENT = workload("Deployment", "web", 2, "busybox", container="web")
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}
CRONJOB = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "tick", "namespace": "default"},
    "spec": {
        "schedule": "*/5 * * * *",
        "jobTemplate": {
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "busybox"}],
                    }
                }
            }
        },
    },
}
CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "cfg", "namespace": "default"},
    "data": {"a": "1"},
}
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
OBJECTS = [POD, DEPLOYMENT, SERVICE, CRONJOB, CONFIGMAP, NAMESPACE]


def _with_meta(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    changed["metadata"].update(changes)
    return changed


METADATA_CHANGES = [
    {"labels": {"app": "web", "tier": "front"}},
    {"annotations": {"example.com/owner": "team-a"}},
    {"finalizers": ["example.com/keep"]},
    {
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-abc",
                "uid": "5a3c1a57-3f7e-4f61-9c5e-0c7e2b0d4a11",
                "controller": True,
            }
        ]
    },
]


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o["kind"])
@pytest.mark.parametrize("change", METADATA_CHANGES, ids=lambda c: next(iter(c)))
def test_a_metadata_change_is_admitted_as_the_whole_object_is(
    obj: dict[str, Any], change: dict[str, Any]
) -> None:
    stored = admit(copy.deepcopy(obj))
    changed = _with_meta(stored, **change)
    assert admit_update(copy.deepcopy(changed), stored) == admit(copy.deepcopy(changed))


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o["kind"])
def test_a_bad_label_gets_the_same_causes(obj: dict[str, Any]) -> None:
    stored = admit(copy.deepcopy(obj))
    changed = _with_meta(stored, labels={"bad key!": "x"})
    with pytest.raises(ApiError) as whole:
        admit(copy.deepcopy(changed))
    with pytest.raises(ApiError) as update:
        admit_update(copy.deepcopy(changed), stored)
    assert update.value.code == whole.value.code == 422
    assert update.value.status() == whole.value.status()


def test_a_change_beyond_metadata_is_validated_whole() -> None:
    stored = admit(copy.deepcopy(POD))
    changed = copy.deepcopy(stored)
    changed["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "-1"
    with pytest.raises(ApiError) as e:
        admit_update(changed, stored)
    assert e.value.code == 422
    assert [c.field for c in e.value.causes] == ["spec.containers[0].resources.requests[cpu]"]


def test_kinds_that_check_across_fields_are_always_validated_whole() -> None:
    # ConfigMap checks its keys and size over data and binaryData together.
    assert "ConfigMap" not in _METADATA_ONLY
    assert "Secret" not in _METADATA_ONLY
    assert {"Pod", "Deployment", "Service", "CronJob"} <= _METADATA_ONLY.keys()


def test_admitting_an_admitted_object_changes_nothing() -> None:
    # What the shortcut rests on: the stored object is in admitted form.
    for obj in OBJECTS:
        once = admit(copy.deepcopy(obj))
        assert admit(copy.deepcopy(once)) == once


def test_a_metadata_change_skips_validating_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    from control.objects import admission

    stored = admit(copy.deepcopy(POD))

    def whole(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the whole Pod was validated")

    monkeypatch.setattr(admission.MODELS["Pod"], "model_validate", whole)
    changed = _with_meta(stored, labels={"app": "web", "tier": "front"})
    assert admit_update(changed, stored)["metadata"]["labels"]["tier"] == "front"
