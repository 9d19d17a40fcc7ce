"""Control planes on etcd: a Deployment created through one is scheduled and run by another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control.client import Client
from control.config import load_config
from control.controlplane import ControlPlane
from control.objects.kinds import DEPLOYMENT, POD
from control.store.etcd import EtcdStore
from tests.cluster import hollow_cluster
from tests.controllers.helpers import deployment
from tests.etcdserver import EtcdServer, running_etcd
from tests.polling import eventually
from tests.store.contract import opened


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    with running_etcd() as server:
        yield server


async def test_deployment_through_a_second_control_plane_runs_on_hollow_nodes(
    etcd: EtcdServer, tmp_path: Path
) -> None:
    leader, api_only = tmp_path / "leader", tmp_path / "api"
    leader.mkdir()
    api_only.mkdir()
    table = etcd.store_table("/serve")
    async with hollow_cluster(leader, nodes=2, extra_config=table) as cluster:
        await cluster.wait_nodes_ready()
        # A second control plane on the same etcd serves the API alone: no
        # scheduler, controllers or node links of its own.
        (api_only / "config.toml").write_text(f'[api]\nlisten = ""\n\n{table}')
        second = ControlPlane(load_config(None, data_dir=api_only), components=False)
        await second.start()
        try:
            async with Client(str(second.socket_path)) as client:
                await client.create(DEPLOYMENT, deployment("web", replicas=3))

                async def running() -> list[Any] | None:
                    pods = (await client.list(POD, "default"))["items"]
                    ok = [
                        p
                        for p in pods
                        if p["spec"].get("nodeName")
                        and (p.get("status") or {}).get("phase") == "Running"
                    ]
                    return ok if len(ok) == 3 else None

                pods = await eventually(running, "3 pods Running, seen through the second plane")
                assert {p["spec"]["nodeName"] for p in pods} <= {"node-1", "node-2"}
                # The first plane's own reads agree, and etcd holds the objects.
                assert len(await cluster.pods()) == 3
                async with opened(EtcdStore((etcd.endpoint,), prefix="/serve")) as raw:
                    stored = await raw.list("/registry/pods/default/")
                    assert len(stored.items) == 3
        finally:
            await second.stop()
