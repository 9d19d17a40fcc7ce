"""Cron schedules, and the CronJob controller in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.protocol.primitives import new_controller_ref, now_rfc3339
from console.cli.arguments import UsageError
from control.controllers.cronjob import SCHEDULED_TIMESTAMP, job_name, most_recent
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.objects.batch import job_from_cronjob
from control.objects.cron import CronError, parse_schedule, zone
from control.objects.kinds import CRONJOB, JOB
from tests.controllers.helpers import NS, cli, events, get
from tests.polling import eventually

Obj = dict[str, Any]
UTC_ZONE = zone(None)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_fields_ranges_steps_lists_and_names() -> None:
    s = parse_schedule("5-20/5,59 9-17 * JAN-mar mon-FRI")
    assert s.minutes == {5, 10, 15, 20, 59} and s.hours == set(range(9, 18))
    assert s.months == {1, 2, 3} and s.weekdays == {1, 2, 3, 4, 5}
    assert parse_schedule("*/15 * * * *").minutes == {0, 15, 30, 45}
    assert parse_schedule("10/20 * * * *").minutes == {10, 30, 50}
    assert parse_schedule("@hourly") == parse_schedule("0 * * * *")
    assert parse_schedule("@weekly") == parse_schedule("0 0 * * 0")
    for bad in ("* * * *", "60 * * * *", "* * * * 7", "5-1 * * * *", "@often", "*/0 * * * *"):
        with pytest.raises(CronError):
            parse_schedule(bad)


def test_next_times_in_a_zone() -> None:
    hourly = parse_schedule("@hourly")
    assert hourly.next_after(at("2024-03-01T10:00:00"), UTC_ZONE) == at("2024-03-01T11:00:00")
    # The 13th or a Friday: either day field matches when neither is `*`.
    s = parse_schedule("0 0 13 * 5")
    assert s.next_after(at("2024-09-01T00:00:00"), UTC_ZONE) == at("2024-09-06T00:00:00")
    assert s.next_after(at("2024-09-06T00:00:00"), UTC_ZONE) == at("2024-09-13T00:00:00")
    berlin = zone("Europe/Berlin")
    nine = parse_schedule("0 9 * * *").next_after(at("2024-07-01T00:00:00"), berlin)
    assert nine is not None and nine.astimezone(UTC) == at("2024-07-01T07:00:00")
    assert parse_schedule("0 0 30 2 *").next_after(at("2024-01-01T00:00:00"), UTC_ZONE) is None
    with pytest.raises(CronError):
        zone("Mars/Olympus")


def test_most_recent_and_job_names() -> None:
    s = parse_schedule("*/10 * * * *")
    last, count = most_recent(s, UTC_ZONE, at("2024-01-01T00:00:00"), at("2024-01-01T00:35:00"))
    assert (last, count) == (at("2024-01-01T00:30:00"), 3)
    last, count = most_recent(
        parse_schedule("* * * * *"), UTC_ZONE, at("2024-01-01T00:00:00"), at("2024-01-03T00:00:30")
    )
    assert last == at("2024-01-03T00:00:00") and count > 100
    assert job_name("hello", at("2024-01-01T00:30:00")) == "hello-28401150"


def cronjob(name: str = "hello", schedule: str = "* * * * *", **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"team": "a"}},
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "main", "image": "busybox"}],
                            "restartPolicy": "OnFailure",
                        }
                    }
                },
            },
            **spec,
        },
    }


async def last_run(plane: ControlPlane, name: str, ago: timedelta) -> None:
    """Pretend the CronJob last ran `ago`: its missed times are due now."""
    then = (datetime.now(UTC) - ago).strftime("%Y-%m-%dT%H:%M:%SZ")

    def set_status(cj: Obj) -> Obj:
        cj["status"] = {**cj.get("status", {}), "lastScheduleTime": then}
        return cj

    await plane.registry.patch(CRONJOB, NS, name, set_status, subresource="status")


async def jobs(plane: ControlPlane) -> list[Obj]:
    return [kv.obj for kv in (await plane.registry.list(JOB, NS)).items]


async def some_jobs(plane: ControlPlane, n: int) -> list[Obj]:
    async def check() -> tuple[list[Obj]] | None:
        found = [j for j in await jobs(plane) if not j["metadata"].get("deletionTimestamp")]
        return (found,) if len(found) == n else None

    (found,) = await eventually(check, f"{n} jobs")
    return found


async def test_validation_of_schedule_zone_and_name(plane: ControlPlane) -> None:
    for bad, field in (
        (cronjob(schedule="61 * * * *"), "spec.schedule"),
        (cronjob(schedule="TZ=UTC * * * * *"), "spec.schedule"),
        (cronjob(timeZone="Nowhere/Else"), "spec.timeZone"),
        (cronjob(name="x" * 53), "metadata.name"),
    ):
        with pytest.raises(ApiError) as e:
            await plane.registry.create(CRONJOB, NS, bad)
        assert [c.field for c in e.value.causes] == [field]


async def test_runs_the_latest_missed_time_once(plane: ControlPlane) -> None:
    await plane.registry.create(CRONJOB, NS, cronjob(suspend=True))
    await last_run(plane, "hello", timedelta(minutes=3))
    assert await jobs(plane) == []  # suspended
    cj = await get(plane.registry, CRONJOB, "hello")
    cj_uid = cj["metadata"]["uid"]

    def resume(obj: Obj) -> Obj:
        obj["spec"]["suspend"] = False
        return obj

    await plane.registry.patch(CRONJOB, NS, "hello", resume)
    (job,) = await some_jobs(plane, 1)
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    if job["metadata"]["name"] != job_name("hello", minute):  # the minute turned meanwhile
        minute -= timedelta(minutes=1)
    assert job["metadata"]["name"] == job_name("hello", minute)
    assert job["metadata"]["labels"]["team"] == "a"
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == minute.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    (ref,) = job["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("CronJob", cj_uid, True)

    async def recorded() -> Obj | None:
        status = (await get(plane.registry, CRONJOB, "hello")).get("status", {})
        return status if status.get("active") else None

    status = await recorded() or await eventually(recorded, "active job in status")
    assert [r["name"] for r in status["active"]] == [job["metadata"]["name"]]
    assert status["lastScheduleTime"] == minute.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_forbid_too_many_missed_and_history(plane: ControlPlane) -> None:
    created = await plane.registry.create(
        CRONJOB,
        NS,
        cronjob(suspend=True, concurrencyPolicy="Forbid", successfulJobsHistoryLimit=0),
    )
    manual = job_from_cronjob(created.obj, "hello-manual")
    manual["metadata"]["ownerReferences"] = [
        new_controller_ref(created.obj, CRONJOB.api_version, CRONJOB.kind)
    ]
    running = (await plane.registry.create(JOB, NS, manual)).obj
    then = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ref = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "namespace": NS,
        "name": "hello-manual",
        "uid": running["metadata"]["uid"],
    }

    def as_if_running(cj: Obj) -> Obj:
        cj["status"] = {"lastScheduleTime": then, "active": [ref]}
        return cj

    await plane.registry.patch(CRONJOB, NS, "hello", as_if_running, subresource="status")

    def resume(obj: Obj) -> Obj:
        obj["spec"]["suspend"] = False
        return obj

    await plane.registry.patch(CRONJOB, NS, "hello", resume)
    assert await eventually(lambda: events(plane.registry, "TooManyMissedTimes"), "warning")
    assert await eventually(lambda: events(plane.registry, "JobAlreadyActive"), "forbid event")
    assert [j["metadata"]["name"] for j in await jobs(plane)] == ["hello-manual"]

    def complete(j: Obj) -> Obj:
        now = now_rfc3339()
        j["status"] = {
            **j.get("status", {}),
            "completionTime": now,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached"},
            ],
        }
        return j

    await plane.registry.patch(JOB, NS, "hello-manual", complete, subresource="status")
    assert await eventually(lambda: events(plane.registry, "SawCompletedJob"), "saw it complete")
    # No longer held back: the missed time runs; history limit 0 deletes the finished Job.
    (scheduled,) = await some_jobs(plane, 1)
    assert scheduled["metadata"]["name"].startswith("hello-2")
    deleted = await eventually(lambda: events(plane.registry, "SuccessfulDelete"), "history")
    assert deleted[0]["message"] == "Deleted job hello-manual"
    status = (await get(plane.registry, CRONJOB, "hello"))["status"]
    assert status["lastSuccessfulTime"]


async def test_cli_create_job_from_cronjob(
    plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    created = await plane.registry.create(CRONJOB, NS, cronjob(suspend=True))
    assert await cli(plane, "create", "job", "by-hand", "--from=cronjob/hello") == 0
    assert capsys.readouterr().out == "job.batch/by-hand created\n"
    job = await get(plane.registry, JOB, "by-hand")
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    assert job["metadata"]["labels"] == {"team": "a"}
    assert job["metadata"]["ownerReferences"][0]["uid"] == created.obj["metadata"]["uid"]
    with pytest.raises(UsageError):
        await cli(plane, "create", "job", "x", "--from=deployment/web")
