"""The agent's side of pod configuration, without containerd: the atomic
writer, env resolution, volume contents and mounts, and a pod worker on a
fake runtime that waits in CreateContainerConfigError until its ConfigMap
arrives."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from agent.cri import api_pb2 as pb
from agent.cri.client import CRIClient
from agent.pods import spec as S
from agent.pods.atomicwriter import DATA, FileProjection, data_dir, write_payload
from agent.pods.envvars import container_env
from agent.pods.sources import MissingSource, Sources
from agent.pods.volumes import volume_mounts, write_volumes
from agent.pods.worker import PodWorker
from agent.protocol import InvalidParams
from tests.polling import eventually

# --- the atomic writer ---------------------------------------------------------------


def _files(target: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in target.iterdir() if not p.name.startswith("..")}


def test_atomic_writer_links_each_key_through_data(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    payload = {"a": FileProjection(b"1"), "dir/b": FileProjection(b"2", 0o400)}
    assert write_payload(target, payload)
    ts = os.readlink(target / DATA)
    assert ts.startswith("..") and (target / ts).is_dir() and not (target / ts).is_symlink()
    assert ts[2:21].count("_") == 5  # ..YYYY_MM_DD_hh_mm_ss.
    assert os.readlink(target / "a") == f"{DATA}/a"
    assert os.readlink(target / "dir") == f"{DATA}/dir"
    assert (target / "dir" / "b").read_bytes() == b"2"
    assert (target / "a").stat().st_mode & 0o777 == 0o644
    assert (target / "dir" / "b").stat().st_mode & 0o777 == 0o400
    assert not write_payload(target, payload)  # the same content: nothing to do
    assert os.readlink(target / DATA) == ts


def test_atomic_writer_swaps_the_data_link_and_drops_what_went(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    write_payload(target, {"a": FileProjection(b"1"), "b": FileProjection(b"2")})
    old = data_dir(target)
    assert old is not None
    held = (old / "a").open("rb")  # a subPath mount keeps the file it bound
    assert write_payload(target, {"a": FileProjection(b"new")})
    new = data_dir(target)
    assert new is not None and new != old and not old.exists()
    assert _files(target) == {"a": b"new"}
    assert not (target / "b").is_symlink()
    assert held.read() == b"1"
    held.close()
    leftovers = [p.name for p in target.iterdir() if p.name.startswith("..")]
    assert sorted(leftovers) == sorted([DATA, new.name])
    # A mode change alone is a change.
    assert write_payload(target, {"a": FileProjection(b"new", 0o600)})
    assert (target / "a").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("path", ["/abs", "../up", "a/../b", "..hidden", ""])
def test_atomic_writer_refuses_paths_outside_the_volume(tmp_path: Path, path: str) -> None:
    with pytest.raises(ValueError, match="invalid path"):
        write_payload(tmp_path / "vol", {path: FileProjection(b"x")})


# --- sources and env ------------------------------------------------------------------


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


SOURCES = {
    "configMaps": [
        {"namespace": "ns1", "name": "cfg", "data": {"color": "blue", "1bad": "x", "size": "L"}},
    ],
    "secrets": [{"namespace": "ns1", "name": "sec", "data": {"password": _b64("hunter2")}}],
}


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns1", "uid": "u1", "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}], **spec},
    }


def _node(tmp_path: Path) -> S.NodeConfig:
    return S.NodeConfig(
        "n1", tmp_path, node_ip="10.0.0.1", allocatable={"cpu": "4", "memory": "8Gi"}
    )


def test_sources_parse_and_never_show_secret_values() -> None:
    sources = Sources.from_params(SOURCES)
    assert "hunter2" not in repr(sources) and "hunter2" not in str(sources)
    with pytest.raises(InvalidParams, match=r"secrets\[0\].data\[k\]: not base64"):
        Sources.from_params({"secrets": [{"namespace": "a", "name": "b", "data": {"k": "%%"}}]})


def test_env_from_config_maps_secrets_fields_and_resources(tmp_path: Path) -> None:
    container = {
        "name": "c",
        "envFrom": [
            {"prefix": "CFG_", "configMapRef": {"name": "cfg"}},
            {"configMapRef": {"name": "cfg"}},
        ],
        "env": [
            {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
            {
                "name": "GONE",
                "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
            },
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {
                "name": "CPU",
                "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}},
            },
            {
                "name": "NCPU",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "0"}},
            },
            {"name": "BOTH", "value": "$(COLOR)-$(size)-$$(COLOR)"},
        ],
        "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}},
    }
    got = container_env(
        container, _pod(), "10.1.0.5", _node(tmp_path), Sources.from_params(SOURCES)
    )
    env = {kv.key: kv.value for kv in got.env}
    assert env["CFG_color"] == "blue" and env["CFG_size"] == "L" and env["size"] == "L"
    assert env["COLOR"] == "blue" and env["PASS"] == "hunter2" and "GONE" not in env
    assert env["NODE"] == "n1" and env["MEM"] == "64" and env["CPU"] == "250"
    assert env["NCPU"] == "4"  # no limit: the node's allocatable
    assert env["BOTH"] == "blue-L-$(COLOR)"
    assert "1bad" not in env and "CFG_1bad" in env  # the prefix makes it valid
    [(reason, message)] = got.events
    assert reason == "InvalidEnvironmentVariableNames"
    assert message == (
        "Keys [1bad] from the EnvFrom configMap ns1/cfg were skipped since they are "
        "considered invalid environment variable names."
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"configMapKeyRef": {"name": "x", "key": "k"}}, 'configmap "x" not found'),
        ({"secretKeyRef": {"name": "x", "key": "k"}}, 'secret "x" not found'),
        (
            {"configMapKeyRef": {"name": "cfg", "key": "k"}},
            "couldn't find key k in ConfigMap ns1/cfg",
        ),
    ],
)
def test_a_missing_source_names_what_is_missing(tmp_path: Path, env: Any, message: str) -> None:
    container = {"name": "c", "env": [{"name": "X", "valueFrom": env}]}
    with pytest.raises(MissingSource) as info:
        container_env(container, _pod(), "", _node(tmp_path), Sources.from_params(SOURCES))
    assert str(info.value) == message


# --- volumes -------------------------------------------------------------------------


VOLUMES = [
    {
        "name": "cfg",
        "configMap": {"name": "cfg", "items": [{"key": "color", "path": "c/color", "mode": 0o600}]},
    },
    {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
    {
        "name": "info",
        "downwardAPI": {
            "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
        },
    },
    {
        "name": "all",
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"configMap": {"name": "cfg", "items": [{"key": "size", "path": "size"}]}},
                {"secret": {"name": "sec"}},
                {"secret": {"name": "absent", "optional": True}},
            ],
        },
    },
]


def test_volumes_are_written_with_items_and_modes(tmp_path: Path) -> None:
    node, pod = _node(tmp_path), _pod(volumes=VOLUMES)
    sources = Sources.from_params(SOURCES)
    assert sorted(write_volumes(pod, "10.1.0.5", node, sources)) == ["all", "cfg", "info", "sec"]
    cfg = tmp_path / "volumes" / "u1" / "cfg"
    assert (cfg / "c" / "color").read_bytes() == b"blue"
    assert (cfg / "c" / "color").stat().st_mode & 0o777 == 0o600
    sec = tmp_path / "secrets" / "u1" / "sec"
    assert (sec / "password").read_bytes() == b"hunter2"
    assert (sec / "password").stat().st_mode & 0o777 == 0o400
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "volumes" / "u1" / "info" / "labels").read_text() == 'app="web"'
    projected = tmp_path / "secrets" / "u1" / "all"
    assert _files(projected) == {"size": b"L", "password": b"hunter2"}
    assert (projected / "size").stat().st_mode & 0o777 == 0o440
    assert write_volumes(pod, "10.1.0.5", node, sources) == []


def test_volumes_follow_updates_and_subpath_mounts_do_not(tmp_path: Path) -> None:
    node = _node(tmp_path)
    container = {
        "name": "c",
        "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/cfg"},
            {"name": "cfg", "mountPath": "/etc/color", "subPath": "c/color"},
        ],
    }
    pod = _pod(volumes=VOLUMES[:1], containers=[container])
    write_volumes(pod, "", node, Sources.from_params(SOURCES))
    whole, sub = volume_mounts(container, pod, node)
    assert whole.host_path == str(tmp_path / "volumes" / "u1" / "cfg") and whole.readonly
    assert Path(sub.host_path).read_bytes() == b"blue" and ".." in sub.host_path
    changed = {"configMaps": [{"namespace": "ns1", "name": "cfg", "data": {"color": "red"}}]}
    assert write_volumes(pod, "", node, Sources.from_params(changed)) == ["cfg"]
    assert (Path(whole.host_path) / "c" / "color").read_bytes() == b"red"
    [_, sub2] = volume_mounts(container, pod, node)
    assert sub2.host_path != sub.host_path  # a new container binds the new file


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"name": "v", "configMap": {"name": "nope"}}, 'configmap "nope" not found'),
        ({"name": "v", "secret": {"secretName": "nope"}}, 'secret "nope" not found'),
        (
            {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "k", "path": "k"}]}},
            "configmap references non-existent config key: k",
        ),
    ],
)
def test_a_volume_missing_its_source(tmp_path: Path, volume: Any, message: str) -> None:
    with pytest.raises(MissingSource) as info:
        write_volumes(_pod(volumes=[volume]), "", _node(tmp_path), Sources.from_params(SOURCES))
    assert str(info.value) == message


def test_an_optional_missing_source_is_an_empty_volume(tmp_path: Path) -> None:
    volume = {"name": "v", "configMap": {"name": "nope", "optional": True}}
    assert write_volumes(_pod(volumes=[volume]), "", _node(tmp_path), Sources()) == ["v"]
    assert _files(tmp_path / "volumes" / "u1" / "v") == {}


# --- a worker on a fake runtime ------------------------------------------------------


class FakeCRI:
    """Just enough of CRIClient for a pod worker: containers start and run."""

    def __init__(self) -> None:
        self.sandboxes: dict[str, pb.PodSandbox] = {}
        self.containers: dict[str, pb.Container] = {}
        self.configs: dict[str, pb.ContainerConfig] = {}

    async def image_status(self, image: str) -> object:
        return object()

    async def list_pod_sandboxes(self, labels: dict[str, str] | None = None) -> list[pb.PodSandbox]:
        return list(self.sandboxes.values())

    async def list_containers(self, labels: dict[str, str] | None = None) -> list[pb.Container]:
        return list(self.containers.values())

    async def run_pod_sandbox(self, cfg: pb.PodSandboxConfig) -> str:
        sid = f"sb{len(self.sandboxes)}"
        self.sandboxes[sid] = pb.PodSandbox(
            id=sid, state=pb.SANDBOX_READY, metadata=cfg.metadata, created_at=1
        )
        return sid

    async def pod_sandbox_status(self, sid: str) -> pb.PodSandboxStatus:
        return pb.PodSandboxStatus(id=sid, network=pb.PodSandboxNetworkStatus(ip="10.1.0.9"))

    async def create_container(self, sid: str, cfg: pb.ContainerConfig, _sb: object) -> str:
        cid = f"c{len(self.containers)}"
        self.containers[cid] = pb.Container(
            id=cid, pod_sandbox_id=sid, metadata=cfg.metadata, state=pb.CONTAINER_CREATED
        )
        self.configs[cid] = cfg
        return cid

    async def start_container(self, cid: str) -> None:
        self.containers[cid].state = pb.CONTAINER_RUNNING

    async def container_status(self, cid: str) -> pb.ContainerStatus:
        c = self.containers[cid]
        return pb.ContainerStatus(id=cid, state=c.state, metadata=c.metadata, started_at=10**18)

    async def stop_container(self, cid: str, timeout_s: int) -> None:
        self.containers[cid].state = pb.CONTAINER_EXITED

    async def stop_pod_sandbox(self, sid: str) -> None:
        self.sandboxes[sid].state = pb.SANDBOX_NOTREADY

    async def remove_pod_sandbox(self, sid: str) -> None:
        self.sandboxes.pop(sid, None)

    async def remove_container(self, cid: str) -> None:
        self.containers.pop(cid, None)


class Host:
    """The pod manager's part a worker reads: sources, and events recorded."""

    def __init__(self) -> None:
        self.sources = Sources()
        self.events: list[dict[str, Any]] = []

    async def record(self, params: dict[str, Any]) -> None:
        self.events.append(params)


