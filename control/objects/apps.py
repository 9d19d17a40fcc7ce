"""The `apps/v1` kinds: Deployment, ReplicaSet and DaemonSet."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import Field, PlainValidator, model_validator
from pydantic_core import InitErrorDetails

from control.objects.core import PodSpec
from control.objects.meta import (
    FORBIDDEN,
    INT32_MAX,
    INT64_MAX,
    INVALID,
    NOT_SUPPORTED,
    Condition,
    Int32,
    Int64,
    KubeModel,
    KubeObject,
    LabelSelector,
    ObjectMeta,
    SubdomainMeta,
    Time,
    error,
    field_error,
    raise_errors,
    unsupported,
)

_PERCENT = re.compile(r"[0-9]+%")


def _int_or_percent(value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise error(INVALID, "must be >= 0")
        if value > INT32_MAX:
            raise error(INVALID, f"must be <= {INT32_MAX}")
        return value
    if isinstance(value, str) and _PERCENT.fullmatch(value):
        return value
    raise error(
        INVALID,
        "must be an integer or a percent string: a numeric string followed by an ending '%'",
    )


IntOrPercent = Annotated[int | str, PlainValidator(_int_or_percent)]


def _is_zero(value: int | str) -> bool:
    return value == 0 or (isinstance(value, str) and int(value[:-1]) == 0)


class PodTemplateSpec(KubeModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec


class RollingUpdateDeployment(KubeModel):
    maxUnavailable: IntOrPercent = "25%"
    maxSurge: IntOrPercent = "25%"


class DeploymentStrategy(KubeModel):
    type: Literal["Recreate", "RollingUpdate"] = "RollingUpdate"
    rollingUpdate: RollingUpdateDeployment | None = None

    @model_validator(mode="after")
    def _default_rolling_update(self) -> Self:
        if self.type == "RollingUpdate" and self.rollingUpdate is None:
            self.rollingUpdate = RollingUpdateDeployment()
        return self

    def problems(self) -> list[InitErrorDetails]:
        """Cross-field problems, checked by DeploymentSpec so they are reported
        together with the spec's own."""
        ru = self.rollingUpdate
        if ru is None:
            return []
        if self.type == "Recreate":
            why = "may not be specified when strategy `type` is 'Recreate'"
            return [field_error(("strategy", "rollingUpdate"), FORBIDDEN, why)]
        return _unavailable_problems("strategy", ru.maxUnavailable, ru.maxSurge)


def _unavailable_problems(
    strategy: str, max_unavailable: int | str, max_surge: int | str
) -> list[InitErrorDetails]:
    """What Deployments and DaemonSets both check of a rolling update."""
    loc = (strategy, "rollingUpdate", "maxUnavailable")
    if _is_zero(max_surge) and _is_zero(max_unavailable):
        return [field_error(loc, INVALID, "may not be 0 when `maxSurge` is 0")]
    if isinstance(max_unavailable, str) and int(max_unavailable[:-1]) > 100:
        return [field_error(loc, INVALID, "must not be greater than 100%")]
    return []


def _workload_errors(
    workload: str, selector: LabelSelector, template: PodTemplateSpec
) -> list[InitErrorDetails]:
    """What Deployment and ReplicaSet specs both check."""
    errors: list[InitErrorDetails] = []
    if selector.is_empty():
        why = f"empty selector is invalid for {workload}"
        errors.append(field_error(("selector",), INVALID, why))
    elif not selector.matches(template.metadata.labels):
        why = "`selector` does not match template `labels`"
        errors.append(field_error(("template", "metadata", "labels"), INVALID, why))
    policy = template.spec.restartPolicy
    if policy != "Always":
        loc = ("template", "spec", "restartPolicy")
        errors.append(field_error(loc, NOT_SUPPORTED, unsupported(policy, ["Always"])))
    return errors


class DeploymentSpec(KubeModel):
    replicas: int = Field(1, ge=0, le=INT32_MAX)
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy)
    minReadySeconds: int = Field(0, ge=0, le=INT32_MAX)
    revisionHistoryLimit: int = Field(10, ge=0, le=INT32_MAX)
    progressDeadlineSeconds: int = Field(600, ge=0, le=INT32_MAX)
    paused: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        errors = _workload_errors("deployment", self.selector, self.template)
        errors += self.strategy.problems()
        if self.progressDeadlineSeconds <= self.minReadySeconds:
            why = "must be greater than minReadySeconds"
            errors.append(field_error(("progressDeadlineSeconds",), INVALID, why))
        raise_errors("DeploymentSpec", errors)
        return self


