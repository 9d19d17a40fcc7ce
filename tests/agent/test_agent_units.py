"""Unit tests for the agent's pure parts: spec translation, logs, backoff,
probes, images. No containerd needed."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import cast

import grpc
import pytest

from agent.cri import api_pb2 as pb
from agent.cri.client import CRIClient, CRIError
from agent.images import BUSYBOX, PAUSE, busybox_layer, oci_archive
from agent.pods import logs as L
from agent.pods import spec as S
from agent.pods.backoff import Backoff
from agent.pods.network import Routes, write_conflist
from agent.pods.probes import ContainerProbes, ProbeSpec, run_once
from agent.pods.pull import REFRESH_TIMEOUT, ImagePuller
from agent.pods.stream import ExecSession
from agent.protocol.execio import exec_exit_code, exec_status
from agent.protocol.primitives import parse_quantity


@pytest.mark.parametrize(
    ("given", "want"),
    [
        ("pilothouse/busybox", "docker.io/pilothouse/busybox:latest"),
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("docker.io/pilothouse/pause:latest", "docker.io/pilothouse/pause:latest"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("registry.example.com/a/b:v1", "registry.example.com/a/b:v1"),
        ("busybox@sha256:abc", "docker.io/library/busybox@sha256:abc"),
    ],
)
def test_normalize_image(given: str, want: str) -> None:
    assert S.normalize_image(given) == want


def test_quantities() -> None:
    assert parse_quantity("100m") == Decimal("0.1")
    assert parse_quantity("64Mi") == 64 * 2**20
    assert parse_quantity("1G") == 10**9
    assert parse_quantity(2) == 2
    with pytest.raises(ValueError):
        parse_quantity("12xyz")


def test_linux_resources_from_limits_and_requests() -> None:
    r = S.linux_resources(
        {"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "128Mi"}}}
    )
    assert (r.cpu_shares, r.cpu_period, r.cpu_quota) == (256, 100_000, 50_000)
    assert r.memory_limit_in_bytes == 128 * 2**20
    assert S.linux_resources({}).cpu_shares == 2


def _pod(**spec: object) -> S.Obj:
    return {
        "metadata": {"name": "p", "namespace": "ns1", "uid": "u1"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


def test_sandbox_config_labels_dns_and_cgroup(tmp_path: Path) -> None:
    node = S.NodeConfig("n1", tmp_path, cgroup_parent="/ph/n1", cluster_dns="10.96.0.10")
    cfg = S.sandbox_config(_pod(), node, attempt=2)
    assert cfg.metadata.attempt == 2 and cfg.hostname == "p"
    assert cfg.labels[S.POD_UID] == "u1" and cfg.labels[S.MANAGED] == "true"
    assert cfg.linux.cgroup_parent == "/ph/n1"
    assert list(cfg.dns_config.servers) == ["10.96.0.10"]
    assert list(cfg.dns_config.searches)[:1] == ["ns1.svc.cluster.local"]
    assert cfg.log_directory.endswith("pods/ns1_p_u1")
    default = S.sandbox_config(_pod(dnsPolicy="Default"), node, 0)
    assert not default.HasField("dns_config")


def test_container_config_env_expansion_and_restart_count(tmp_path: Path) -> None:
    node = S.NodeConfig("n1", tmp_path, node_ip="192.168.1.5")
    c = {
        "name": "app",
        "command": ["sh", "-c"],
        "args": ["echo $(GREETING) $$HOME"],
        "env": [
            {"name": "GREETING", "value": "hi-$(POD)"},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
        "workingDir": "/tmp",
    }
    pod = _pod()
    pod["spec"]["containers"] = [c]
    cfg = S.container_config(c, pod, "docker.io/x/y:1", 3, "10.0.0.7", node)
    envs = {kv.key: kv.value for kv in cfg.envs}
    assert envs == {"GREETING": "hi-$(POD)", "IP": "10.0.0.7"}
    assert list(cfg.args) == ["echo hi-$(POD) $HOME"]
    assert cfg.metadata.attempt == 3 and cfg.annotations[S.RESTART_COUNT] == "3"
    assert cfg.log_path == "app/3.log" and cfg.labels[S.CONTAINER_NAME] == "app"
    assert cfg.working_dir == "/tmp"


def test_qos_class() -> None:
    assert S.qos_class(_pod()) == "BestEffort"
    pod = _pod()
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert S.qos_class(pod) == "Guaranteed"
    pod["spec"]["containers"][0]["resources"]["requests"] = {"cpu": "500m"}
    assert S.qos_class(pod) == "Burstable"


def test_cri_log_parsing_joins_partials_and_filters(tmp_path: Path) -> None:
    f = tmp_path / "0.log"
    f.write_bytes(
        b"2026-01-01T00:00:00.123456789Z stdout F one\n"
        b"2026-01-01T00:00:01.000000000Z stderr P tw\n"
        b"2026-01-01T00:00:01.100000000Z stderr F o\n"
        b"2026-01-01T00:00:05Z stdout F three\n"
        b"2026-01-01T00:00:06Z stdout F incomp"  # no newline yet
    )
    lines, offset = L.read_lines(f)
    assert [ln.text for ln in lines] == ["one", "two", "three"]
    assert [ln.stream for ln in lines] == ["stdout", "stderr", "stdout"]
    assert offset == f.read_bytes().rfind(b"\n") + 1
    assert [ln.text for ln in L.select(lines, tail=1)] == ["three"]
    assert L.select(lines, tail=0) == []
    since = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert [ln.text for ln in L.select(lines, since=since)] == ["two", "three"]
    assert lines[0].render(True) == "2026-01-01T00:00:00.123456789Z one\n"


async def test_log_follow_emits_until_stopped(tmp_path: Path) -> None:
    f = tmp_path / "0.log"
    f.write_bytes(b"")
    got: list[str] = []
    running = True

    async def emit(data: str) -> None:
        got.append(data)

    async def still() -> bool:
        return running

    task = asyncio.create_task(L.follow(f, 0, emit, still, poll=0.01))
    with f.open("ab") as out:
        out.write(b"2026-01-01T00:00:00Z stdout F hello\n")
    await asyncio.sleep(0.1)
    running = False
    await asyncio.wait_for(task, 2)
    assert got == ["hello\n"]


def test_backoff_doubles_to_cap_and_first_restart_is_immediate() -> None:
    b = Backoff(base=10, cap=40)
    assert b.remaining("c", since=100, now=100) == 0  # first death: restart now
    b.next("c", now=100)
    assert b.remaining("c", since=105, now=106) == 9
    delays = []
    for t in (120, 150, 200, 260):
        b.next("c", now=t)
        delays.append(b.delay("c"))
    assert delays == [20, 40, 40, 40]
    assert b.remaining("c", since=260, now=260 + 81 + 1) == 0  # forgotten after 2*cap


async def test_http_and_tcp_probes() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req = await reader.readline()
        code = b"200 OK" if b" /ok " in req else b"500 Oops"
        writer.write(b"HTTP/1.1 " + code + b"\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    container = {"name": "c", "ports": [{"name": "web", "containerPort": port}]}

    async def no_exec(cmd: list[str], limit: int) -> int:
        return 0 if cmd == ["true"] else 1

    try:

        def spec(h: dict[str, object]) -> ProbeSpec:
            p = ProbeSpec.parse("readiness", h)
            assert p is not None
            return p

        ok = spec({"httpGet": {"port": "web", "path": "/ok"}})
        assert (ok.period, ok.timeout, ok.failure_threshold) == (10, 1, 3)
        assert (await run_once(ok, container, "127.0.0.1", no_exec))[0]
        bad = await run_once(
            spec({"httpGet": {"port": port, "path": "/x"}}), container, "127.0.0.1", no_exec
        )
        assert bad == (False, "HTTP probe failed with statuscode: 500")
        assert (
            await run_once(spec({"tcpSocket": {"port": port}}), container, "127.0.0.1", no_exec)
        )[0]
        assert (await run_once(spec({"exec": {"command": ["true"]}}), container, "", no_exec))[0]
        assert not (await run_once(spec({"exec": {"command": ["false"]}}), container, "", no_exec))[
            0
        ]
    finally:
        server.close()
        await server.wait_closed()
    refused = await run_once(spec({"tcpSocket": {"port": port}}), container, "127.0.0.1", no_exec)
    assert not refused[0]


async def test_probe_thresholds_drive_ready_and_live() -> None:
    results = [0, 1, 1, 1]

    async def exec_fn(cmd: list[str], limit: int) -> int:
        return results.pop(0) if results else 1

    changes: list[bool] = []
    c = {
        "name": "c",
        "livenessProbe": {"exec": {"command": ["x"]}, "periodSeconds": 0.01, "failureThreshold": 3},
    }
    pr = ContainerProbes(c, "", exec_fn, lambda: changes.append(True))
    assert pr.ready and pr.started and pr.live  # no readiness or startup probe
    pr.start()
    for _ in range(200):
        if not pr.live:
            break
        await asyncio.sleep(0.01)
    await pr.stop()
    assert not pr.live and "Liveness probe failed" in pr.message


def test_oci_archives_share_one_layer_and_name_images(tmp_path: Path) -> None:
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake busybox")
    layer = busybox_layer(busybox)
    assert layer == busybox_layer(busybox)  # deterministic
    with tarfile.open(fileobj=io.BytesIO(layer)) as t:
        names = t.getnames()
        assert "bin/busybox" in names and t.getmember("bin/httpd").linkname == "busybox"
    for img in (PAUSE, BUSYBOX):
        with tarfile.open(fileobj=io.BytesIO(oci_archive(img, layer))) as t:
            index = json.loads(t.extractfile("index.json").read())  # type: ignore[union-attr]
            m = index["manifests"][0]
            assert m["annotations"]["io.containerd.image.name"] == img.name
            manifest = json.loads(t.extractfile("blobs/sha256/" + m["digest"][7:]).read())  # type: ignore[union-attr]
            cfg = json.loads(
                t.extractfile("blobs/sha256/" + manifest["config"]["digest"][7:]).read()  # type: ignore[union-attr]
            )
            assert cfg["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]
            assert t.getmember("oci-layout").isfile()
    assert PAUSE.entrypoint[:2] == ("/bin/busybox", "sleep")


def test_proto_field_numbers_match_cri() -> None:
    """A few numbers containerd relies on (from the upstream runtime.v1 spec)."""
    f = pb.PodSandboxConfig.DESCRIPTOR.fields_by_name
    assert (f["metadata"].number, f["labels"].number, f["linux"].number) == (1, 6, 8)
    c = pb.ContainerConfig.DESCRIPTOR.fields_by_name
    assert (c["log_path"].number, c["linux"].number, c["envs"].number) == (11, 15, 6)
    s = pb.ContainerStatus.DESCRIPTOR.fields_by_name
    assert (s["exit_code"].number, s["reason"].number, s["log_path"].number) == (7, 10, 15)
    assert pb.DESCRIPTOR.package == "runtime.v1"


def test_conflist_is_written_once_and_atomically(tmp_path: Path) -> None:
    conf = tmp_path / "net.d"
    assert write_conflist(conf, "10.244.1.0/24", tmp_path / "ipam")
    assert not write_conflist(conf, "10.244.1.0/24", tmp_path / "ipam")
    data = json.loads((conf / "10-pilothouse.conflist").read_text())
    bridge = data["plugins"][0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
    assert bridge["ipam"]["dataDir"] == str(tmp_path / "ipam")
    assert [p.name for p in conf.iterdir()] == ["10-pilothouse.conflist"]


async def test_routes_follow_the_desired_set() -> None:
    calls: list[list[str]] = []

    async def runner(argv: Sequence[str]) -> tuple[int, str]:
        calls.append(list(argv))
        return 0, ""

    r = Routes(runner)
    assert await r.apply({"10.244.2.0/24": "10.0.0.2", "10.244.3.0/24": "10.0.0.3"}) == []
    await r.apply({"10.244.2.0/24": "10.0.0.2"})
    assert calls == [
        ["ip", "route", "replace", "10.244.2.0/24", "via", "10.0.0.2"],
        ["ip", "route", "replace", "10.244.3.0/24", "via", "10.0.0.3"],
        ["ip", "route", "del", "10.244.3.0/24"],
    ]


async def test_routes_the_kernel_dropped_are_put_back() -> None:
    """A link down for a moment takes its routes along; the next repair puts them back."""
    calls: list[list[str]] = []
    table = [{"dst": "10.244.2.0/24"}, {"dst": "10.0.0.0/24"}]

    async def runner(argv: Sequence[str]) -> tuple[int, str]:
        calls.append(list(argv))
        return 0, json.dumps(table) if argv[:3] == ["ip", "-j", "route"] else ""

    r = Routes(runner)
    assert await r.repair() == []  # nothing desired yet: nothing to look at
    assert calls == []
    await r.apply({"10.244.2.0/24": "10.0.0.2", "10.244.3.0/24": "10.0.0.3"})
    calls.clear()
    assert await r.repair() == []
    assert calls == [
        ["ip", "-j", "route", "show"],
        ["ip", "route", "replace", "10.244.3.0/24", "via", "10.0.0.3"],
    ]
    assert r.current == {"10.244.2.0/24": "10.0.0.2", "10.244.3.0/24": "10.0.0.3"}


def test_exec_status_exit_codes() -> None:
    assert exec_exit_code(exec_status(0)) == 0
    assert exec_exit_code(exec_status(7)) == 7
    assert exec_exit_code(exec_status(-1, "link down")) is None
    assert exec_exit_code(b'{"status":"Success"}') == 0
    failure = {
        "status": "Failure",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    assert exec_exit_code(json.dumps(failure).encode()) == 3
    assert exec_exit_code(b'{"status":"Failure","message":"boom"}') is None
    assert exec_exit_code(b"not json") is None


async def test_exec_session_frames_round_trip() -> None:
    """A minimal server: answers the upgrade, echoes stdin on stdout, then closes."""
    got: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        _b1, b2 = await reader.readexactly(2)
        n = b2 & 0x7F
        mask = await reader.readexactly(4)
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(n)))
        got.append(data)
        payload = b"\x01" + data[1:]
        writer.write(bytes([0x82, len(payload)]) + payload)
        status = b'\x03{"status":"Success"}'
        writer.write(bytes([0x82, len(status)]) + status + b"\x88\x00")
        await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        s = await ExecSession.connect(f"http://127.0.0.1:{port}/exec/tok")
        await s.send(0, b"hello")
        assert await s.recv() == (1, b"hello")
        ch, data = await s.recv() or (None, b"")
        assert ch == 3 and exec_exit_code(data) == 0
        assert await s.recv() is None
        await s.close()
    finally:
        server.close()
        await server.wait_closed()
    assert got == [b"\x00hello"]


class _FakeImages:
    """The two ImageService calls ImagePuller makes, recorded."""

    def __init__(self, present: set[str], pull_error: str | None = None) -> None:
        self.present = present
        self.pull_error = pull_error
        self.pulls: list[tuple[str, float]] = []

    async def image_status(self, image: str) -> pb.Image | None:
        return pb.Image(id="sha256:1") if image in self.present else None

    async def pull_image(self, image: str, deadline: float = 0.0) -> str:
        self.pulls.append((image, deadline))
        if self.pull_error is not None:
            raise CRIError("PullImage", grpc.StatusCode.UNKNOWN, self.pull_error)
        self.present.add(image)
        return "sha256:1"


def _puller(fake: _FakeImages, *, offline: bool = False) -> ImagePuller:
    return ImagePuller(cast(CRIClient, fake), backoff_base=10.0, offline=offline)


LATEST = "docker.io/pilothouse/busybox:latest"


def test_pull_policy_defaults_as_kubernetes() -> None:
    assert ImagePuller.policy(LATEST, None) == "Always"
    assert ImagePuller.policy("docker.io/library/busybox:1.36", None) == "IfNotPresent"
    assert ImagePuller.policy(LATEST, "Never") == "Never"


async def test_if_not_present_uses_a_present_image_without_pulling() -> None:
    fake = _FakeImages({LATEST})
    assert (await _puller(fake).ensure(LATEST, "IfNotPresent")).ok
    assert fake.pulls == []


async def test_always_refreshes_a_present_image_and_keeps_it_when_the_registry_fails() -> None:
    fake = _FakeImages({LATEST}, pull_error="dial tcp: no route to host")
    r = await _puller(fake).ensure(LATEST, "Always")
    assert r.ok
    assert fake.pulls == [(LATEST, REFRESH_TIMEOUT)]


async def test_an_absent_image_whose_pull_fails_is_errimagepull_then_backoff() -> None:
    fake = _FakeImages(set(), pull_error="not found")
    puller = _puller(fake)
    r = await puller.ensure("docker.io/x/y:v1", "IfNotPresent")
    assert (r.ok, r.reason, r.message) == (False, "ErrImagePull", "not found")
    r = await puller.ensure("docker.io/x/y:v1", "IfNotPresent")
    assert (r.ok, r.reason) == (False, "ImagePullBackOff")
    assert len(fake.pulls) == 1  # no second pull inside the back-off


async def test_never_does_not_pull() -> None:
    fake = _FakeImages(set())
    r = await _puller(fake).ensure("docker.io/x/y:v1", "Never")
    assert (r.ok, r.reason) == (False, "ErrImageNeverPull")
    assert fake.pulls == []


async def test_offline_registry_uses_present_images_whatever_the_policy() -> None:
    fake = _FakeImages({LATEST})
    puller = _puller(fake, offline=True)
    for policy in ("Always", "IfNotPresent", "Never"):
        assert (await puller.ensure(LATEST, policy)).ok
    assert fake.pulls == []


async def test_offline_registry_fails_an_absent_image_at_once_with_the_reason() -> None:
    fake = _FakeImages(set())
    puller = _puller(fake, offline=True)
    r = await puller.ensure("docker.io/x/y:v1", "Always")
    assert (r.ok, r.reason) == (False, "ErrImagePull")
    assert '"docker.io/x/y:v1" is not present' in r.message
    assert "--offline-registry" in r.message
    r = await puller.ensure("docker.io/x/y:v1", "Always")
    assert (r.ok, r.reason) == (False, "ImagePullBackOff")
    assert "--offline-registry" in r.message
    assert fake.pulls == []


class _StopRecorder:
    """The one CRI call a graceful stop makes, with the time it was made."""

    def __init__(self) -> None:
        self.stops: list[tuple[str, int, float]] = []

    async def stop_container(self, container_id: str, timeout_s: int) -> None:
        self.stops.append((container_id, timeout_s, asyncio.get_running_loop().time()))


async def test_a_prestop_sleep_delays_the_stop_inside_the_grace_period(tmp_path: Path) -> None:
    from agent.pods.worker import PodWorker

    async def notify(params: object, terminated: bool) -> None:
        pass

    container = {
        "name": "app",
        "image": "busybox",
        "lifecycle": {"preStop": {"sleep": {"seconds": 1}}},
    }
    pod = {
        "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        "spec": {"terminationGracePeriodSeconds": 10, "containers": [container]},
    }
    cri = _StopRecorder()
    node = S.NodeConfig(name="n", state_dir=tmp_path, cgroup_parent="")
    worker = PodWorker(cast(CRIClient, cri), node, pod, notify)
    t0 = asyncio.get_running_loop().time()
    await worker._stop_gracefully("c1", "app", 10, "10.0.0.1")
    [(cid, left, at)] = cri.stops
    assert cid == "c1" and at - t0 >= 1.0
    assert left == 8  # what is left of the grace period, in whole seconds
