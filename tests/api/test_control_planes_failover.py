"""Three `pilothouse serve` processes on one etcd, with leader election (short
timings): all serve the API, exactly one runs the scheduler, the controllers
and the node links (hollow nodes, its child processes), and when it is killed
another takes over; the pods stay, none is created or bound twice, and writes
and pod logs through any control plane keep working."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control.client import Client
from control.errors import ApiError
from control.objects.kinds import DEPLOYMENT, LEASE, POD
from control.wire import LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE
from tests.conftest import Served, start_serve, stop_serve
from tests.controllers.helpers import deployment
from tests.etcdserver import EtcdServer, running_etcd
from tests.polling import eventually

ELECTION = (
    "[leader_election]\nlease_duration = 4\nrenew_deadline = 3\nretry_period = 0.5\n"
    'identity = "{identity}"\n'
)
HOLLOW_NODES = 2
LEADS = "leading: the scheduler, the controllers and the node links start"


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    with running_etcd() as server:
        yield server


def serve_on_etcd(tmp: Path, etcd: EtcdServer, name: str) -> Served:
    """`serve --hollow-nodes 2` with its own data dir, and the CA and tokens
    the control planes share."""
    data = tmp / name
    data.mkdir()
    shared = tmp / "shared"
    (data / "config.toml").write_text(
        etcd.store_table("/failover")
        + f'\n[api]\npki_dir = "{shared / "pki"}"\ntokens_file = "{shared / "tokens.csv"}"\n\n'
        + ELECTION.format(identity=name)
    )
    return start_serve(data, tmp / f"{name}.log", "--hollow-nodes", str(HOLLOW_NODES))


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (the leader's hollow node agents)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry))
    return found


async def holder(client: Client) -> str:
    lease = await client.get(LEASE, LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE)
    return str(lease["spec"].get("holderIdentity") or "")


async def running_pods(client: Client, count: int) -> list[dict[str, Any]] | None:
    pods = (await client.list(POD, "default"))["items"]
    ok = [
        p
        for p in pods
        if p["spec"].get("nodeName") and (p.get("status") or {}).get("phase") == "Running"
    ]
    return pods if len(ok) == count == len(pods) else None


async def test_kill_the_leader_and_a_follower_takes_over(etcd: EtcdServer, tmp_path: Path) -> None:
    planes = {}
    try:
        for name in ("cp-1", "cp-2", "cp-3"):
            planes[name] = serve_on_etcd(tmp_path, etcd, name)
        clients = {name: Client(str(p.socket)) for name, p in planes.items()}
        try:
            first = await eventually(lambda: holder(clients["cp-3"]), "a leader", within=20)
            assert first == "cp-1"  # the first to start found the lease free
            followers = [n for n in planes if n != first]

            # Exactly one runs the node links: its hollow agents are its children.
            await eventually(
                lambda: len(children(planes[first].proc.pid)) == HOLLOW_NODES,
                "the leader's hollow nodes",
                within=20,
            )
            assert all(children(planes[n].proc.pid) == [] for n in followers)

            # A write through a follower is scheduled and run by the leader.
            await clients[followers[0]].create(DEPLOYMENT, deployment("web", replicas=3))
            before = await eventually(
                lambda: running_pods(clients[followers[1]], 3), "3 pods Running", within=30
            )
            name = before[0]["metadata"]["name"]
            # Pod logs through a follower: passed on to the leader's node links.
            assert "line" in await clients[followers[1]].logs(name, tail_lines=1)

            planes[first].proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            second = await eventually(
                lambda: _other_holder(clients[followers[0]], first), "a new leader", within=30
            )
            took = time.monotonic() - killed_at
            assert second in followers
            assert took <= 4 + 2 * 0.5 * 2.2 + 3, took  # lease + ~2 retries, plus slack
            third = next(n for n in followers if n != second)
            await eventually(
                lambda: len(children(planes[second].proc.pid)) == HOLLOW_NODES,
                "the new leader's hollow nodes",
                within=20,
            )
            assert children(planes[third].proc.pid) == []

            # The pods stay: same objects on the same nodes, none created again.
            after = await eventually(
                lambda: running_pods(clients[third], 3), "3 pods Running again", within=30
            )

            def placed(pods: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
                return {
                    p["metadata"]["name"]: (p["metadata"]["uid"], p["spec"]["nodeName"])
                    for p in pods
                }

            assert placed(after) == placed(before)

            # Writes through either remaining control plane; the new leader's
            # controllers and scheduler act on them.
            await clients[third].scale(DEPLOYMENT, "web", 5, "default")
            grown = await eventually(
                lambda: running_pods(clients[second], 5), "5 pods Running", within=30
            )
            assert placed(before).items() <= placed(grown).items()
            # Its links reconnect to new agents (child processes that take a moment to start).
            assert "line" in await eventually(
                lambda: last_log_line(clients[third], name), "the pod's log", within=20
            )

            # Each log says when its control plane led: the killed one, then the new one.
            logs = {n: (tmp_path / f"{n}.log").read_text() for n in planes}
            assert logs[first].count(LEADS) == 1
            assert logs[second].count(LEADS) == 1
            assert LEADS not in logs[third]
        finally:
            for client in clients.values():
                await client.close()
    finally:
        for served in planes.values():
            stop_serve(served)


async def last_log_line(client: Client, pod: str) -> str | None:
    """The pod's last log line; None while its node's link is not up."""
    try:
        return await client.logs(pod, tail_lines=1)
    except ApiError as e:
        if e.code in (400, 503):
            return None
        raise


async def _other_holder(client: Client, old: str) -> str | None:
    current = await holder(client)
    return current if current and current != old else None
