"""The console's actions go through control.operations, with kubectl's semantics:
`+` pressed twice quicker than the API answers counts twice, and a drain evicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from console.tui.app import PilothouseApp
from control.client import Client
from control.controlplane import ControlPlane
from control.objects import kinds
from tests.cluster import hollow_cluster, make_pod
from tests.interleaving import FirstWriteLate
from tests.polling import eventually
from tests.tui.conftest import SIZE, noted, notes
from tests.tui.helpers import make_deployment


async def test_two_quick_pluses_add_two(plane: ControlPlane, client: Client) -> None:
    await make_deployment(client, "web", replicas=2)
    path = Client.path(kinds.DEPLOYMENT, "default", "web")
    clients: list[FirstWriteLate] = []

    def factory() -> Client:
        clients.append(FirstWriteLate(str(plane.socket_path), path))
        return clients[-1]

    app = PilothouseApp(factory, initial_view="deploy")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: len(app.table.shown) == 1, every=0.05)
        await pilot.press("plus", "plus")
        await eventually(
            lambda: len([n for n in notes(app) if "scal" in n]) == 2, within=15, every=0.05
        )
        assert clients[0].held, "the first write was not held back past the second read"
        obj = await client.get(kinds.DEPLOYMENT, "web", "default")
        assert obj["spec"]["replicas"] == 4, notes(app)
        assert notes(app, "error") == []


class Recording(Client):
    """A client that notes every request it sends, as (method, path)."""

    def __init__(self, server: str) -> None:
        super().__init__(server)
        self.sent: list[tuple[str, str]] = []

    async def request_raw(self, method: str, path: str, **kw: Any) -> tuple[int, bytes]:
        self.sent.append((method, path))
        return await super().request_raw(method, path, **kw)


async def test_drain_evicts_and_leaves_mirror_pods(tmp_path: Path) -> None:
    async with hollow_cluster(tmp_path, nodes=2) as cluster:
        await cluster.wait_nodes_ready()
        mirror = make_pod("static", "node-1")
        mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
        for pod in (make_pod("web", "node-1"), mirror):
            await cluster.registry.create(kinds.POD, "default", pod)
            await cluster.wait_pod_running(pod["metadata"]["name"])
        recording: list[Recording] = []

        def factory() -> Client:
            recording.append(Recording(cluster.socket))
            return recording[-1]

        app = PilothouseApp(factory, initial_view="no")
        async with app.run_test(size=SIZE) as pilot:
            await eventually(lambda: len(app.table.shown) == 2, every=0.05)
            await pilot.press("r", "y")  # drain node-1, the row under the cursor
            await eventually(
                noted(app, "node/node-1 drained (1 pods evicted)"), within=20, every=0.05
            )
        sent = recording[0].sent
        assert ("POST", Client.path(kinds.POD, "default", "web", "eviction")) in sent
        assert not [p for method, p in sent if method == "DELETE"]
        assert await cluster.pod("static") is not None
        assert await cluster.pod("web") is None
