"""The Job controller, in-process. No nodes: the tests play the kubelet and
set each pod's phase by hand."""

from __future__ import annotations

from typing import Any

import pytest

from control.controllers.job import JobController
from control.controllers.jobstatus import TRACKING_FINALIZER, format_indexes, parse_indexes
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.objects.batch import COMPLETION_INDEX
from control.objects.kinds import JOB, POD
from tests.controllers.helpers import NS, events, get, update
from tests.polling import eventually

Obj = dict[str, Any]


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JobController, "backoff_base", 0.05)


def job(name: str = "pi", **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
                    "restartPolicy": "Never",
                },
            },
            **spec,
        },
    }


async def job_pods(plane: ControlPlane, name: str, *, live: bool = True) -> list[Obj]:
    items = [kv.obj for kv in (await plane.registry.list(POD, NS)).items]
    mine = [p for p in items if p["metadata"].get("labels", {}).get("job-name") == name]
    if live:
        mine = [p for p in mine if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
    return sorted(mine, key=lambda p: p["metadata"]["name"])


async def running(plane: ControlPlane, name: str, n: int) -> list[Obj]:
    async def check() -> tuple[list[Obj]] | None:
        found = await job_pods(plane, name)
        return (found,) if len(found) == n else None

    (found,) = await eventually(check, f"{n} running pods of job {name}")
    return found


async def finish(plane: ControlPlane, pod: Obj, phase: str) -> None:
    def set_phase(p: Obj) -> Obj:
        p["status"] = {**p.get("status", {}), "phase": phase}
        return p

    await plane.registry.patch(POD, NS, pod["metadata"]["name"], set_phase, subresource="status")


async def condition(plane: ControlPlane, name: str, kind: str) -> Obj:
    async def check() -> Obj | None:
        j = await get(plane.registry, JOB, name)
        for c in j.get("status", {}).get("conditions") or ():
            if c["type"] == kind and c["status"] == "True":
                return j
        return None

    return await eventually(check, f"job {name} {kind}")


def test_indexes_as_kubernetes_writes_them() -> None:
    assert format_indexes({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"
    assert parse_indexes("0-2,4,6-7") == {0, 1, 2, 4, 6, 7}
    assert format_indexes(()) == ""


async def test_labels_selector_and_validation(plane: ControlPlane) -> None:
    created = (await plane.registry.create(JOB, NS, job(suspend=True))).obj
    uid = created["metadata"]["uid"]
    assert created["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": uid}
    }
    assert created["spec"]["template"]["metadata"]["labels"] == {
        "app": "pi",
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": uid,
        "job-name": "pi",
    }
    assert created["metadata"]["labels"] == {"app": "pi"}
    assert created["spec"]["completions"] == 1 and created["spec"]["parallelism"] == 1
    assert created["spec"]["backoffLimit"] == 6
    bad = job("bad")
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiError) as e:
        await plane.registry.create(JOB, NS, bad)
    assert [c.field for c in e.value.causes] == ["spec.template.spec.restartPolicy"]
    with pytest.raises(ApiError) as e:
        await plane.registry.create(JOB, NS, job("idx", completionMode="Indexed", parallelism=2))
    assert [c.field for c in e.value.causes] == ["spec.completions"]


async def test_completions_and_parallelism(plane: ControlPlane) -> None:
    await plane.registry.create(JOB, NS, job(completions=3, parallelism=2))
    pods = await running(plane, "pi", 2)
    assert all(TRACKING_FINALIZER in p["metadata"]["finalizers"] for p in pods)
    j = await get(plane.registry, JOB, "pi")
    assert j["status"]["active"] == 2 and j["status"]["ready"] == 0 and j["status"]["startTime"]
    await finish(plane, pods[0], "Succeeded")
    await finish(plane, pods[1], "Succeeded")
    (last,) = await running(plane, "pi", 1)
    await finish(plane, last, "Succeeded")
    done = await condition(plane, "pi", "Complete")
    status = done["status"]
    assert status["succeeded"] == 3 and "active" not in status and "failed" not in status
    assert status["completionTime"] and status["uncountedTerminatedPods"] == {}
    kinds = [(c["type"], c["reason"]) for c in status["conditions"]]
    assert kinds == [
        ("SuccessCriteriaMet", "CompletionsReached"),
        ("Complete", "CompletionsReached"),
    ]
    every = await job_pods(plane, "pi", live=False)
    assert len(every) == 3
    assert all(not p["metadata"].get("finalizers") for p in every)
    assert len(await events(plane.registry, "Completed")) == 1


async def test_backoff_limit_fails_the_job(plane: ControlPlane) -> None:
    await plane.registry.create(JOB, NS, job(backoffLimit=1))
    for _ in range(2):
        (pod,) = await running(plane, "pi", 1)
        await finish(plane, pod, "Failed")
    failed = await condition(plane, "pi", "Failed")
    status = failed["status"]
    assert status["failed"] == 2 and "succeeded" not in status
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        ("FailureTarget", "BackoffLimitExceeded"),
        ("Failed", "BackoffLimitExceeded"),
    ]
    assert status["conditions"][1]["message"] == "Job has reached the specified backoff limit"
    assert await job_pods(plane, "pi") == []


