"""Names and ranges of its own for each test cluster, so that concurrent test
runs (and a user's cluster) on the same machine do not collide."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Every test that runs a real local cluster: it needs root and the node tools.
NEEDS_LOCAL_CLUSTER = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("containerd", "ctr", "runc", "nsenter"))
        or not Path("/usr/sbin/sshd").exists()
        or not Path("/usr/lib/cni/bridge").exists(),
        reason="needs containerd, runc, openssh-server and containernetworking-plugins",
    ),
]
# The marks of a module whose tests share one cluster (its fixture is module-scoped).
SHARED_CLUSTER_MODULE = [*NEEDS_LOCAL_CLUSTER, pytest.mark.asyncio(loop_scope="module")]


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
    service_cidr: str

    def up_args(self) -> list[str]:
        """`pilothouse up` options that give the cluster these names, and no TLS listener."""
        return [
            "--name",
            self.cluster,
            "--node-subnet",
            self.node_subnet,
            "--pod-cidr",
            self.pod_cidr,
            "--service-cidr",
            self.service_cidr,
            "--listen",
            "",
        ]

    def node_ip(self, i: int) -> str:
        return str(ipaddress.ip_network(self.node_subnet).network_address + 10 + i)

    def pod_prefix(self, i: int) -> str:
        """`10.x.i.`: the start of node i's pod addresses."""
        return ".".join([*self.pod_cidr.split(".")[:2], str(i), ""])


def _routed() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The host's routes now: ranges that another cluster (maybe another test
    run's) already uses."""
    try:
        out = subprocess.run(
            ["ip", "-j", "route", "show"], capture_output=True, text=True, timeout=10
        ).stdout
        return [
            ipaddress.ip_network(r["dst"], strict=False)
            for r in json.loads(out or "[]")
            if r.get("dst") not in (None, "", "default")
        ]
    except (OSError, ValueError, subprocess.SubprocessError):
        return []


def unique(prefix: str) -> ClusterNames:
    """Random names and ranges, avoiding ranges the host routes already (so
    that two clusters up at once never share a subnet), in at most 50 draws."""
    routed = _routed()
    for _ in range(50):
        r = secrets.randbelow(100)
        names = ClusterNames(
            cluster=f"{prefix}{secrets.token_hex(2)}",
            node_subnet=f"172.31.{100 + r}.0/24",
            pod_cidr=f"10.{150 + r}.0.0/16",
            service_cidr=f"172.30.{100 + r}.0/24",
        )
        mine = [
            ipaddress.ip_network(n) for n in (names.node_subnet, names.pod_cidr, names.service_cidr)
        ]
        if not any(net.overlaps(other) for net in mine for other in routed):
            break
    return names
