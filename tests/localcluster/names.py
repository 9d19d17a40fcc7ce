"""Names and ranges of its own for each test cluster, so that concurrent test
runs (and a user's cluster) on the same machine do not collide; and what the
local-cluster tests share: the skip marker for what they need, and the CLI."""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Root, containerd, runc, sshd and the CNI plugins: what `pilothouse up` needs.
needs_local_cluster = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("containerd", "ctr", "runc", "nsenter"))
        or not Path("/usr/sbin/sshd").exists()
        or not Path("/usr/lib/cni/bridge").exists(),
        reason="needs containerd, runc, openssh-server and containernetworking-plugins",
    ),
]


def cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`pilothouse ARGS` as a user runs it, with PILOTHOUSE_HOME=home and no KUBECONFIG."""
    env = {**os.environ, "PILOTHOUSE_HOME": str(home)}
    env.pop("KUBECONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class ClusterNames:
    cluster: str
    node_subnet: str
    pod_cidr: str

    def node_ip(self, i: int) -> str:
        return str(ipaddress.ip_network(self.node_subnet).network_address + 10 + i)

    def up_args(self, nodes: int) -> list[str]:
        """`pilothouse up` arguments for this cluster: no console, no TLS listener."""
        return [
            "up",
            "--nodes",
            str(nodes),
            "--no-console",
            "--name",
            self.cluster,
            "--node-subnet",
            self.node_subnet,
            "--pod-cidr",
            self.pod_cidr,
            "--listen",
            "",
        ]

    def pod_prefix(self, i: int) -> str:
        """`10.x.i.`: the start of node i's pod addresses."""
        return ".".join([*self.pod_cidr.split(".")[:2], str(i), ""])


def unique(prefix: str) -> ClusterNames:
    r = secrets.randbelow(100)
    return ClusterNames(
        cluster=f"{prefix}{secrets.token_hex(2)}",
        node_subnet=f"172.31.{100 + r}.0/24",
        pod_cidr=f"10.{150 + r}.0.0/16",
    )
