"""The local cluster's control plane and its Nodes, registered through the API
(no root: no nodes are made, only the control plane runs)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control.client import Client
from control.config import load_config
from control.controlplane import ControlPlane
from control.localcluster import clusterconfig as cc
from control.localcluster.layout import Layout
from control.localcluster.plan import make_plan
from control.localcluster.proc import alive, read_pid, stop_pid
from control.localcluster.serve import ensure_serving, register_nodes
from control.objects.kinds import NODE


async def test_register_nodes_through_the_api(plane: ControlPlane) -> None:
    n1, n2, n3 = make_plan("t", 3, pod_cidr="10.250.0.0/16").nodes
    async with Client(str(plane.socket_path)) as client:
        # node2 registered itself without a CIDR; node3 with another one.
        await client.create(NODE, {"metadata": {"name": "node2"}})
        other = {"podCIDR": "10.250.9.0/24", "podCIDRs": ["10.250.9.0/24"]}
        await client.create(NODE, {"metadata": {"name": "node3"}, "spec": other})

        warnings = await register_nodes(client, [n1, n2, n3])

        assert warnings == [
            "node3: Node has podCIDR 10.250.9.0/24, the network routes 10.250.3.0/24"
        ]
        for n, cidr in ((n1, "10.250.1.0/24"), (n2, "10.250.2.0/24"), (n3, "10.250.9.0/24")):
            spec = (await client.get(NODE, n.name))["spec"]
            assert (spec["podCIDR"], spec["podCIDRs"]) == (cidr, [cidr])
        assert await register_nodes(client, [n1, n2]) == []  # again: nothing to do


@pytest.fixture
async def data_dir(tmp_path: Path) -> AsyncIterator[Path]:
    """A data dir whose control plane, if any, is stopped at the end."""
    d = tmp_path / "home"
    d.mkdir()
    yield d
    pid = read_pid(Layout(d).serve_pid)
    if pid is not None:
        await stop_pid(pid, str(d))


async def test_the_control_plane_serves_registered_nodes(data_dir: Path) -> None:
    lay = Layout(data_dir)
    plan = make_plan("t", 2, node_subnet="172.31.240.0/24", pod_cidr="10.250.0.0/16")
    argv = (sys.executable, "-m", "console", "serve", "--data-dir", str(data_dir))

    def config(n: int) -> str:
        # No TLS listener; the nodes' addresses do not answer (their links retry).
        return cc.render_config(lay, plan, plan.nodes[:n], ["true"], "", 40.0)

    async def serve(n: int) -> int:
        return await ensure_serving(
            lay,
            argv,
            config=config(n),
            config_without_nodes=config(0),
            nodes=plan.nodes[:n],
            progress=lambda _: None,
        )

    pid = await serve(1)
    assert alive(pid, str(data_dir))
    assert lay.config.read_text() == config(1)
    assert [n.name for n in load_config(None, data_dir=data_dir).nodes] == ["node1"]
    async with Client(str(lay.api_socket)) as client:
        assert (await client.get(NODE, "node1"))["spec"]["podCIDR"] == "10.250.1.0/24"

    assert await serve(1) == pid  # the same config: left running

    # A new node: registered through the running control plane, then it restarts.
    again = await serve(2)
    assert again != pid and not alive(pid, str(data_dir))
    assert lay.config.read_text() == config(2)
    async with Client(str(lay.api_socket)) as client:
        nodes = (await client.list(NODE))["items"]
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in nodes}
    assert cidrs == {"node1": "10.250.1.0/24", "node2": "10.250.2.0/24"}
