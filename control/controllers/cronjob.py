"""The CronJob controller: a Job at each scheduled time (Kubernetes'
cronjob_controllerv2).

Each sync brings `status.active` up to date with the CronJob's Jobs (events
SawCompletedJob, MissingJob), removes finished Jobs beyond the history
limits, then looks for the most recent scheduled time not run yet: missed
times before `startingDeadlineSeconds` are skipped, more than 100 missed
times is a TooManyMissedTimes warning, and concurrencyPolicy decides
whether a Job still running holds the new one back (Forbid) or is replaced
(Replace). A Job's name is the CronJob's and the scheduled time in minutes
since the epoch, so a time runs at most once. Then it sleeps until the next
scheduled time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import format_datetime
from typing import TYPE_CHECKING

from agent.protocol.primitives import new_controller_ref, parse_rfc3339, rfc3339_seconds
from control.api.options import BACKGROUND
from control.config import Config
from control.controllers.base import QueueController
from control.controllers.jobstatus import COMPLETE, FAILED, condition, finished, is_true
from control.controllers.objectmeta import Obj, is_deleting, meta
from control.controllers.ownership import CONTROLLER_UID_INDEX
from control.controllers.podcontrol import delete_object, write_status
from control.errors import ApiError
from control.objects.batch import job_from_cronjob
from control.objects.cron import CronError, Schedule, parse_schedule, zone
from control.objects.kinds import CRONJOB, JOB

if TYPE_CHECKING:
    from control.controllers.manager import ControllerManager

log = logging.getLogger(__name__)

COMPONENT = "cronjob-controller"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
TOO_MANY_MISSED = 100


def job_name(cronjob: str, scheduled: datetime) -> str:
    """Kubernetes' name for the Job of one scheduled time."""
    return f"{cronjob}-{int(scheduled.timestamp()) // 60}"


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local_rfc3339(t: datetime) -> str:
    text = t.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def most_recent(
    schedule: Schedule, tz: tzinfo, earliest: datetime, now: datetime
) -> tuple[datetime | None, int]:
    """The latest scheduled time in (earliest, now], and how many there were
    (counted up to just past the limit of missed times)."""
    last, count, t = None, 0, earliest
    while (t2 := schedule.next_after(t, tz)) is not None and t2 <= now:
        last, count, t = t2, count + 1, t2
        if count > TOO_MANY_MISSED:
            window = timedelta(hours=1)
            while True:  # only the latest matters now: look back from `now`
                found = most_recent(schedule, tz, max(now - window, t), now)[0]
                if found is not None or now - window <= t:
                    return found or last, count
                window *= 2
    return last, count


