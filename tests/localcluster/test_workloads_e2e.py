"""Pod configuration, lifecycle and workloads end to end (issue 13):
`pilothouse up --nodes 3`, then ConfigMaps and Secrets as env and files (files
that follow an update, a Secret file's mode, the Secret on the node's tmpfs),
init containers in order before the app, a container over its memory limit
OOMKilled; a DaemonSet with one pod on each node that a cordoned and tainted
node loses and gets back; a Job's completions two at a time, a failing Job
stopped at its backoffLimit; a CronJob every minute, then suspended.

One cluster serves the whole module (tests.localcluster.clicluster); the tests
run in order and the last takes it down and looks for what is left behind.
The CronJob is made by the first test and checked by later ones, so that its
minutes pass while the other tests run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from agent.protocol.primitives import rfc3339_seconds
from control.localcluster.teardown import mounts_under
from control.objects.kinds import CONFIGMAP, CRONJOB, DAEMONSET, JOB, NODE, POD, SECRET
from tests.localcluster.clicluster import (
    Cluster,
    cli_cluster,
    container,
    down_leaves_nothing,
    ok,
    poll,
)
from tests.localcluster.names import SHARED_CLUSTER_MODULE, unique

pytestmark = SHARED_CLUSTER_MODULE

NAMES = unique("wl")
BUSYBOX = "pilothouse/busybox:latest"
SLEEP = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
NODES = {"node1", "node2", "node3"}  # what `up --nodes 3` names them
SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# When the CronJob was suspended (time.time()), for the test that runs last.
SUSPENDED_AT: list[float] = []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with cli_cluster(tmp_path_factory.mktemp("wl") / "home", NAMES, 3) as c:
        yield c


def pod(name: str, *, init: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    containers = spec.pop("containers", None) or [
        {"name": "app", "image": BUSYBOX, "command": SLEEP}
    ]
    body: dict[str, Any] = {"terminationGracePeriodSeconds": 2, "containers": containers, **spec}
    if init:
        body["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


async def running_pod(cluster: Cluster, name: str, within: float = 90.0) -> dict[str, Any]:
    async def up() -> dict[str, Any] | None:
        got = await cluster.api.get(POD, name, "default")
        return got if (got.get("status") or {}).get("phase") == "Running" else None

    return await poll(up, f"pod {name} Running", within=within)


async def in_pod(cluster: Cluster, name: str, script: str) -> str:
    """A shell script in the pod's container; `show FILE...` prints files one a line."""
    script = 'show() { for f in "$@"; do cat "$f"; echo; done; }; ' + script
    return await ok(cluster.data_dir, "exec", name, "--", "sh", "-c", script)


def manifest(api_version: str, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}


def batch_job(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    template = {
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "restartPolicy": "Never",
            "containers": [{"name": "work", "image": BUSYBOX, "command": command}],
        }
    }
    return manifest("batch/v1", "Job", name, {**spec, "template": template})


def cron_job(name: str, schedule: str) -> dict[str, Any]:
    job = batch_job(name, ["sh", "-c", "echo tick"], backoffLimit=0)
    spec = {
        "schedule": schedule,
        # Keep every Job the module sees run, so the first one can be checked.
        "successfulJobsHistoryLimit": 10,
        "jobTemplate": {"spec": job["spec"]},
    }
    return manifest("batch/v1", "CronJob", name, spec)


