"""The DaemonSet, Job and CronJob views and their keys, driven by Pilot."""

from __future__ import annotations

from typing import Any

from console.tui.screens import PromptScreen
from control.client import Client
from control.controlplane import ControlPlane
from control.objects import kinds
from control.operations.jobs import INSTANTIATE
from tests.polling import eventually
from tests.tui.conftest import console, noted, press_for

Obj = dict[str, Any]
CONTAINER = {"name": "main", "image": "busybox"}


def job_spec(**spec: Any) -> Obj:
    return {"template": {"spec": {"containers": [CONTAINER], "restartPolicy": "Never"}}, **spec}


async def make(client: Client, rt: kinds.ResourceType, name: str, spec: Obj) -> Obj:
    body = {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": {"name": name}, "spec": spec}
    created: Obj = await client.create(rt, body, "default")
    return created


async def test_cronjob_run_now_and_suspend(plane: ControlPlane, client: Client) -> None:
    cron = {"schedule": "0 3 * * *", "jobTemplate": {"spec": job_spec()}}
    cj = await make(client, kinds.CRONJOB, "nightly", cron)
    async with console(plane, view="cj", rows=1) as (app, pilot):
        await pilot.press("t")
        await eventually(noted(app, "job.batch/nightly-manual-"))
        (job,) = (await client.list(kinds.JOB, "default"))["items"]
        assert job["metadata"]["annotations"][INSTANTIATE] == "manual"
        assert job["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]
        await pilot.press("p")
        await eventually(noted(app, "cronjob.batch/nightly suspended"))
        assert (await client.get(kinds.CRONJOB, "nightly", "default"))["spec"]["suspend"] is True
        await pilot.press("p")
        await eventually(noted(app, "cronjob.batch/nightly resumed"))
        await pilot.press("plus")
        await eventually(noted(app, "a CronJob does not scale"))


async def test_job_s_sets_parallelism(plane: ControlPlane, client: Client) -> None:
    await make(client, kinds.JOB, "batch", job_spec(completions=10, parallelism=2))
    async with console(plane, view="jobs", rows=1) as (app, pilot):
        await press_for(pilot, "s", PromptScreen)
        await pilot.press("backspace", "5", "enter")
        await eventually(noted(app, "job.batch/batch parallelism set to 5"))
        assert (await client.get(kinds.JOB, "batch", "default"))["spec"]["parallelism"] == 5
        await pilot.press("plus")
        await eventually(noted(app, "+ does not scale a Job: s sets its parallelism"))


async def test_daemonset_does_not_scale(plane: ControlPlane, client: Client) -> None:
    labels = {"app": "agent"}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [CONTAINER]}}
    await make(
        client,
        kinds.DAEMONSET,
        "agent",
        {"selector": {"matchLabels": labels}, "template": template},
    )
    async with console(plane, view="ds", rows=1) as (app, pilot):
        for key in ("s", "minus"):
            await pilot.press(key)
        await eventually(noted(app, "a DaemonSet runs one pod on each eligible node"))
        assert not isinstance(app.screen, PromptScreen)