async def test_a_pod_waits_for_its_config_map_then_starts(tmp_path: Path) -> None:
    reports: list[dict[str, Any]] = []
    host = Host()
    events = host.events

    async def notify(params: dict[str, Any], terminated: bool) -> None:
        reports.append(params["status"])

    container = {
        "name": "app",
        "image": "busybox",
        "imagePullPolicy": "IfNotPresent",
        "env": [
            {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "late", "key": "color"}}}
        ],
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}],
    }
    pod = _pod(containers=[container], volumes=[{"name": "cfg", "configMap": {"name": "late"}}])
    cri = FakeCRI()
    worker = PodWorker(
        cast(CRIClient, cri), _node(tmp_path), pod, notify, sync_interval=0.05, host=host
    )
    worker.start()
    try:

        def waiting() -> dict[str, Any]:
            return (
                (reports[-1]["containerStatuses"][0]["state"].get("waiting") or {})
                if reports
                else {}
            )

        await eventually(
            lambda: waiting().get("reason") == "CreateContainerConfigError", "config error"
        )
        assert waiting()["message"] == 'configmap "late" not found'
        assert not cri.containers
        await eventually(lambda: bool(events), "an event")
        assert events[0]["reason"] == "Failed" and events[0]["type"] == "Warning"
        assert events[0]["message"] == 'Error: configmap "late" not found'

        late = {"configMaps": [{"namespace": "ns1", "name": "late", "data": {"color": "green"}}]}
        host.sources = Sources.from_params(late)
        worker.update(pod)
        await eventually(lambda: reports[-1]["phase"] == "Running", "running")
        [cfg] = cri.configs.values()
        assert {kv.key: kv.value for kv in cfg.envs}["COLOR"] == "green"
        cfg_dir = tmp_path / "volumes" / "u1" / "cfg"
        assert (cfg_dir / "color").read_text() == "green"

        # The ConfigMap changes: the mounted files follow, the container stays.
        red = {"configMaps": [{**late["configMaps"][0], "data": {"color": "red"}}]}
        host.sources = Sources.from_params(red)
        worker.update(pod)
        await eventually(lambda: (cfg_dir / "color").read_text() == "red", "the new content")
        assert len(cri.containers) == 1
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.done.wait(), 10)
    assert not (tmp_path / "volumes" / "u1").exists()


