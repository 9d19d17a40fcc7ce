"""A local node's containers as runc sees them (the CRI plugin's runc root is
the node's own): the host pid of a pod's process, and so its network namespace,
for the tools that work inside a pod's namespace (`bench net`, the tests)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from control.localcluster.layout import Layout
from control.localcluster.proc import LocalClusterError


def runc_state(lay: Layout, node: str, container_id: str) -> dict[str, Any]:
    """runc's state of a container on `node` (its `pid` is the host pid).
    `container_id` as a pod status gives it (containerd://ID) or bare."""
    root = lay.node(node).runc_root / "k8s.io"
    argv = ["runc", "--root", str(root), "state", container_id.removeprefix("containerd://")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise LocalClusterError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    state: dict[str, Any] = json.loads(done.stdout)
    return state


def container_netns(lay: Layout, node: str, container_id: str) -> Path:
    """The network namespace of a running container (its pod's), as a path for nsenter."""
    state = runc_state(lay, node, container_id)
    pid = state.get("pid")
    if state.get("status") != "running" or not isinstance(pid, int) or pid <= 0:
        raise LocalClusterError(f"container {container_id} on {node} is not running: {state}")
    return Path(f"/proc/{pid}/ns/net")
