"""kubectl's columns of Jobs, CronJobs and DaemonSets, cell by cell."""

from __future__ import annotations

from control.objects.columns import human_duration, job_completions, job_status, rows


def test_human_duration_as_apimachinery() -> None:
    cases = {
        5: "5s",
        119: "119s",
        150: "2m30s",
        600: "10m",
        3 * 3600 + 600: "3h10m",
        10 * 3600: "10h",
        2 * 86400 + 5 * 3600: "2d5h",
        30 * 86400: "30d",
        3 * 365 * 86400 + 86400: "3y1d",
    }
    assert {s: human_duration(s) for s in cases} == cases


def test_job_status_and_completions() -> None:
    def cond(kind: str) -> dict[str, object]:
        return {"status": {"conditions": [{"type": kind, "status": "True"}]}}

    assert job_status({}) == "Running"
    assert job_status(cond("Complete")) == "Complete"
    assert job_status(cond("FailureTarget")) == "FailureTarget"
    assert job_status({"metadata": {"deletionTimestamp": "x"}}) == "Terminating"
    assert job_completions({"spec": {"completions": 3}, "status": {"succeeded": 1}}) == "1/3"
    assert job_completions({"spec": {"parallelism": 4}}) == "0/1 of 4"
    assert job_completions({"spec": {"parallelism": 1}}) == "0/1"


def test_cronjob_and_daemonset_rows() -> None:
    cj = {
        "metadata": {"name": "hello"},
        "spec": {"schedule": "@hourly", "suspend": False, "jobTemplate": {"spec": {}}},
        "status": {"active": [{"name": "a"}]},
    }
    headers, (row,) = rows("CronJob", [cj])
    assert headers == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    assert row[:6] == ["hello", "@hourly", "<none>", "False", "1", "<none>"]
    ds = {
        "metadata": {"name": "agent"},
        "spec": {"template": {"spec": {"nodeSelector": {"b": "2", "a": "1"}}}},
        "status": {"desiredNumberScheduled": 3, "numberReady": 2},
    }
    headers, (row,) = rows("DaemonSet", [ds])
    assert ",".join(headers[:7]) == "NAME,DESIRED,CURRENT,READY,UP-TO-DATE,AVAILABLE,NODE SELECTOR"
    assert row[:7] == ["agent", "3", "0", "2", "0", "0", "a=1,b=2"]
