"""The one hand-encoded CRI client (control.nodes.cri) and the `node check` probe
built on it, against a fake CRI server whose answers the agent's generated
protobuf encodes (so the field numbers are checked against api.proto)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from agent.cri import api_pb2 as pb
from control.nodes.cri import CriClient
from control.nodesetup.check import CNI_PLUGINS, _interpret, probe_script

PAUSE = "docker.io/pilothouse/pause:latest"
NETNS = "/var/run/netns/cni-0123"


@dataclass
class FakeRuntime:
    """A containerd with one image and two pod sandboxes."""

    images: set[str] = field(default_factory=lambda: {PAUSE})
    sandboxes: list[str] = field(default_factory=lambda: ["s1", "s2"])
    stopped: list[str] = field(default_factory=list)

    def version(self, req: bytes, _: object) -> bytes:
        assert pb.VersionRequest.FromString(req).version == "v1"
        return pb.VersionResponse(
            version="0.1.0",
            runtime_name="containerd",
            runtime_version="1.7.24",
            runtime_api_version="v1",
        ).SerializeToString()

    def image_status(self, req: bytes, _: object) -> bytes:
        image = pb.ImageStatusRequest.FromString(req).image.image
        if image not in self.images:
            return pb.ImageStatusResponse().SerializeToString()
        return pb.ImageStatusResponse(
            image=pb.Image(id="sha256:1", repo_tags=[image])
        ).SerializeToString()

    def list_sandboxes(self, req: bytes, _: object) -> bytes:
        items = [pb.PodSandbox(id=s) for s in self.sandboxes]
        return pb.ListPodSandboxResponse(items=items).SerializeToString()

    def sandbox_status(self, req: bytes, _: object) -> bytes:
        r = pb.PodSandboxStatusRequest.FromString(req)
        assert r.verbose
        spec = {"linux": {"namespaces": [{"type": "network", "path": f"{NETNS}-{r.pod_sandbox_id}"}]}}  # fmt: skip
        info = {"info": json.dumps({"runtimeSpec": spec})}
        return pb.PodSandboxStatusResponse(info=info).SerializeToString()

    def stop_sandbox(self, req: bytes, _: object) -> bytes:
        self.stopped.append(pb.StopPodSandboxRequest.FromString(req).pod_sandbox_id)
        return b""

    def remove_sandbox(self, req: bytes, _: object) -> bytes:
        self.sandboxes.remove(pb.RemovePodSandboxRequest.FromString(req).pod_sandbox_id)
        return b""


def _handlers(methods: dict[str, Callable[[bytes, object], bytes]]) -> dict[str, object]:
    # No deserializers: the handlers see the encoded request.
    return {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in methods.items()}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[tuple[FakeRuntime, Path]]:
    fake = FakeRuntime()
    socket = tmp_path / "containerd.sock"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "runtime.v1.RuntimeService",
                _handlers(
                    {
                        "Version": fake.version,
                        "ListPodSandbox": fake.list_sandboxes,
                        "PodSandboxStatus": fake.sandbox_status,
                        "StopPodSandbox": fake.stop_sandbox,
                        "RemovePodSandbox": fake.remove_sandbox,
                    }
                ),
            ),
            grpc.method_handlers_generic_handler(
                "runtime.v1.ImageService", _handlers({"ImageStatus": fake.image_status})
            ),
        )
    )
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    try:
        yield fake, socket
    finally:
        server.stop(None)


def test_cri_client_calls(runtime: tuple[FakeRuntime, Path]) -> None:
    fake, socket = runtime
    with CriClient(str(socket), timeout=5) as cri:
        assert cri.version() == {
            "version": "0.1.0",
            "runtime_name": "containerd",
            "runtime_version": "1.7.24",
            "runtime_api_version": "v1",
        }
        assert cri.image_present(PAUSE)
        assert not cri.image_present("docker.io/library/other:latest")
        assert cri.list_sandboxes() == ["s1", "s2"]
        assert cri.sandbox_netns("s2") == f"{NETNS}-s2"
        cri.stop_sandbox("s1")
        cri.remove_sandbox("s1")
        assert (fake.stopped, cri.list_sandboxes()) == (["s1"], ["s2"])


def test_probe_needs_nothing_of_pilothouse() -> None:
    """The probe runs on a node before pilothouse is installed there: only the
    standard library, and grpc (whose absence it reports)."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(probe_script())):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {"__future__", "collections.abc", "typing", "json"} | {
        "importlib.util",
        "os",
        "sys",
        "grpc",
    }


def _probe(socket: Path, cni_dir: Path, cwd: Path, module: str = "agent") -> dict[str, object]:
    """The probe as `node check` runs it on a node, here with this python."""
    argv = [sys.executable, "-c", probe_script(), module, str(socket), PAUSE, str(cni_dir)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PILOTHOUSE_CONTAINERD_SOCKET")}  # fmt: skip
    r = subprocess.run(
        [*argv, *CNI_PLUGINS], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )
    assert r.returncode == 0, r.stderr
    out: dict[str, object] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def test_probe_reports_the_runtime(runtime: tuple[FakeRuntime, Path], tmp_path: Path) -> None:
    _, socket = runtime
    cni = tmp_path / "cni"
    cni.mkdir()
    for plugin in ("bridge", "loopback"):
        (cni / plugin).write_text("#!/bin/sh\n")
        (cni / plugin).chmod(0o755)
    info = _probe(socket, cni, tmp_path, module="no_such_agent_module")
    assert info["socket"] == str(socket) and info["socket_ok"] is True
    assert info["cri"] == "containerd 1.7.24 (CRI v1)"
    assert info["pause"] is True
    assert info["cni_missing"] == ["host-local"]
    assert (info["agent"], info["agent_missing"]) == (False, "no_such_agent_module")
    assert "grpc_error" not in info


def test_probe_without_containerd(tmp_path: Path) -> None:
    info = _probe(tmp_path / "missing.sock", tmp_path, tmp_path)
    assert info["socket_ok"] is False
    assert "cri" not in info and "pause" not in info
    assert info["cni_missing"] == list(CNI_PLUGINS)


def test_probe_findings_become_results_with_fixes() -> None:
    info: dict[str, object] = {
        "python": "3.11.2",
        "socket": "/run/containerd/containerd.sock",
        "agent": True,
        "socket_ok": True,
        "cni_missing": [],
        "cri_error": "unknown service runtime.v1.RuntimeService",
        "pause": False,
    }
    results = _interpret(info, "agent", PAUSE, "/usr/lib/cni")
    assert [(r.name, r.ok) for r in results] == [
        ("agent", True),
        ("containerd", True),
        ("cri", False),
        ("pause image", False),
        ("cni plugins", True),
    ]
    cri = results[2]
    assert "unknown service" in cri.detail and "disabled_plugins" in cri.fix
    assert "--import-to /run/containerd/containerd.sock" in results[3].fix
