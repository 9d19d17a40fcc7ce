"""The Job controller: runs pods until enough succeed (Kubernetes'
pkg/controller/job), and deletes finished Jobs after ttlSecondsAfterFinished
(Kubernetes' ttl-after-finished controller).

Pods are counted with Kubernetes' tracking finalizer: each pod is created
with `batch.kubernetes.io/job-tracking`; a finished pod's uid goes into
`status.uncountedTerminatedPods` first, then its finalizer comes off, then
the uid moves to `succeeded` or `failed`. So no pod is counted twice or lost,
even when pods are deleted. Parallelism, completions (or a work queue
without them), Indexed completion mode, backoffLimit with back-off between
failures, activeDeadlineSeconds, suspend, and the conditions of 1.31+
(SuccessCriteriaMet or FailureTarget first, Complete or Failed once no pod
runs) as Kubernetes writes them.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import TYPE_CHECKING

from agent.protocol.primitives import controller_ref, now_rfc3339, rfc3339_seconds
from control.api.options import FOREGROUND
from control.config import Config
from control.controllers.base import QueueController, claim_candidates, event_object, owner_key
from control.controllers.jobstatus import (
    BACKOFF,
    DEADLINE,
    SUCCESS,
    SUSPENDED,
    TRACKING_FINALIZER,
    Verdict,
    backoff_delay,
    completion_index,
    condition,
    finished,
    format_indexes,
    has_tracking_finalizer,
    is_active,
    is_failed,
    is_succeeded,
    is_terminating,
    is_true,
    parse_indexes,
    past_backoff_limit,
    set_condition,
)
from control.controllers.objectmeta import Obj, is_deleting, meta
from control.controllers.ownership import claim, selector_of
from control.controllers.podcontrol import (
    delete_object,
    gather_all,
    pod_from_template,
    write_status,
)
from control.controllers.podstate import is_pod_ready
from control.errors import ApiError
from control.objects.batch import COMPLETION_INDEX
from control.objects.kinds import JOB, POD, object_key

if TYPE_CHECKING:
    from control.controllers.manager import ControllerManager

log = logging.getLogger(__name__)

COMPONENT = "job-controller"
_OMITTED_AT_ZERO = frozenset({"active", "succeeded", "failed", "completedIndexes"})
_ORPHAN = "pod:"  # queue keys of pods whose finalizer may have lost its Job


class JobController(QueueController):
    name = COMPONENT
    backoff_base = 10.0  # seconds; tests shorten it

    def __init__(self, manager: ControllerManager, config: Config, *, workers: int = 2) -> None:
        super().__init__(manager, config, workers=workers)
        self.pod_control = self.new_pod_control()
        self.expectations = self.pod_control.expectations
        # Per Job: the failures seen so far and when the last one was seen.
        self._failures: dict[str, tuple[int, float]] = {}
        self.jobs = self.informer(JOB, handler=self.enqueue)
        self.pods = self.informer(POD, claimable=True, handler=self._on_pod)

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        pod = event_object(old, new)
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job":
            return  # most pods: checked first, it is cheap
        key = owner_key(self.jobs, "Job", pod)
        if key is None:
            if new is not None and has_tracking_finalizer(new):
                self.queue.add(_ORPHAN + object_key(new))
            return
        self.pod_control.observe(key, kind, pod, new)
        self.queue.add(key)

    # -- reconcile -------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        if key.startswith(_ORPHAN):
            await self._release_orphan(key.removeprefix(_ORPHAN))
            return None
        cached = self.jobs.get(key)
        if cached is None:
            self.expectations.forget(key)
            self._failures.pop(key, None)
            return None
        # A copy: the sync keeps the status and resourceVersion it writes in it.
        job = {**cached, "metadata": dict(meta(cached))}
        status = copy.deepcopy(job.get("status") or {})
        selector = selector_of(job)
        if selector is None:
            return None
        pods = await claim(self.registry, POD, job, JOB, selector, claim_candidates(self.pods, job))
        if finished(status):
            await self._remove_finalizers(job, [p for p in pods if has_tracking_finalizer(p)])
            return await self._expire(job, status)
        return await self._sync(key, job, status, pods)

    async def _sync(self, key: str, job: Obj, status: Obj, pods: list[Obj]) -> float | None:
        spec = job.get("spec") or {}
        now, stamp = time.time(), now_rfc3339()
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        count = int(completions or 0)  # Indexed Jobs always have completions
        suspended = bool(spec.get("suspend"))
        replace_terminating = spec.get("podReplacementPolicy", "TerminatingOrFailed") != "Failed"
        active = [p for p in pods if is_active(p)]
        verdict = _interim(status)

        # Count what finished: new uids into uncountedTerminatedPods.
        uncounted = status.get("uncountedTerminatedPods") or {}
        counted_ok, counted_bad = (
            set(uncounted.get("succeeded") or ()),
            set(uncounted.get("failed") or ()),
        )
        done_indexes = parse_indexes(status.get("completedIndexes"))
        uncountable: list[Obj] = []
        for pod in pods:
            uid = str(meta(pod).get("uid"))
            if not has_tracking_finalizer(pod) or uid in counted_ok | counted_bad:
                continue
            if is_succeeded(pod):
                index = completion_index(pod)
                if indexed and (index is None or index in done_indexes or index >= count):
                    uncountable.append(pod)  # a duplicate index: released, not counted
                    continue
                counted_ok.add(uid)
                if index is not None and indexed:
                    done_indexes.add(index)
            elif suspended and is_deleting(pod):
                uncountable.append(pod)  # stopped by suspend: not a failure
            elif is_failed(pod, replace_terminating) or (
                verdict is not None and not is_active(pod)
            ):
                counted_bad.add(uid)
        succeeded = int(status.get("succeeded") or 0) + len(counted_ok)
        failed = int(status.get("failed") or 0) + len(counted_bad)
        if indexed:
            succeeded = max(succeeded, len(done_indexes))

        # Decide: succeeded, failed, or keep going.
        if verdict is None and not suspended:
            if indexed or completions is not None:
                if succeeded >= count and (not indexed or len(done_indexes) >= count):
                    verdict = SUCCESS
            elif succeeded > 0 and not active:
                verdict = SUCCESS
            if verdict is None and past_backoff_limit(spec, failed, active):
                verdict = BACKOFF
            if verdict is None and _past_deadline(spec, status, now):
                verdict = DEADLINE
        again = self._remaining_deadline(spec, status, now) if verdict is None else None

        status["uncountedTerminatedPods"] = {
            k: sorted(v) for k, v in (("succeeded", counted_ok), ("failed", counted_bad)) if v
        }
        if verdict is not None:
            if set_condition(
                status, verdict.interim, "True", verdict.reason, verdict.message, stamp
            ):
                kind = "Normal" if verdict is SUCCESS else "Warning"
                await self.recorder.record(job, kind, verdict.reason, verdict.message)
        elif suspended:
            if not is_true(status, SUSPENDED):
                set_condition(status, SUSPENDED, "True", "JobSuspended", "Job suspended", stamp)
                await self.recorder.record(job, "Normal", "Suspended", "Job suspended")
            status.pop("startTime", None)
        else:
            if is_true(status, SUSPENDED):
                set_condition(status, SUSPENDED, "False", "JobResumed", "Job resumed", stamp)
                await self.recorder.record(job, "Normal", "Resumed", "Job resumed")
            status.setdefault("startTime", stamp)

        # Pods: stop them all when done or suspended, else run what is wanted.
        stopping = False
        if self.expectations.satisfied(key):
            if verdict is not None or suspended:
                await self._delete(key, job, active)
                stopping = bool(active)  # Complete or Failed waits until they are gone
                active = []
            else:
                wait = await self._run_pods(key, job, active, succeeded, done_indexes, failed, now)
                again = _sooner(again, wait)

        # The counted pods' finalizers off, then their uids into the counters.
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if is_pod_ready(p))
        status["terminating"] = sum(1 for p in pods if is_terminating(p))
        status["succeeded"], status["failed"] = (
            succeeded - len(counted_ok),
            failed - len(counted_bad),
        )
        if indexed:
            status["completedIndexes"] = format_indexes(done_indexes)
        await self._write_status(job, status)
        if counted_ok or counted_bad:
            counted = counted_ok | counted_bad
            await self._remove_finalizers(
                job, [p for p in pods if str(meta(p).get("uid")) in counted]
            )
            status["succeeded"], status["failed"] = succeeded, failed
            status["uncountedTerminatedPods"] = {}
        await self._remove_finalizers(job, uncountable)
        if (
            verdict is not None
            and not stopping
            and not active
            and not any(map(is_terminating, pods))
        ):
            set_condition(status, verdict.final, "True", verdict.reason, verdict.message, stamp)
            if verdict is SUCCESS:
                status["completionTime"] = stamp
                await self.recorder.record(job, "Normal", "Completed", "Job completed")
            again = _sooner(again, self._ttl_left(job, status))
        await self._write_status(job, status)
        return again

    async def _run_pods(
        self,
        key: str,
        job: Obj,
        active: list[Obj],
        succeeded: int,
        done_indexes: set[int],
        failed: int,
        now: float,
    ) -> float | None:
        """Create or delete pods toward the wanted number running; the seconds
        until the failure back-off allows the next pod, if it holds them back."""
        spec = job.get("spec") or {}
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        indexed = spec.get("completionMode") == "Indexed"
        if completions is None:
            want = 0 if succeeded > 0 else parallelism
        else:
            want = min(parallelism, max(int(completions) - succeeded, 0))
        if len(active) > want:
            victims = sorted(active, key=lambda p: (is_pod_ready(p), -_created(p)))
            await self._delete(key, job, victims[: len(active) - want])
            return None
        missing = want - len(active)
        if missing <= 0:
            return None
        seen, last = self._failures.get(key, (0, 0.0))
        if failed > seen:
            seen, last = failed, now
            self._failures[key] = (seen, last)
        delay = backoff_delay(failed, self.backoff_base) - (now - last) if failed else 0.0
        if delay > 0:
            return delay
        indexes: list[int | None] = [None] * missing
        if indexed:
            running = {completion_index(p) for p in active}
            free = (
                i
                for i in range(int(completions or 0))
                if i not in done_indexes and i not in running
            )
            indexes = [i for _, i in zip(range(missing), free, strict=False)]
        await self._create(key, job, indexes)
        return None

    # -- writes ----------------------------------------------------------------

    async def _create(self, key: str, job: Obj, indexes: list[int | None]) -> None:
        self.expectations.expect(key, adds=len(indexes))
        name = str(meta(job).get("name"))
        template = (job.get("spec") or {}).get("template") or {}

        async def create_one(index: int | None) -> None:
            prefix = f"{name}-" if index is None else f"{name}-{index}-"
            body = pod_from_template(job, JOB, template, prefix)
            body["metadata"]["finalizers"] = [TRACKING_FINALIZER]
            if index is not None:
                _add_index(body, name, index)
            try:
                await self.pod_control.create(key, job, body)
            except ApiError as e:
                await self.recorder.record(job, "Warning", "FailedCreate", f"Error creating: {e}")
                raise

        await gather_all([create_one(i) for i in indexes])

    async def _delete(self, key: str, job: Obj, victims: list[Obj]) -> None:
        if victims:
            self.expectations.expect(key, deletes=[object_key(p) for p in victims])
            await self.pod_control.delete_all(key, job, victims)

    async def _remove_finalizers(self, job: Obj | None, pods: list[Obj]) -> None:
        async def remove(pod: Obj) -> None:
            def drop(current: Obj) -> Obj:
                cm = current.setdefault("metadata", {})
                left = [f for f in cm.get("finalizers") or () if f != TRACKING_FINALIZER]
                if left:
                    cm["finalizers"] = left
                else:
                    cm.pop("finalizers", None)
                return current

            pm = meta(pod)
            try:
                await self.registry.patch(POD, pm.get("namespace"), str(pm.get("name")), drop)
            except ApiError as e:
                if e.code != 404:
                    raise

        await gather_all([remove(p) for p in pods])

    async def _write_status(self, job: Obj, status: Obj) -> None:
        """Write `status` unless the Job has it; counters at 0 are left out, as
        Kubernetes leaves them. The counts add to what was read: never over a
        newer status."""
        status = {k: v for k, v in status.items() if v or k not in _OMITTED_AT_ZERO}
        if status == (job.get("status") or {}):
            return
        written = await write_status(self.registry, JOB, job, status, only_over_read=True)
        if written is not None:
            job["status"] = written.get("status")
            meta(job)["resourceVersion"] = meta(written).get("resourceVersion")

    async def _release_orphan(self, pod_key: str) -> None:
        """A pod with the tracking finalizer whose Job is gone: let it go."""
        pod = self.pods.get(pod_key)
        if pod is None or not has_tracking_finalizer(pod):
            return
        ref = controller_ref(pod) or {}
        try:
            job = (
                await self.registry.get(JOB, meta(pod).get("namespace"), str(ref.get("name")))
            ).obj
        except ApiError as e:
            if e.code != 404:
                raise
            job = None
        if job is None or meta(job).get("uid") != ref.get("uid"):
            await self._remove_finalizers(None, [pod])

    # -- time ------------------------------------------------------------------

    def _remaining_deadline(self, spec: Obj, status: Obj, now: float) -> float | None:
        deadline = spec.get("activeDeadlineSeconds")
        started = rfc3339_seconds(status.get("startTime"))
        if deadline is None or started is None or spec.get("suspend"):
            return None
        return max(started + int(deadline) - now, 0.0) + 0.05

    def _ttl_left(self, job: Obj, status: Obj) -> float | None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return None
        final = condition(status, "Complete") or condition(status, "Failed") or {}
        done = rfc3339_seconds(status.get("completionTime") or final.get("lastTransitionTime"))
        if done is None:
            return None
        return max(done + int(ttl) - time.time(), 0.0)

    async def _expire(self, job: Obj, status: Obj) -> float | None:
        """ttlSecondsAfterFinished: delete the finished Job, its pods with it."""
        left = self._ttl_left(job, status)
        if left is None or is_deleting(job):
            return None
        if left > 0:
            return left + 0.05
        await delete_object(self.registry, JOB, job, FOREGROUND)
        return None


def _interim(status: Obj) -> Verdict | None:
    """The verdict an earlier sync reached, if any."""
    for verdict in (SUCCESS, BACKOFF, DEADLINE):
        c = condition(status, verdict.interim)
        if c and c.get("status") == "True" and c.get("reason") == verdict.reason:
            return verdict
    return None


def _past_deadline(spec: Obj, status: Obj, now: float) -> bool:
    deadline = spec.get("activeDeadlineSeconds")
    started = rfc3339_seconds(status.get("startTime"))
    return deadline is not None and started is not None and now - started >= int(deadline)


def _sooner(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _created(pod: Obj) -> float:
    return rfc3339_seconds(meta(pod).get("creationTimestamp")) or 0.0


def _add_index(pod: Obj, job_name: str, index: int) -> None:
    """Indexed mode: the index as annotation, label, hostname and the
    JOB_COMPLETION_INDEX variable of every container."""
    pm = pod["metadata"]
    pm.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
    pm.setdefault("labels", {})[COMPLETION_INDEX] = str(index)
    spec = pod["spec"]
    spec.setdefault("hostname", f"{job_name}-{index}")
    ref = {
        "fieldRef": {"apiVersion": "v1", "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}
    }
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or ():
            env = [e for e in container.get("env") or () if e.get("name") != "JOB_COMPLETION_INDEX"]
            container["env"] = [{"name": "JOB_COMPLETION_INDEX", "valueFrom": ref}, *env]