async def test_deadline_stops_running_pods(plane: ControlPlane) -> None:
    await plane.registry.create(JOB, NS, job(activeDeadlineSeconds=1, parallelism=2, completions=4))
    await running(plane, "pi", 2)
    failed = await condition(plane, "pi", "Failed")
    assert failed["status"]["conditions"][-1]["reason"] == "DeadlineExceeded"
    assert failed["status"]["failed"] == 2  # the pods it stopped
    assert await job_pods(plane, "pi", live=False) == []  # deleted, finalizers released


async def test_indexed_pods_carry_their_index(plane: ControlPlane) -> None:
    await plane.registry.create(
        JOB, NS, job(completions=3, parallelism=3, completionMode="Indexed")
    )
    pods = await running(plane, "pi", 3)
    indexes = sorted(p["metadata"]["annotations"][COMPLETION_INDEX] for p in pods)
    assert indexes == ["0", "1", "2"]
    for p in pods:
        index = p["metadata"]["annotations"][COMPLETION_INDEX]
        assert p["metadata"]["labels"][COMPLETION_INDEX] == index
        assert p["metadata"]["name"].startswith(f"pi-{index}-")
        assert p["spec"]["hostname"] == f"pi-{index}"
        assert p["spec"]["containers"][0]["env"][0] == {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {
                "fieldRef": {
                    "apiVersion": "v1",
                    "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']",
                }
            },
        }
    by_index = {p["metadata"]["annotations"][COMPLETION_INDEX]: p for p in pods}
    await finish(plane, by_index["1"], "Succeeded")
    await finish(plane, by_index["0"], "Failed")

    async def replaced() -> Obj | None:
        live = await job_pods(plane, "pi")
        return (
            live[0]
            if len(live) == 2
            and {p["metadata"]["annotations"][COMPLETION_INDEX] for p in live} == {"0", "2"}
            else None
        )

    await eventually(replaced, "index 0 to run again")
    j = await get(plane.registry, JOB, "pi")
    assert j["status"]["completedIndexes"] == "1"
    for p in await job_pods(plane, "pi"):
        await finish(plane, p, "Succeeded")
    done = await condition(plane, "pi", "Complete")
    assert done["status"]["completedIndexes"] == "0-2"
    assert done["status"]["succeeded"] == 3 and done["status"]["failed"] == 1


async def test_suspend_resume_and_ttl(plane: ControlPlane) -> None:
    await plane.registry.create(
        JOB, NS, job(parallelism=2, completions=2, ttlSecondsAfterFinished=0)
    )
    await running(plane, "pi", 2)
    await update(plane.registry, JOB, "pi", lambda j: j["spec"].update(suspend=True))
    suspended = await condition(plane, "pi", "Suspended")
    assert "startTime" not in suspended["status"]
    await running(plane, "pi", 0)
    assert "failed" not in (await get(plane.registry, JOB, "pi"))["status"]
    await update(plane.registry, JOB, "pi", lambda j: j["spec"].update(suspend=False))
    for p in await running(plane, "pi", 2):
        await finish(plane, p, "Succeeded")

    async def gone() -> bool | None:
        try:
            await get(plane.registry, JOB, "pi")
        except ApiError as e:
            return True if e.code == 404 else None
        return None

    await eventually(gone, "job deleted after its ttl")


async def test_deleted_job_releases_its_pods(plane: ControlPlane) -> None:
    await plane.registry.create(JOB, NS, job(parallelism=2, completions=2))
    await running(plane, "pi", 2)
    await plane.registry.delete(JOB, NS, "pi")

    async def released() -> bool | None:
        return True if await job_pods(plane, "pi", live=False) == [] else None

    await eventually(released, "pods of the deleted job gone")