async def _made_by_an_earlier_agent(
    cri: FakeCRI, tmp_path: Path
) -> tuple[dict[str, Any], S.NodeConfig, str]:
    """A pod of one container, and the sandbox and container (created, not
    started) an earlier agent made for it: (pod, node, container id)."""
    pod = _pod(containers=[{"name": "app", "image": "busybox", "imagePullPolicy": "IfNotPresent"}])
    node = _node(tmp_path)
    sid = await cri.run_pod_sandbox(S.sandbox_config(pod, node, 0))
    cfg = S.container_config(pod["spec"]["containers"][0], pod, "busybox", 0, "10.1.0.9", node)
    return pod, node, await cri.create_container(sid, cfg, None)


@contextlib.asynccontextmanager
async def _running_worker(
    cri: FakeCRI, node: S.NodeConfig, pod: dict[str, Any]
) -> AsyncIterator[list[dict[str, Any]]]:
    """A worker for `pod`, once it reports it Running; its reports."""
    reports: list[dict[str, Any]] = []

    async def notify(params: dict[str, Any], terminated: bool) -> None:
        reports.append(params["status"])

    worker = PodWorker(cast(CRIClient, cri), node, pod, notify, sync_interval=0.05, host=Host())
    worker.start()
    try:
        await eventually(lambda: reports and reports[-1]["phase"] == "Running", "running")
        yield reports
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.done.wait(), 10)


