"""The control plane reaching real agents over SSH on a one-node local cluster.

`up` without `serve`, then a control plane in this process; the Node is
registered through its API (as `up` does) before its link over the SSH
transport is added: the node registers Ready and a pod runs as a real
container that answers HTTP from the host.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from control.client import Client
from control.config import load_config
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.localcluster.cluster import down, up
from control.nodes.ssh import ssh_transports
from control.objects.kinds import NODE, POD
from tests.cluster import make_pod
from tests.localcluster.names import NEEDS_LOCAL_CLUSTER, unique
from tests.polling import eventually

NAMES = unique("ln")

pytestmark = [
    *NEEDS_LOCAL_CLUSTER,
]


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    data_dir = tmp_path / "data"
    try:
        await asyncio.wait_for(
            up(
                1,
                data_dir,
                cluster=NAMES.cluster,
                node_subnet=NAMES.node_subnet,
                pod_cidr=NAMES.pod_cidr,
                service_cidr=NAMES.service_cidr,
                api_listen="",
            ),
            180,
        )
        config = load_config(None, data_dir=data_dir)
        cp = ControlPlane(config)
        await cp.start()
        try:
            for name, transport in ssh_transports(config).items():
                cp.node_links.add(name, transport)
            yield cp
        finally:
            await cp.stop()
    finally:
        await asyncio.wait_for(down(data_dir), 120)


Obj = dict[str, Any]


def _ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _get(url: str, within: float = 15.0) -> str:
    """GET `url`, again while the connection is refused: Running means the
    container started, not that its server listens yet (there is no probe)."""
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode().strip()
        except urllib.error.URLError as e:
            if not isinstance(e.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


async def _poll(
    get: Callable[[], Awaitable[Obj]], done: Callable[[Obj], bool], what: str, within: float
) -> Obj:
    """Poll `get` until `done` holds (the client has no watch helper for one object)."""

    async def check() -> Obj | None:
        try:
            obj = await get()
        except ApiError as e:
            if e.code == 404:  # the Node is registered by its link's first connect
                return None
            raise
        return obj if done(obj) else None

    return await eventually(check, what, within=within, every=0.2)


async def test_node_registers_and_runs_a_pod_over_ssh(plane: ControlPlane) -> None:
    async with Client(str(plane.socket_path)) as client:
        node = await _poll(lambda: client.get(NODE, "node1"), _ready, "node1 Ready", 30)
        assert node["spec"]["podCIDR"] == NAMES.pod_prefix(1) + "0/24"
        await client.create(POD, make_pod("web", command=["httpd", "-f", "-p", "80", "-h", "/etc"]))
        p = await _poll(
            lambda: client.get(POD, "web", "default"),
            lambda p: (
                p.get("status", {}).get("phase") == "Running" and bool(p["status"].get("podIP"))
            ),
            "pod web Running with an IP",
            60,
        )
    ip = p["status"]["podIP"]
    assert ip.startswith(NAMES.pod_prefix(1))
    assert await asyncio.to_thread(_get, f"http://{ip}/hostname") == "web"
