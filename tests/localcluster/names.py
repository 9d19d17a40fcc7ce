"""Names and ranges of its own for each test cluster, so that concurrent test
runs (and a user's cluster) on the same machine do not collide."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass


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
