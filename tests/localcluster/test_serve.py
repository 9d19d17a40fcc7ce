"""The local cluster's control plane on the config `up` writes (no root: no
nodes are made, only the control plane runs)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control.config import load_config
from control.localcluster import clusterconfig as cc
from control.localcluster.layout import Layout
from control.localcluster.plan import make_plan
from control.localcluster.proc import alive, read_pid, stop_pid
from control.localcluster.serve import ensure_serving


@pytest.fixture
async def data_dir(tmp_path: Path) -> AsyncIterator[Path]:
    """A data dir whose control plane, if any, is stopped at the end."""
    d = tmp_path / "home"
    d.mkdir()
    yield d
    pid = read_pid(Layout(d).serve_pid)
    if pid is not None:
        await stop_pid(pid, str(d))


async def test_the_control_plane_serves_the_config_naming_each_nodes_block(data_dir: Path) -> None:
    lay = Layout(data_dir)
    plan = make_plan("t", 2, node_subnet="172.31.240.0/24", pod_cidr="10.250.0.0/16")
    argv = (sys.executable, "-m", "console", "serve", "--data-dir", str(data_dir))

    def config(n: int) -> str:
        # No TLS listener; the nodes' addresses do not answer (their links retry).
        return cc.render_config(lay, plan, plan.nodes[:n], ["true"], "", 40.0)

    async def serve(n: int) -> int:
        return await ensure_serving(lay, argv, config=config(n))

    pid = await serve(1)
    assert alive(pid, str(data_dir))
    assert lay.config.read_text() == config(1)
    # Each node's link registers its Node with the block its network was built for.
    nodes = load_config(None, data_dir=data_dir).nodes
    assert [(n.name, n.pod_cidr) for n in nodes] == [("node1", "10.250.1.0/24")]

    assert await serve(1) == pid  # the same config: left running

    # A new node: the control plane restarts on the config that names it.
    again = await serve(2)
    assert again != pid and not alive(pid, str(data_dir))
    assert alive(again, str(data_dir))
    assert lay.config.read_text() == config(2)
    nodes = load_config(None, data_dir=data_dir).nodes
    assert [(n.name, n.pod_cidr) for n in nodes] == [
        ("node1", "10.250.1.0/24"),
        ("node2", "10.250.2.0/24"),
    ]
