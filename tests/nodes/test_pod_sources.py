"""What the control plane sends each node of ConfigMaps and Secrets: only
those its pods read, again when they change, never a Secret to a node that
does not need it, and never a Secret's value in a log line."""

from __future__ import annotations

import base64
import logging

import pytest

from control.objects.kinds import CONFIGMAP, POD, SECRET
from tests.cluster import HollowCluster, make_pod
from tests.polling import eventually

SECRET_VALUE = "correct-horse-battery-staple"


def _secret(name: str) -> dict[str, object]:
    data = {"password": base64.b64encode(SECRET_VALUE.encode()).decode()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data}


def _config_map(name: str, **data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _env(kind: str, name: str, key: str) -> dict[str, object]:
    return {"name": key.upper(), "valueFrom": {kind: {"name": name, "key": key}}}


async def test_each_node_gets_only_what_its_pods_read(
    hollow_cluster: HollowCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reg = hollow_cluster.registry
    agents = hollow_cluster.agents
    await reg.create(SECRET, "default", _secret("db"))
    await reg.create(SECRET, "default", _secret("unused"))
    await reg.create(CONFIGMAP, "default", _config_map("web", color="blue"))
    with_secret = make_pod("a", "node-1")
    with_secret["spec"]["containers"][0]["env"] = [_env("secretKeyRef", "db", "password")]
    with_config = make_pod("b", "node-2")
    with_config["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "web"}}]
    await reg.create(POD, "default", with_secret)
    await reg.create(POD, "default", with_config)
    await hollow_cluster.wait_pod_running("a")
    await hollow_cluster.wait_pod_running("b")

    assert list(agents["node-1"].sources.secrets) == [("default", "db")]
    assert agents["node-1"].sources.secrets[("default", "db")]["password"] == SECRET_VALUE.encode()
    assert not agents["node-1"].sources.configmaps
    assert not agents["node-2"].sources.secrets
    assert agents["node-2"].sources.configmaps == {("default", "web"): {"color": b"blue"}}
    assert not agents["node-3"].sources.secrets and not agents["node-3"].sources.configmaps

    # A change reaches the nodes that read it.
    await reg.patch(CONFIGMAP, "default", "web", lambda o: {**o, "data": {"color": "red"}})
    await eventually(
        lambda: agents["node-2"].sources.configmaps[("default", "web")] == {"color": b"red"},
        "the new ConfigMap on node-2",
    )
    assert not agents["node-1"].sources.configmaps
    assert SECRET_VALUE not in caplog.text
    assert base64.b64encode(SECRET_VALUE.encode()).decode() not in caplog.text


async def test_a_pod_waits_for_a_missing_config_map(hollow_cluster: HollowCluster) -> None:
    reg = hollow_cluster.registry
    pod = make_pod("late", "node-1")
    pod["spec"]["containers"][0]["env"] = [_env("configMapKeyRef", "later", "color")]
    await reg.create(POD, "default", pod)

    async def waiting() -> dict[str, object]:
        got = await hollow_cluster.pod("late")
        statuses = ((got or {}).get("status") or {}).get("containerStatuses") or [{}]
        return (statuses[0].get("state") or {}).get("waiting") or {}

    async def config_error() -> bool:
        return (await waiting()).get("reason") == "CreateContainerConfigError"

    await eventually(config_error, "CreateContainerConfigError")
    assert (await waiting())["message"] == 'configmap "later" not found'
    await reg.create(CONFIGMAP, "default", _config_map("later", color="green"))
    await hollow_cluster.wait_pod_running("late")