class DeploymentCondition(Condition):
    lastUpdateTime: Time | None = None


class DeploymentStatus(KubeModel):
    observedGeneration: Int64 | None = None
    replicas: Int32 | None = None
    updatedReplicas: Int32 | None = None
    readyReplicas: Int32 | None = None
    availableReplicas: Int32 | None = None
    unavailableReplicas: Int32 | None = None
    conditions: list[DeploymentCondition] | None = None
    collisionCount: Int32 | None = None


class Deployment(KubeObject):
    metadata: SubdomainMeta
    spec: DeploymentSpec
    status: DeploymentStatus | None = None


class ReplicaSetSpec(KubeModel):
    replicas: int = Field(1, ge=0, le=INT32_MAX)
    minReadySeconds: int = Field(0, ge=0, le=INT32_MAX)
    selector: LabelSelector
    template: PodTemplateSpec

    @model_validator(mode="after")
    def _check(self) -> Self:
        raise_errors("ReplicaSetSpec", _workload_errors("replicaset", self.selector, self.template))
        return self


class ReplicaSetStatus(KubeModel):
    replicas: Int32 = 0
    fullyLabeledReplicas: Int32 | None = None
    readyReplicas: Int32 | None = None
    availableReplicas: Int32 | None = None
    observedGeneration: Int64 | None = None
    conditions: list[Condition] | None = None


class ReplicaSet(KubeObject):
    metadata: SubdomainMeta
    spec: ReplicaSetSpec
    status: ReplicaSetStatus | None = None


class RollingUpdateDaemonSet(KubeModel):
    maxUnavailable: IntOrPercent = 1
    maxSurge: IntOrPercent = 0


class DaemonSetUpdateStrategy(KubeModel):
    """OnDelete, or RollingUpdate (the default, with its defaults)."""

    type: Literal["OnDelete", "RollingUpdate"] = "RollingUpdate"
    rollingUpdate: RollingUpdateDaemonSet | None = None


class DaemonSetSpec(KubeModel):
    selector: LabelSelector
    template: PodTemplateSpec
    updateStrategy: DaemonSetUpdateStrategy = Field(default_factory=DaemonSetUpdateStrategy)
    minReadySeconds: int = Field(0, ge=0, le=INT32_MAX)
    revisionHistoryLimit: int = Field(10, ge=0, le=INT32_MAX)

    @model_validator(mode="after")
    def _check(self) -> Self:
        errors = _workload_errors("daemonset", self.selector, self.template)
        strategy = self.updateStrategy
        if strategy.type == "RollingUpdate":
            ru = strategy.rollingUpdate = strategy.rollingUpdate or RollingUpdateDaemonSet()
            errors += _unavailable_problems("updateStrategy", ru.maxUnavailable, ru.maxSurge)
        raise_errors("DaemonSetSpec", errors)
        return self


class DaemonSetStatus(KubeModel):
    currentNumberScheduled: int = Field(0, ge=0, le=INT32_MAX)
    numberMisscheduled: int = Field(0, ge=0, le=INT32_MAX)
    desiredNumberScheduled: int = Field(0, ge=0, le=INT32_MAX)
    numberReady: int = Field(0, ge=0, le=INT32_MAX)
    observedGeneration: int | None = Field(None, ge=0, le=INT64_MAX)
    updatedNumberScheduled: int | None = Field(None, ge=0, le=INT32_MAX)
    numberAvailable: int | None = Field(None, ge=0, le=INT32_MAX)
    numberUnavailable: int | None = Field(None, ge=0, le=INT32_MAX)
    collisionCount: int | None = Field(None, ge=0, le=INT32_MAX)
    conditions: list[Condition] | None = None


class DaemonSet(KubeObject):
    """One pod on each eligible node."""

    metadata: SubdomainMeta
    spec: DaemonSetSpec
    status: DaemonSetStatus | None = None