async def test_a_container_an_agent_created_and_never_started_is_started_not_made_again(
    tmp_path: Path,
) -> None:
    """An agent killed between CreateContainer and StartContainer: the next
    one starts that container (its start may still be on its way), and makes
    no second one."""
    cri = FakeCRI()
    pod, node, cid = await _made_by_an_earlier_agent(cri, tmp_path)
    made, [sid] = cri.configs[cid], list(cri.sandboxes)
    async with _running_worker(cri, node, pod) as reports:
        assert list(cri.containers) == [cid]
        assert cri.configs[cid] is made  # not created again
        assert cri.containers[cid].state == pb.CONTAINER_RUNNING
        assert list(cri.sandboxes) == [sid]
        assert reports[-1]["containerStatuses"][0]["restartCount"] == 0


class InterruptedStartCRI(FakeCRI):
    """A container whose start an earlier agent's death cancelled: it exited
    without ever running."""

    never_ran: str = ""

    async def container_status(self, cid: str) -> pb.ContainerStatus:
        st = await super().container_status(cid)
        if cid == self.never_ran:
            st.started_at, st.created_at, st.exit_code = 0, 1, 128
        return st


async def test_a_start_an_earlier_agent_never_finished_is_made_again_as_no_restart(
    tmp_path: Path,
) -> None:
    cri = InterruptedStartCRI()
    pod, node, cri.never_ran = await _made_by_an_earlier_agent(cri, tmp_path)
    cri.containers[cri.never_ran].state = pb.CONTAINER_EXITED
    first = cri.configs[cri.never_ran]
    async with _running_worker(cri, node, pod) as reports:
        [(cid, c)] = cri.containers.items()
        assert cri.configs[cid] is not first  # made again
        assert c.state == pb.CONTAINER_RUNNING and c.metadata.attempt == 0
        assert reports[-1]["containerStatuses"][0]["restartCount"] == 0
