"""The console's header names the control plane that leads, from the leader
election's Lease; without one (a single control plane) it says nothing."""

from __future__ import annotations

from typing import Any

from console.tui.leader import leader_text
from control.client import Client
from control.controlplane import ControlPlane
from control.objects.kinds import LEASE
from control.wire import LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE
from tests.polling import eventually
from tests.tui.conftest import console


def lease(holder: str, endpoint: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": LEADER_LEASE_NAME, "namespace": LEADER_LEASE_NAMESPACE}
    if endpoint:
        meta["annotations"] = {"pilothouse.io/leader-endpoint": endpoint}
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
    }


def test_leader_text() -> None:
    server = "https://10.0.0.1:6443"
    assert leader_text(lease("cp-1", "https://10.0.0.2:6443"), server) == (
        "leader cp-1 at https://10.0.0.2:6443"
    )
    assert leader_text(lease("cp-2", server), server + "/") == (
        "leader cp-2 at https://10.0.0.1:6443 (this server)"
    )
    assert leader_text(lease("cp-3"), server) == "leader cp-3"
    assert leader_text(lease(""), server) == "no leader"


async def test_the_header_shows_the_leader(plane: ControlPlane, client: Client) -> None:
    async with console(plane) as (app, _pilot):

        def header() -> str:
            return str(app.main.query_one("#health").render())

        await eventually(lambda: "server " in header())
        assert "leader" not in header()
        created = await client.create(LEASE, lease("cp-1", "https://10.0.0.2:6443"))
        # The console watches the Lease: the header follows it without a poll.
        await eventually(lambda: "leader cp-1 at https://10.0.0.2:6443" in header())
        created["spec"]["holderIdentity"] = "cp-2"
        await client.replace(LEASE, created)
        await eventually(lambda: "leader cp-2 at https://10.0.0.2:6443" in header())
