"""A private containerd in its own network namespace, for the agent's e2e tests.

Everything it makes (netns, bridge, daemons, mounts, pod sandboxes) is removed by
`stop()`, which is safe to call after a partial start.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.cri.client import CRIClient
from agent.images import build_images, import_archive
from agent.pods.network import write_conflist
from control.client import Client
from control.config import load_config
from control.controlplane import ControlPlane
from control.localcluster.files import containerd_config
from control.nodes.transport import CommandTransport
from control.objects.kinds import POD
from tests.polling import eventually

POD_CIDR = "10.244.250.0/24"
BRIDGE = "phtbr0"
CLONE_NEWNET = 0x40000000


def have_tools() -> str | None:
    """Why e2e tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("containerd", "ctr", "runc", "ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (scripts/setup.sh installs it)"
    if not Path("/usr/lib/cni/bridge").exists():
        return "containernetworking-plugins not installed"
    return None


def run(
    argv: list[str], check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


@dataclass
class Node:
    """One node: a netns running a private containerd."""

    name: str = field(default_factory=lambda: f"phtest-{os.getpid()}")
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="phtest-ctrd-")))
    proc: subprocess.Popen[bytes] | None = None
    netns_made: bool = False

    @property
    def socket(self) -> Path:
        return self.root / "containerd.sock"

    @property
    def cgroup_parent(self) -> str:
        return f"/pilothouse-test/{self.name}"

    def ns(self, *argv: str) -> list[str]:
        """argv to run inside the node's network namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def start(self) -> None:
        run(["ip", "netns", "add", self.name])
        self.netns_made = True
        run(self.ns("ip", "link", "set", "lo", "up"))
        write_conflist(self.root / "cni" / "net.d", POD_CIDR, self.root / "cni" / "ipam", BRIDGE)
        config = containerd_config(
            root=self.root / "root",
            state=self.root / "state",
            socket=self.socket,
            runc_root=self.root / "runc",
            cni_conf_dir=self.root / "cni" / "net.d",
        )
        (self.root / "containerd.toml").write_text(config)
        log = open(self.root / "containerd.log", "ab")
        # nsenter joins only the netns: `ip netns exec` also remounts /sys, which
        # hides the cgroup v1 mounts from runc.
        self.proc = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{self.name}",
                "containerd",
                "--config",
                str(self.root / "containerd.toml"),
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("containerd did not start: " + self.log_tail())
            time.sleep(0.05)
        for archive in build_images(self.root / "images").values():
            import_archive(self.socket, archive)

    def log_tail(self, n: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "containerd.log").read_text(errors="replace")[-n:]
        return ""

    async def remove_all_sandboxes(self) -> None:
        cri = CRIClient(str(self.socket), timeout=30)
        try:
            for sb in await cri.list_pod_sandboxes():
                with contextlib.suppress(Exception):
                    await cri.stop_pod_sandbox(sb.id)
                with contextlib.suppress(Exception):
                    await cri.remove_pod_sandbox(sb.id)
        finally:
            await cri.close()

    def _our_shims(self) -> list[int]:
        """Shims this containerd started: their argv names its socket."""
        pids = []
        needle = str(self.socket).encode()
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                argv = (d / "cmdline").read_bytes().split(b"\0")
                if argv and argv[0].endswith(b"containerd-shim-runc-v2") and needle in argv:
                    pids.append(int(d.name))
        return pids

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.socket.exists():
            with contextlib.suppress(Exception):
                asyncio.run(asyncio.wait_for(self.remove_all_sandboxes(), 60))
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self._our_shims():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self._unmount_under_root()
        if self.netns_made:
            run(["ip", "netns", "del", self.name], check=False)
            self.netns_made = False
        self._remove_cgroups()
        shutil.rmtree(self.root, ignore_errors=True)

    def _unmount_under_root(self) -> None:
        prefix = str(self.root) + "/"
        mounts = []
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                point = line.split()[4].replace("\\040", " ")
                if point.startswith(prefix):
                    mounts.append(point)
        for point in sorted(mounts, key=len, reverse=True):
            run(["umount", "-l", point], check=False)

    def _remove_cgroups(self) -> None:
        base = Path("/sys/fs/cgroup")
        for ctrl in base.iterdir() if base.exists() else []:
            top = ctrl / "pilothouse-test" / self.name
            if not top.is_dir():
                continue
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(str(p))):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()
            with contextlib.suppress(OSError):
                top.parent.rmdir()


def in_netns(node: Node, fn: Callable[[], object]) -> object:
    """Runs fn in a thread that has joined the node's network namespace."""
    import threading

    result: list[object] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{node.name}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(30)
    if errors:
        raise errors[0]
    return result[0] if result else None


def linked_plane(node: Node, tmp_path: Path) -> ControlPlane:
    """A control plane (not started) whose one node link, node-1, runs the real
    agent (`python -m agent`) in the node's netns on its containerd."""
    (tmp_path / "config.toml").write_text(
        '[api]\nlisten = ""\n\n'
        "[ssh]\nreconnect_backoff_initial = 0.2\nreconnect_backoff_max = 1\n\n"
        f'[network]\npod_cidr = "{POD_CIDR}"\nnode_cidr_mask = 24\n'
    )
    argv = [
        "nsenter",
        f"--net=/run/netns/{node.name}",
        sys.executable,
        "-m",
        "agent",
        "--containerd-socket",
        str(node.socket),
        "--node-name",
        "node-1",
        "--state-dir",
        str(tmp_path / "agent-state"),
        "--cgroup-parent",
        node.cgroup_parent,
        "--sync-interval",
        "0.3",
        "--heartbeat-interval",
        "1",
    ]
    return ControlPlane(
        load_config(None, data_dir=tmp_path),
        transports={"node-1": CommandTransport(argv, name="node-1")},
    )


async def wait_running(client: Client, name: str, what: str) -> None:
    """Wait (a minute at most) until the pod `name` in `default` is Running."""

    async def running() -> bool:
        p = await client.get(POD, name, "default")
        return (p.get("status") or {}).get("phase") == "Running"

    await eventually(running, what, within=60)
