"""Pod configuration and lifecycle end to end (issue 13): `pilothouse up
--nodes 3`, then ConfigMaps and Secrets as env and files (files that follow
an update, a Secret file's mode, the Secret on the node's tmpfs), init
containers in order before the app, and a container over its memory limit
OOMKilled.

One cluster serves the whole module (tests.localcluster.clicluster); the tests
run in order and the last takes it down and looks for what is left behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from control.localcluster.teardown import mounts_under
from control.objects.kinds import CONFIGMAP, POD, SECRET
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
    for name in ("node-1", "node-2", "node-3"):
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


async def test_down_leaves_nothing_behind(cluster: Cluster) -> None:
    """Runs last: `down`, then no mount (the secrets tmpfs), process or namespace of ours."""
    got = await cluster.api.get(POD, "sec", "default")
    assert container(got)["containerID"]
    await down_leaves_nothing(cluster, NAMES)