async def jobs_of_cron(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    """The CronJob's Jobs, oldest scheduled time first."""
    jobs = (await cluster.api.list(JOB, "default"))["items"]
    mine = [
        j
        for j in jobs
        if any(r.get("name") == name for r in j["metadata"].get("ownerReferences") or ())
    ]
    return sorted(mine, key=lambda j: j["metadata"]["annotations"][SCHEDULED])


async def test_a_cron_job_every_minute_is_accepted(cluster: Cluster) -> None:
    """Runs first: the CronJob's minutes pass while the next tests run."""
    made = await cluster.api.create(CRONJOB, cron_job("tick", "* * * * *"))
    spec = made["spec"]
    assert (spec["suspend"], spec["concurrencyPolicy"]) == (False, "Allow")
    assert await jobs_of_cron(cluster, "tick") == []


async def test_config_map_as_env_and_file(cluster: Cluster) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}
    await cluster.api.create(CONFIGMAP, {**cm, "data": {"color": "blue", "size": "L"}})
    app = {
        "name": "app",
        "image": BUSYBOX,
        "command": SLEEP,
        "env": [
            {
                "name": "COLOR",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}},
            }
        ],
        "envFrom": [{"prefix": "S_", "configMapRef": {"name": "settings"}}],
        "volumeMounts": [
            {"name": "settings", "mountPath": "/etc/settings"},
            {"name": "settings", "mountPath": "/etc/size", "subPath": "size"},
        ],
    }
    volumes = [{"name": "settings", "configMap": {"name": "settings"}}]
    await cluster.api.create(POD, pod("cfg", containers=[app], volumes=volumes))
    await running_pod(cluster, "cfg")
    out = await in_pod(cluster, "cfg", "echo $COLOR $S_size; show /etc/settings/color /etc/size")
    assert out.split() == ["blue", "L", "blue", "L"]
    links = await in_pod(
        cluster, "cfg", "readlink /etc/settings/color; readlink /etc/settings/..data"
    )
    first, data = links.split()
    assert first == "..data/color" and data.startswith("..")


async def test_a_mounted_config_map_follows_its_changes(cluster: Cluster) -> None:
    await cluster.api.patch(
        CONFIGMAP, "settings", {"data": {"color": "red", "size": "XL"}}, "default"
    )

    async def red() -> bool | None:
        out = await in_pod(cluster, "cfg", "cat /etc/settings/color")
        return True if out.strip() == "red" else None

    await poll(red, "the mounted file to follow the ConfigMap", within=30)
    # The environment and a subPath mount keep what the container started with.
    out = await in_pod(cluster, "cfg", "echo $COLOR; show /etc/size /etc/settings/size")
    assert out.split() == ["blue", "L", "XL"]


