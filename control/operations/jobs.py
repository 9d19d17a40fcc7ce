"""What a user does to Jobs and CronJobs: run a CronJob now (`kubectl create
job NAME --from=cronjob/X`), suspend or resume a CronJob, set a Job's
parallelism."""

from __future__ import annotations

from typing import Any

from control.client import Client
from control.objects.batch import job_from_cronjob
from control.objects.kinds import CRONJOB, JOB
from control.objects.names import generated_name
from control.operations import OperationError

# What kubectl marks a Job made by hand from a CronJob with.
INSTANTIATE = "cronjob.kubernetes.io/instantiate"


async def create_job_from_cronjob(
    client: Client, cronjob: str, namespace: str | None, name: str | None = None
) -> dict[str, Any]:
    """A Job from the CronJob's jobTemplate now, owned by the CronJob, as
    `kubectl create job --from=cronjob/X` makes it; without `name`, the
    CronJob's name and a random suffix (the console's `t`)."""
    cj = await client.get(CRONJOB, cronjob, namespace)
    job = job_from_cronjob(cj, name or generated_name(f"{cronjob}-manual-"))
    job["metadata"]["annotations"][INSTANTIATE] = "manual"
    meta = cj.get("metadata") or {}
    job["metadata"]["ownerReferences"] = [
        {
            "apiVersion": CRONJOB.api_version,
            "kind": CRONJOB.kind,
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "controller": True,
        }
    ]
    created: dict[str, Any] = await client.create(JOB, job, namespace)
    return created


async def toggle_suspend(client: Client, cronjob: str, namespace: str | None) -> bool:
    """Suspend a running CronJob or resume a suspended one; True when now suspended."""
    cj = await client.get(CRONJOB, cronjob, namespace)
    on = not (cj.get("spec") or {}).get("suspend")
    await client.patch(CRONJOB, cronjob, {"spec": {"suspend": on}}, namespace)
    return on


async def set_parallelism(
    client: Client, job: str, namespace: str | None, parallelism: int
) -> None:
    if parallelism < 0:
        raise OperationError("parallelism must be >= 0")
    await client.patch(JOB, job, {"spec": {"parallelism": parallelism}}, namespace)
