"""The etcd cluster of a local cluster with several control planes: one member
per control plane, on loopback, each with a data dir of its own. `up` starts
the members that do not run (a member with data rejoins its cluster) and waits
until each answers healthy; `down` stops them by their pids."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from control.localcluster.etcd import healthy, member_argv, require_etcd
from control.localcluster.layout import Layout
from control.localcluster.plan import ControlPlaneMember, HaPlan, make_ha_plan
from control.localcluster.proc import (
    LocalClusterError,
    Progress,
    alive,
    read_pid,
    start_daemon,
    stop_pid,
)
from control.localcluster.state import State

START_TIMEOUT = 30.0


def _running(lay: Layout, member: ControlPlaneMember) -> int | None:
    ml = lay.etcd_member(member.name)
    pid = read_pid(ml.pid)
    return pid if pid is not None and alive(pid, str(ml.data)) else None


def _start(lay: Layout, ha: HaPlan, member: ControlPlaneMember, cluster: str) -> int:
    ml = lay.etcd_member(member.name)
    ml.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = member_argv(
        require_etcd(),
        member.name,
        ml.data,
        client_url=member.etcd_client_url,
        peer_url=member.etcd_peer_url,
        initial_cluster=ha.initial_cluster,
        cluster_token=f"pilothouse-{cluster}",
    )
    return start_daemon(argv, ml.log, ml.pid)


async def _wait_healthy(lay: Layout, members: tuple[ControlPlaneMember, ...]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    for m in members:
        while not await asyncio.to_thread(healthy, f"{m.etcd_client_url}/health"):
            if _running(lay, m) is None:
                log = lay.etcd_member(m.name).log
                raise LocalClusterError(f"etcd member {m.name} exited; see {log}")
            if time.monotonic() > deadline:
                log = lay.etcd_member(m.name).log
                raise LocalClusterError(f"etcd member {m.name} is not healthy; see {log}")
            await asyncio.sleep(0.1)


async def ensure_members(lay: Layout, ha: HaPlan, cluster: str, progress: Progress) -> None:
    """Every member running and healthy (all started first: none is healthy alone)."""
    for m in ha.members:
        if _running(lay, m) is None:
            _start(lay, ha, m, cluster)
    await _wait_healthy(lay, ha.members)
    progress(f"etcd: {len(ha.members)} members on {', '.join(ha.etcd_endpoints)}")


async def stop_members(lay: Layout, ha: HaPlan, progress: Progress) -> None:
    for m in ha.members:
        ml = lay.etcd_member(m.name)
        pid = read_pid(ml.pid)
        if pid is not None and await stop_pid(pid, str(ml.data)):
            progress(f"etcd member {m.name}: stopped (pid {pid})")


def _plan_of(data_dir: Path) -> tuple[Layout, HaPlan, str]:
    lay = Layout.of(data_dir)
    state = State.load(lay.state)
    ha = (
        None
        if state is None
        else make_ha_plan(state.cluster, state.control_planes, state.api_listen)
    )
    if state is None or ha is None:
        raise LocalClusterError(f"no local cluster with several control planes in {data_dir}")
    return lay, ha, state.cluster


async def start_etcd_member(data_dir: Path, name: str) -> int:
    """Start one member of a local cluster's etcd again (after it died, say);
    returns its pid once it answers healthy."""
    lay, ha, cluster = _plan_of(data_dir)
    member = next((m for m in ha.members if m.name == name), None)
    if member is None:
        raise LocalClusterError(f"no etcd member {name!r} in the local cluster in {data_dir}")
    pid = _running(lay, member) or _start(lay, ha, member, cluster)
    await _wait_healthy(lay, (member,))
    return pid
