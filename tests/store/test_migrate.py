"""`pilothouse migrate`: the demo objects from SQLite to etcd and back, unchanged."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control.client import Client
from control.config import load_config
from control.controlplane import ControlPlane
from control.migrate import EtcdOptions, MigrateError, migrate
from control.objects.kinds import DEPLOYMENT, by_kind
from control.objects.manifest import load_manifests
from control.store.etcd import EtcdStore
from control.store.interface import Store
from control.store.sqlite import SqliteStore
from tests.conftest import REPO, running_plane
from tests.etcdserver import EtcdServer, running_etcd
from tests.store.contract import opened


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    with running_etcd() as server:
        yield server


async def contents(store: Store) -> dict[str, Any]:
    """Every object by key, without its resourceVersion (a copy gets new revisions)."""
    async with opened(store) as s:
        objs = {kv.key: kv.obj for kv in (await s.list("")).items}
    for obj in objs.values():
        obj["metadata"].pop("resourceVersion", None)
    return objs


async def test_demo_objects_round_trip(etcd: EtcdServer, tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.mkdir()
    async with running_plane(first) as plane, Client(str(plane.socket_path)) as client:
        for obj in load_manifests((REPO / "examples" / "demo.yaml").read_text()):
            rt = by_kind(obj["apiVersion"], obj["kind"])
            assert rt is not None
            await client.create(rt, obj)
    source = first / "state.db"
    before = await contents(SqliteStore(source))
    assert {k for k in before if k.startswith("/registry/deployments/")} == {
        "/registry/deployments/demo/web"
    }

    # The command line, SQLite to etcd.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "console",
        "migrate",
        "--from",
        f"sqlite:{source}",
        "--to",
        f"etcd:{etcd.endpoint}",
        "--etcd-prefix",
        "/migrated",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert f"migrated {len(before)} objects" in out.decode()
    assert "counts match" in out.decode()
    assert await contents(EtcdStore((etcd.endpoint,), prefix="/migrated")) == before

    # And back, into a new SQLite file.
    back = tmp_path / "back.db"
    opts = EtcdOptions(prefix="/migrated")
    result = await migrate(f"etcd:{etcd.endpoint}", f"sqlite:{back}", opts)
    assert result.total == len(before)
    assert result.counts["deployments"] == 1
    assert await contents(SqliteStore(back)) == before

    # A control plane on the migrated etcd serves the objects and writes on.
    served = tmp_path / "served"
    served.mkdir()
    (served / "config.toml").write_text(f'[api]\nlisten = ""\n{etcd.store_table("/migrated")}')
    cp = ControlPlane(load_config(None, data_dir=served), components=False)
    await cp.start()
    try:
        async with Client(str(cp.socket_path)) as client:
            web = await client.get(DEPLOYMENT, "web", "demo")
            web["spec"]["replicas"] = 5
            assert (await client.replace(DEPLOYMENT, web))["spec"]["replicas"] == 5
    finally:
        await cp.stop()

    # A destination that holds objects is refused.
    with pytest.raises(MigrateError, match="is not empty"):
        await migrate(f"sqlite:{source}", f"etcd:{etcd.endpoint}", opts)


async def test_bad_store_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MigrateError, match="--from: want sqlite:PATH or etcd:URL"):
        await migrate("state.db", "etcd:http://127.0.0.1:2379")
    with pytest.raises(MigrateError, match="--to: unknown store 'redis'"):
        await migrate(f"sqlite:{tmp_path}/a.db", "redis:x")
    with pytest.raises(MigrateError, match="--from: no such file"):
        await migrate(f"sqlite:{tmp_path}/a.db", "etcd:http://127.0.0.1:2379")