async def test_a_secret_as_env_and_a_file_with_its_mode(cluster: Cluster) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"password": "s3cret-value"},
    }
    await cluster.api.create(SECRET, secret)
    app = {
        "name": "app",
        "image": BUSYBOX,
        "command": SLEEP,
        "env": [
            {
                "name": "PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
            }
        ],
        "volumeMounts": [{"name": "creds", "mountPath": "/etc/creds"}],
    }
    volumes = [{"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}}]
    await cluster.api.create(POD, pod("sec", containers=[app], volumes=volumes))
    got = await running_pod(cluster, "sec")
    out = await in_pod(
        cluster,
        "sec",
        "echo $PASSWORD; show /etc/creds/password; stat -L -c %a /etc/creds/password",
    )
    assert out.split() == ["s3cret-value", "s3cret-value", "400"]
    # On the node, Secret volumes live on a tmpfs that only root may enter.
    secrets = cluster.lay.node(got["spec"]["nodeName"]).agent_state / "secrets"
    assert str(secrets) in mounts_under(secrets)
    assert secrets.stat().st_mode & 0o777 == 0o700
    # Only the node that runs the pod holds the Secret.
    for name in sorted(NODES):
        if name == got["spec"]["nodeName"]:
            continue
        others = cluster.lay.node(name).agent_state / "secrets"
        assert not any(others.rglob("password"))


async def test_init_containers_run_in_order_before_the_app(cluster: Cluster) -> None:
    mount = [{"name": "work", "mountPath": "/work"}]
    init = [
        {
            "name": "one",
            "image": BUSYBOX,
            "command": ["sh", "-c", "sleep 4; echo one >> /work/order"],
            "volumeMounts": mount,
        },
        {
            "name": "two",
            "image": BUSYBOX,
            "command": ["sh", "-c", "echo two >> /work/order"],
            "volumeMounts": mount,
        },
    ]
    app = {"name": "app", "image": BUSYBOX, "command": SLEEP, "volumeMounts": mount}
    await cluster.api.create(
        POD, pod("init", init=init, containers=[app], volumes=[{"name": "work", "emptyDir": {}}])
    )

    async def initializing() -> bool | None:
        out = await ok(cluster.data_dir, "get", "pod", "init")
        return True if "Init:0/2" in out else None

    await poll(initializing, "STATUS Init:0/2", within=60)
    got = await running_pod(cluster, "init")
    assert [s["state"]["terminated"]["reason"] for s in got["status"]["initContainerStatuses"]] == [
        "Completed"
    ] * 2
    assert (await in_pod(cluster, "init", "cat /work/order")).split() == ["one", "two"]
    out = await ok(cluster.data_dir, "get", "pod", "init")
    assert "Running" in out


async def test_a_container_over_its_memory_limit_is_oom_killed(cluster: Cluster) -> None:
    hog = {
        "name": "hog",
        "image": BUSYBOX,
        # dd's one 64 MiB block, filled from /dev/zero, is over the 16 MiB limit.
        "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        "resources": {"limits": {"memory": "16Mi"}},
    }
    await cluster.api.create(POD, pod("hog", containers=[hog], restartPolicy="Never"))

    async def killed() -> dict[str, Any] | None:
        got = await cluster.api.get(POD, "hog", "default")
        term = (
            ((got.get("status") or {}).get("containerStatuses") or [{}])[0]
            .get("state", {})
            .get("terminated")
        )
        return term

    term = await poll(killed, "the hog to end", within=60)
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137
    out = await ok(cluster.data_dir, "get", "pod", "hog")
    assert "OOMKilled" in out


# -- DaemonSet -----------------------------------------------------------------

TAINT = {"key": "example.com/maintenance", "effect": "NoExecute"}


def daemon_set(name: str) -> dict[str, Any]:
    labels = {"app": name}
    template_spec = {
        "terminationGracePeriodSeconds": 2,
        "containers": [{"name": "app", "image": BUSYBOX, "command": SLEEP}],
    }
    template = {"metadata": {"labels": labels}, "spec": template_spec}
    return manifest(
        "apps/v1", "DaemonSet", name, {"selector": {"matchLabels": labels}, "template": template}
    )


async def pods_with(cluster: Cluster, selector: str) -> list[dict[str, Any]]:
    return list((await cluster.api.list(POD, "default", label_selector=selector))["items"])


async def daemon_pods(cluster: Cluster, nodes: set[str]) -> dict[str, dict[str, Any]]:
    """The DaemonSet's pods by node once there is exactly one Running pod on each
    of `nodes` and none anywhere else (being deleted included)."""
    pods = await pods_with(cluster, "app=agentd")
    by_node = {p["spec"].get("nodeName"): p for p in pods}
    assert len(pods) == len(nodes) and set(by_node) == nodes, [
        (p["metadata"]["name"], p["spec"].get("nodeName")) for p in pods
    ]
    phases = [(p["metadata"]["name"], (p.get("status") or {}).get("phase")) for p in pods]
    assert all(phase == "Running" for _, phase in phases), phases
    assert not any(p["metadata"].get("deletionTimestamp") for p in pods)
    return by_node


async def daemon_status(cluster: Cluster, desired: int) -> dict[str, Any]:
    status = (await cluster.api.get(DAEMONSET, "agentd", "default")).get("status") or {}
    counts = ("desiredNumberScheduled", "currentNumberScheduled", "numberReady")
    assert [status.get(k) for k in counts] == [desired] * 3, status
    assert status.get("numberMisscheduled") == 0, status
    return status


async def test_a_daemon_set_runs_one_pod_on_each_node(cluster: Cluster) -> None:
    assert {n["metadata"]["name"] for n in (await cluster.api.list(NODE))["items"]} == NODES
    await cluster.api.create(DAEMONSET, daemon_set("agentd"))
    by_node = await poll(
        lambda: daemon_pods(cluster, NODES), "one Running daemon pod per node", within=90
    )
    await poll(lambda: daemon_status(cluster, 3), "the DaemonSet's status: 3 of 3", within=20)
    for node, got in by_node.items():
        terms = got["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms == [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
        ]


async def test_a_cordoned_and_tainted_node_loses_its_daemon_pod_then_gets_it_back(
    cluster: Cluster,
) -> None:
    before = await daemon_pods(cluster, NODES)
    # Not the node of the Secret pod the last test reads: NoExecute evicts every pod.
    sec_node = (await cluster.api.get(POD, "sec", "default"))["spec"]["nodeName"]
    node = sorted(NODES - {sec_node})[0]
    uids = {n: p["metadata"]["uid"] for n, p in before.items()}

    # Cordoned alone, the node keeps its daemon pod (which tolerates unschedulable).
    await ok(cluster.data_dir, "cordon", node)

    async def unschedulable_taint() -> bool | None:
        taints = (await cluster.api.get(NODE, node)).get("spec", {}).get("taints") or []
        keys = {t["key"] for t in taints}
        return True if "node.kubernetes.io/unschedulable" in keys else None

    await poll(unschedulable_taint, f"{node} tainted unschedulable", within=20)
    await asyncio.sleep(2)
    still = await daemon_pods(cluster, NODES)
    assert {n: p["metadata"]["uid"] for n, p in still.items()} == uids

    # A NoExecute taint the daemon pod does not tolerate: the pod goes.
    await cluster.api.patch(
        NODE, node, [{"op": "add", "path": "/spec/taints/-", "value": TAINT}], patch_type="json"
    )
    others = NODES - {node}
    after = await poll(
        lambda: daemon_pods(cluster, others), f"the daemon pod gone from {node}", within=60
    )
    assert {n: p["metadata"]["uid"] for n, p in after.items()} == {n: uids[n] for n in others}
    await poll(lambda: daemon_status(cluster, 2), "the DaemonSet's status: 2 of 2", within=20)
    assert set(await daemon_pods(cluster, others)) == others  # and no new pod for the node

    # Untainted and uncordoned: a new pod there.
    taints = (await cluster.api.get(NODE, node))["spec"]["taints"]
    at = next(i for i, t in enumerate(taints) if t["key"] == TAINT["key"])
    await cluster.api.patch(
        NODE,
        node,
        [
            {"op": "test", "path": f"/spec/taints/{at}/key", "value": TAINT["key"]},
            {"op": "remove", "path": f"/spec/taints/{at}"},
        ],
        patch_type="json",
    )
    await ok(cluster.data_dir, "uncordon", node)
    back = await poll(
        lambda: daemon_pods(cluster, NODES), f"a daemon pod back on {node}", within=60
    )
    assert back[node]["metadata"]["uid"] != uids[node]
    assert {n: back[n]["metadata"]["uid"] for n in others} == {n: uids[n] for n in others}
    await poll(lambda: daemon_status(cluster, 3), "the DaemonSet's status: 3 of 3", within=20)


# -- the CronJob's first Job -----------------------------------------------------


async def test_the_cron_job_makes_a_job_within_its_first_minute_then_is_suspended(
    cluster: Cluster,
) -> None:
    cron = await cluster.api.get(CRONJOB, "tick", "default")
    created = rfc3339_seconds(cron["metadata"]["creationTimestamp"])
    assert created is not None

    async def a_job() -> dict[str, Any] | None:
        jobs = await jobs_of_cron(cluster, "tick")
        return jobs[0] if jobs else None

    left = created + 75 - time.time()
    first = await poll(a_job, "the CronJob's first Job", within=max(left, 1.0))
    made = rfc3339_seconds(first["metadata"]["creationTimestamp"])
    scheduled = rfc3339_seconds(first["metadata"]["annotations"][SCHEDULED])
    assert made is not None and scheduled is not None
    # The first minute after the CronJob was made, run within 70 s of its creation.
    assert created <= scheduled <= created + 60 and made - created <= 70
    assert first["metadata"]["name"] == f"tick-{int(scheduled) // 60}"

    async def complete() -> bool | None:
        job = await cluster.api.get(JOB, first["metadata"]["name"], "default")
        conds = {c["type"]: c["status"] for c in job.get("status", {}).get("conditions") or []}
        return True if conds.get("Complete") == "True" else None

    await poll(complete, "the CronJob's first Job Complete", within=60)

    await cluster.api.patch(CRONJOB, "tick", {"spec": {"suspend": True}}, "default")
    SUSPENDED_AT.append(time.time())
    out = await ok(cluster.data_dir, "get", "cronjob", "tick")
    assert "True" in out.splitlines()[1].split()


# -- Jobs ----------------------------------------------------------------------


def job_condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c["type"] == kind and c["status"] == "True":
            return dict(c)
    return None


def is_active(pod: dict[str, Any]) -> bool:
    """As the Job controller counts: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


async def test_a_job_runs_four_completions_two_at_a_time(cluster: Cluster) -> None:
    selector = "job-name=pairs"
    listed = await cluster.api.list(POD, "default", label_selector=selector)
    pods: dict[str, dict[str, Any]] = {}
    most = 0

    async def watch_pods() -> None:
        nonlocal most
        rv = listed["metadata"]["resourceVersion"]
        async for kind, obj in cluster.api.watch(
            POD, "default", resource_version=rv, label_selector=selector, timeout_seconds=120
        ):
            uid = obj["metadata"]["uid"]
            if kind == "DELETED":
                pods.pop(uid, None)
            elif kind in ("ADDED", "MODIFIED"):
                pods[uid] = obj
            most = max(most, sum(map(is_active, pods.values())))

    watcher = asyncio.create_task(watch_pods())
    try:
        command = ["sh", "-c", "sleep 3"]
        await cluster.api.create(JOB, batch_job("pairs", command, completions=4, parallelism=2))

        async def complete() -> dict[str, Any] | None:
            job = await cluster.api.get(JOB, "pairs", "default")
            return job if job_condition(job, "Complete") else None

        job = await poll(complete, "the Job Complete", within=90)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert job["status"]["succeeded"] == 4 and not job["status"].get("failed")
    assert most == 2, f"at most {most} pods at once"
    done = await pods_with(cluster, selector)
    assert [p["status"]["phase"] for p in done] == ["Succeeded"] * 4
    out = await ok(cluster.data_dir, "get", "job", "pairs")
    assert "4/4" in out.splitlines()[1].split()


async def test_a_failing_job_stops_at_its_backoff_limit(cluster: Cluster) -> None:
    await cluster.api.create(JOB, batch_job("doomed", ["sh", "-c", "exit 1"], backoffLimit=1))

    async def failed() -> dict[str, Any] | None:
        job = await cluster.api.get(JOB, "doomed", "default")
        return job if job_condition(job, "Failed") else None

    job = await poll(failed, "the Job Failed", within=90)
    cond = job_condition(job, "Failed")
    assert cond is not None and cond["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 2 and not job["status"].get("active")
    pods = sorted(
        await pods_with(cluster, "job-name=doomed"),
        key=lambda p: p["metadata"]["creationTimestamp"],
    )
    assert [p["status"]["phase"] for p in pods] == ["Failed"] * 2
    # The second pod waited out the 10 s back-off after the first one failed.
    ended = rfc3339_seconds(container(pods[0])["state"]["terminated"]["finishedAt"])
    second = rfc3339_seconds(pods[1]["metadata"]["creationTimestamp"])
    assert ended is not None and second is not None and second - ended >= 9


# -- the CronJob suspended -------------------------------------------------------


async def test_a_suspended_cron_job_makes_no_more_jobs(cluster: Cluster) -> None:
    (suspended,) = SUSPENDED_AT
    # Past the next scheduled minute after the suspension, with time to spare.
    until = (suspended // 60 + 1) * 60 + 10
    await asyncio.sleep(max(until - time.time(), 0))
    jobs = await jobs_of_cron(cluster, "tick")
    assert jobs
    times = [rfc3339_seconds(j["metadata"]["annotations"][SCHEDULED]) or 0 for j in jobs]
    assert max(times) <= suspended, [j["metadata"]["name"] for j in jobs]
    cron = await cluster.api.get(CRONJOB, "tick", "default")
    assert (rfc3339_seconds(cron["status"]["lastScheduleTime"]) or 0) <= suspended
    assert cron["spec"]["suspend"] is True


async def test_down_leaves_nothing_behind(cluster: Cluster) -> None:
    """Runs last: `down`, then no mount (the secrets tmpfs), process or namespace of ours."""
    got = await cluster.api.get(POD, "sec", "default")
    assert container(got)["containerID"]
    await down_leaves_nothing(cluster, NAMES)
