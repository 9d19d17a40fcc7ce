"""The real kubectl's batch shortcuts against `pilothouse serve --hollow-nodes 2`:
`create job`, `create cronjob` and `create job --from=cronjob/X` send protobuf
Jobs and CronJobs; `get` prints Kubernetes' columns of them and of DaemonSets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.api.test_kubectl_tables import Kubectl, header
from tests.conftest import Served

DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: a, image: busybox}]}
"""


@pytest.fixture
def kubectl(hollow_served: Served, tmp_path: Path) -> Kubectl:
    return Kubectl(hollow_served, tmp_path / "home")


def test_create_job_cronjob_and_job_from_cronjob(kubectl: Kubectl) -> None:
    assert kubectl.ok("create", "job", "pi", "--image=busybox", "--", "date") == (
        "job.batch/pi created\n"
    )
    kubectl.ok(
        "create", "cronjob", "hello", "--image=busybox", "--schedule=*/5 * * * *", "--", "echo"
    )
    assert kubectl.ok("create", "job", "now", "--from=cronjob/hello") == "job.batch/now created\n"
    job = json.loads(kubectl.ok("get", "job", "now", "-o", "json"))
    cronjob = json.loads(kubectl.ok("get", "cronjob", "hello", "-o", "json"))
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("CronJob", cronjob["metadata"]["uid"])
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert cronjob["spec"]["concurrencyPolicy"] == "Allow"
    assert cronjob["spec"]["successfulJobsHistoryLimit"] == 3

    assert header(kubectl.ok("get", "jobs")) == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert header(kubectl.ok("get", "jobs", "-o", "wide"))[5:] == [
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert header(kubectl.ok("get", "cj")) == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST",
        "SCHEDULE",
        "AGE",
    ]
    row = kubectl.ok("get", "cj", "hello", "--no-headers").split()
    assert row[:7] == ["hello", "*/5", "*", "*", "*", "*", "<none>"]


def test_daemonset_columns_and_short_name(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=DAEMONSET)
    assert kubectl.ok("get", "ds").splitlines()[0].split() == (
        "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE".split()
    )
    deadline = time.monotonic() + 20
    while kubectl.ok("get", "ds", "agent", "--no-headers").split()[1:6] != ["2"] * 5:
        assert time.monotonic() < deadline, kubectl.ok("get", "ds", "agent")
        time.sleep(0.2)
    resources = kubectl.ok("api-resources", "--api-group=batch", "-o", "name").split()
    assert resources == ["cronjobs.batch", "jobs.batch"]
    assert "daemonset.apps/agent" in kubectl.ok("get", "all", "-o", "name")