class CronJobController(QueueController):
    name = COMPONENT

    def __init__(self, manager: ControllerManager, config: Config, *, workers: int = 2) -> None:
        super().__init__(manager, config, workers=workers)
        self.jobs = self.informer(JOB, claimable=True, handler=self._on_job)
        self.cronjobs = self.informer(CRONJOB, handler=self.enqueue)

    def _on_job(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        _, key = self.event_owner(self.cronjobs, "CronJob", old, new)
        if key is not None:
            self.queue.add(key)

    async def reconcile(self, key: str) -> float | None:
        cj = self.cronjobs.get(key)
        status = dict((cj or {}).get("status") or {})
        if cj is None:
            return None
        jobs = self.jobs.by_index(CONTROLLER_UID_INDEX, str(meta(cj).get("uid")))
        await self._track_active(cj, status, jobs)
        await self._clean_history(cj, jobs)
        again = None
        if not is_deleting(cj):
            again = await self._schedule(cj, status)
        await self._write_status(cj, status)
        return again

    async def _track_active(self, cj: Obj, status: Obj, jobs: list[Obj]) -> None:
        active = {str(r.get("uid")): r for r in status.get("active") or ()}
        for job in jobs:
            uid = str(meta(job).get("uid"))
            job_status = job.get("status") or {}
            if not finished(job_status):
                scheduled = SCHEDULED_TIMESTAMP in (meta(job).get("annotations") or {})
                if uid not in active and scheduled:
                    active[uid] = _ref(job)  # ours, made by a sync whose status write lost
                elif uid not in active and not is_deleting(job):
                    message = f"Saw a job that the controller did not create or forgot: {meta(job).get('name')}"
                    await self.recorder.record(cj, "Warning", "UnexpectedJob", message)
                continue
            if uid in active:
                del active[uid]
                done = COMPLETE if is_true(job_status, COMPLETE) else FAILED
                message = f"Saw completed job: {meta(job).get('name')}, condition: {done}"
                await self.recorder.record(cj, "Normal", "SawCompletedJob", message)
            if is_true(job_status, COMPLETE):
                when = job_status.get("completionTime") or (
                    condition(job_status, COMPLETE) or {}
                ).get("lastTransitionTime")
                last = status.get("lastSuccessfulTime")
                if when and (
                    not last or (rfc3339_seconds(when) or 0) > (rfc3339_seconds(last) or 0)
                ):
                    status["lastSuccessfulTime"] = when
        known = {str(meta(j).get("uid")) for j in jobs}
        for uid, ref in list(active.items()):
            if uid in known:
                continue
            try:
                found = (
                    await self.registry.get(JOB, ref.get("namespace"), str(ref.get("name")))
                ).obj
            except ApiError as e:
                if e.code != 404:
                    raise
                found = None
            if found is None or str(meta(found).get("uid")) != uid:
                del active[uid]
                message = f"Active job went missing: {ref.get('name')}"
                await self.recorder.record(cj, "Normal", "MissingJob", message)
        if active:
            status["active"] = sorted(active.values(), key=lambda r: str(r.get("name")))
        else:
            status.pop("active", None)

    async def _clean_history(self, cj: Obj, jobs: list[Obj]) -> None:
        spec = cj.get("spec") or {}
        done = [j for j in jobs if finished(j.get("status") or {}) and not is_deleting(j)]
        for kind, limit in (
            (COMPLETE, "successfulJobsHistoryLimit"),
            (FAILED, "failedJobsHistoryLimit"),
        ):
            keep = int(spec.get(limit, 3 if kind == COMPLETE else 1))
            of_kind = [j for j in done if is_true(j.get("status") or {}, kind)]
            of_kind.sort(
                key=lambda j: rfc3339_seconds((j.get("status") or {}).get("startTime")) or 0
            )
            for job in of_kind[: max(len(of_kind) - keep, 0)]:
                await self._delete_job(cj, job)

    async def _schedule(self, cj: Obj, status: Obj) -> float | None:
        spec = cj.get("spec") or {}
        try:
            schedule = parse_schedule(str(spec.get("schedule") or ""))
            tz = zone(spec.get("timeZone"))
        except CronError as e:
            reason = "UnknownTimeZone" if "time zone" in str(e) else "UnparseableSchedule"
            await self.recorder.record(cj, "Warning", reason, str(e))
            return None
        if spec.get("suspend"):
            return None
        now = datetime.now(UTC)
        last = status.get("lastScheduleTime") or meta(cj).get("creationTimestamp")
        earliest = parse_rfc3339(last) if last else now
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - timedelta(seconds=int(deadline)))
        scheduled, missed = most_recent(schedule, tz, earliest, now)
        if missed > TOO_MANY_MISSED:
            message = (
                f"too many missed start times: {missed}. Set or decrease "
                ".spec.startingDeadlineSeconds or check clock skew"
            )
            await self.recorder.record(cj, "Warning", "TooManyMissedTimes", message)
        after = _until_next(schedule, tz, now)
        if scheduled is None:
            return after
        if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
            when = format_datetime(scheduled.astimezone(UTC))
            message = f"Missed scheduled time to start a job: {when}"
            await self.recorder.record(cj, "Warning", "MissSchedule", message)
            return after
        name = job_name(str(meta(cj).get("name")), scheduled)
        active = status.get("active") or []
        if any(r.get("name") == name for r in active) or self.jobs.get(
            f"{meta(cj).get('namespace')}/{name}"
        ):
            return after
        policy = spec.get("concurrencyPolicy", "Allow")
        if active and policy == "Forbid":
            message = "Not starting job because prior execution is running and concurrency policy is Forbid"
            await self.recorder.record(cj, "Normal", "JobAlreadyActive", message)
            return after
        if active and policy == "Replace":
            for ref in active:
                job = self.jobs.get(f"{ref.get('namespace')}/{ref.get('name')}")
                if job is not None:
                    await self._delete_job(cj, job)
            status.pop("active", None)
        job = await self._create_job(cj, name, scheduled, tz)
        if job is not None:
            status["active"] = [*(status.get("active") or []), _ref(job)]
        status["lastScheduleTime"] = _rfc3339(scheduled)
        return after

    async def _create_job(self, cj: Obj, name: str, scheduled: datetime, tz: tzinfo) -> Obj | None:
        body = job_from_cronjob(cj, name)
        body["metadata"]["annotations"][SCHEDULED_TIMESTAMP] = _local_rfc3339(
            scheduled.astimezone(tz)
        )
        body["metadata"]["ownerReferences"] = [
            new_controller_ref(cj, CRONJOB.api_version, CRONJOB.kind)
        ]
        try:
            kv = await self.registry.create(JOB, str(meta(cj).get("namespace")), body)
        except ApiError as e:
            if e.code == 409:
                return None  # made already: that time has run
            await self.recorder.record(cj, "Warning", "FailedCreate", f"Error creating job: {e}")
            raise
        await self.recorder.record(cj, "Normal", "SuccessfulCreate", f"Created job {name}")
        return kv.obj

    async def _delete_job(self, cj: Obj, job: Obj) -> None:
        if await delete_object(self.registry, JOB, job, BACKGROUND):
            message = f"Deleted job {meta(job).get('name')}"
            await self.recorder.record(cj, "Normal", "SuccessfulDelete", message)

    async def _write_status(self, cj: Obj, status: Obj) -> None:
        if status != (cj.get("status") or {}):
            # Built from what was read: never over a newer status.
            await write_status(self.registry, CRONJOB, cj, status, only_over_read=True)


def _ref(job: Obj) -> Obj:
    m = meta(job)
    return {
        "apiVersion": JOB.api_version,
        "kind": JOB.kind,
        "namespace": m.get("namespace"),
        "name": m.get("name"),
        "uid": m.get("uid"),
        "resourceVersion": m.get("resourceVersion"),
    }


def _until_next(schedule: Schedule, tz: tzinfo, now: datetime) -> float | None:
    following = schedule.next_after(now, tz)
    if following is None:
        return None
    return (following - now).total_seconds() + 0.1
