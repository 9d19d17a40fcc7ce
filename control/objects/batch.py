"""The `batch/v1` kinds: Job and CronJob, and the labels and selector the API
server gives a new Job (Kubernetes' job strategy)."""

from __future__ import annotations

import copy
from typing import Any, Literal, Self

from pydantic import Field, model_validator
from pydantic_core import InitErrorDetails

from control.objects.apps import PodTemplateSpec
from control.objects.cron import CronError, parse_schedule, zone
from control.objects.meta import (
    INT32_MAX,
    INT64_MAX,
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
    Condition,
    KubeModel,
    KubeObject,
    LabelSelector,
    ObjectMeta,
    ObjectReference,
    SubdomainMeta,
    Time,
    field_error,
    raise_errors,
    unsupported,
)

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
# A CronJob's name leaves room for the 11-character suffix of its Jobs' names.
CRONJOB_NAME_MAX = 52


class JobSpec(KubeModel):
    parallelism: int | None = Field(None, ge=0, le=INT32_MAX)
    completions: int | None = Field(None, ge=0, le=INT32_MAX)
    activeDeadlineSeconds: int | None = Field(None, ge=0, le=INT64_MAX)
    backoffLimit: int | None = Field(None, ge=0, le=INT32_MAX)
    ttlSecondsAfterFinished: int | None = Field(None, ge=0, le=INT32_MAX)
    completionMode: Literal["NonIndexed", "Indexed"] = "NonIndexed"
    suspend: bool = False
    manualSelector: bool | None = None
    selector: LabelSelector | None = None
    template: PodTemplateSpec
    podReplacementPolicy: Literal["TerminatingOrFailed", "Failed"] = "TerminatingOrFailed"

    @model_validator(mode="after")
    def _check(self) -> Self:
        # Kubernetes' defaults: one pod, once, unless told otherwise.
        if self.completions is None and self.parallelism is None:
            self.completions = 1
        if self.parallelism is None:
            self.parallelism = 1
        if self.backoffLimit is None:
            self.backoffLimit = 6
        errors: list[InitErrorDetails] = []
        policy = self.template.spec.restartPolicy
        if policy not in ("OnFailure", "Never"):
            loc = ("template", "spec", "restartPolicy")
            errors.append(
                field_error(loc, NOT_SUPPORTED, unsupported(policy, ["OnFailure", "Never"]))
            )
        if self.completionMode == "Indexed" and self.completions is None:
            why = "when completion mode is Indexed"
            errors.append(field_error(("completions",), REQUIRED, why))
        if self.selector is not None and not self.selector.matches(self.template.metadata.labels):
            why = "`selector` does not match template `labels`"
            errors.append(field_error(("template", "metadata", "labels"), INVALID, why))
        raise_errors("JobSpec", errors)
        return self


class JobCondition(Condition):
    lastProbeTime: Time | None = None


class UncountedTerminatedPods(KubeModel):
    succeeded: list[str] | None = None
    failed: list[str] | None = None


class JobStatus(KubeModel):
    conditions: list[JobCondition] | None = None
    startTime: Time | None = None
    completionTime: Time | None = None
    active: int | None = Field(None, ge=0, le=INT32_MAX)
    succeeded: int | None = Field(None, ge=0, le=INT32_MAX)
    failed: int | None = Field(None, ge=0, le=INT32_MAX)
    terminating: int | None = Field(None, ge=0, le=INT32_MAX)
    completedIndexes: str | None = None
    failedIndexes: str | None = None
    uncountedTerminatedPods: UncountedTerminatedPods | None = None
    ready: int | None = Field(None, ge=0, le=INT32_MAX)


class Job(KubeObject):
    """Pods run until enough of them succeed."""

    metadata: SubdomainMeta
    spec: JobSpec
    status: JobStatus | None = None


class JobTemplateSpec(KubeModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: JobSpec


class CronJobSpec(KubeModel):
    schedule: str
    timeZone: str | None = None
    startingDeadlineSeconds: int | None = Field(None, ge=0, le=INT64_MAX)
    concurrencyPolicy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    suspend: bool = False
    jobTemplate: JobTemplateSpec
    successfulJobsHistoryLimit: int = Field(3, ge=0, le=INT32_MAX)
    failedJobsHistoryLimit: int = Field(1, ge=0, le=INT32_MAX)

    @model_validator(mode="after")
    def _check(self) -> Self:
        errors: list[InitErrorDetails] = []
        if "TZ=" in self.schedule:
            why = "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            errors.append(field_error(("schedule",), INVALID, why))
        else:
            try:
                parse_schedule(self.schedule)
            except CronError as e:
                errors.append(field_error(("schedule",), INVALID, f"unparseable schedule: {e}"))
        if self.timeZone is not None:
            try:
                zone(self.timeZone)
            except CronError as e:
                errors.append(field_error(("timeZone",), INVALID, str(e)))
        raise_errors("CronJobSpec", errors)
        return self


class CronJobStatus(KubeModel):
    active: list[ObjectReference] | None = None
    lastScheduleTime: Time | None = None
    lastSuccessfulTime: Time | None = None


class CronJobMeta(SubdomainMeta):
    @model_validator(mode="after")
    def _short_enough(self) -> Self:
        if len(self.name) > CRONJOB_NAME_MAX:
            why = f"must be no more than {CRONJOB_NAME_MAX} characters"
            raise_errors("CronJobMeta", [field_error(("name",), TOO_LONG, why)])
        return self


class CronJob(KubeObject):
    """A Job at each time of a schedule."""

    metadata: CronJobMeta
    spec: CronJobSpec
    status: CronJobStatus | None = None


def prepare_job_create(job: dict[str, Any], uid: str) -> None:
    """What the API server does to a new Job before validation: its labels
    default to its template's, and unless `spec.manualSelector`, the pods are
    labelled with the Job's name and uid and selected by the uid."""
    if not isinstance(job.get("spec"), dict) or not isinstance(job.get("metadata"), dict):
        return
    meta, spec = job["metadata"], job["spec"]
    template = spec.get("template")
    if not isinstance(template, dict):
        return
    tmeta = template.setdefault("metadata", {})
    if not isinstance(tmeta, dict):
        return
    if tmeta.get("labels") and not meta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    if spec.get("manualSelector") is True:
        return
    labels = tmeta.get("labels") or {}
    name = str(meta.get("name") or "")
    generated = {
        CONTROLLER_UID_LABEL: uid,
        JOB_NAME_LABEL: name,
        LEGACY_CONTROLLER_UID_LABEL: uid,
        LEGACY_JOB_NAME_LABEL: name,
    }
    tmeta["labels"] = {**labels, **{k: v for k, v in generated.items() if k not in labels}}
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = spec["selector"] = {}
    match = selector.setdefault("matchLabels", {})
    if isinstance(match, dict):
        match.setdefault(CONTROLLER_UID_LABEL, uid)


def job_from_cronjob(cronjob: dict[str, Any], name: str) -> dict[str, Any]:
    """A Job from a CronJob's jobTemplate: its labels, annotations and spec
    (what the CronJob controller and `create job --from=cronjob/X` make)."""
    spec = cronjob.get("spec") or {}
    template = spec.get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": str((cronjob.get("metadata") or {}).get("namespace")),
            "labels": dict(tmeta.get("labels") or {}),
            "annotations": dict(tmeta.get("annotations") or {}),
        },
        "spec": copy.deepcopy(template.get("spec") or {}),
    }
