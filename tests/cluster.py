"""An in-process cluster on hollow nodes, for tests.

`hollow_cluster(tmp_path, nodes=3)` starts a ControlPlane (API on a unix
socket, scheduler, controllers, node links) with short health timings, and N
hollow agents connected through in-process transports. Use it as an async
context manager:

    async with hollow_cluster(tmp_path, nodes=3) as cluster:
        await cluster.wait_nodes_ready()
        ...

Failures are simulated on the agents (`cluster.agents[name].heartbeating =
False`) or the transports (`cluster.transports[name].refuse = True`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.hollow import HollowAgent
from control.api.registry import Registry
from control.client import Client
from control.config import load_config
from control.controlplane import ControlPlane
from control.errors import ApiError
from control.nodes.reconnecting import LinkState
from control.nodes.transport import InProcessTransport
from control.objects.conditions import get_condition
from control.objects.kinds import NODE, POD, ResourceType
from tests.polling import eventually

Obj = dict[str, Any]

DEFAULT_TIMEOUT = 15.0


def condition(obj: Obj, kind: str) -> Obj | None:
    return get_condition(obj.get("status") or {}, kind)


def make_pod(
    name: str,
    node: str | None = None,
    *,
    labels: dict[str, str] | None = None,
    ports: list[Obj] | None = None,
    tolerations: list[Obj] | None = None,
    namespace: str = "default",
    command: list[str] | None = None,
    **spec: Any,
) -> Obj:
    container: Obj = {"name": "main", "image": "pilothouse/busybox"}
    if command:
        container["command"] = command
    if ports:
        container["ports"] = ports
    pod_spec: Obj = {"containers": [container], **spec}
    if node:
        pod_spec["nodeName"] = node
    if tolerations:
        pod_spec["tolerations"] = tolerations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": pod_spec,
    }


@dataclass
class HollowCluster:
    plane: ControlPlane
    agents: dict[str, HollowAgent] = field(default_factory=dict)
    transports: dict[str, InProcessTransport] = field(default_factory=dict)
    heartbeat_interval: float = 0.1

    @property
    def registry(self) -> Registry:
        return self.plane.registry

    @property
    def socket(self) -> str:
        return str(self.plane.socket_path)

    def client(self) -> Client:
        return Client(self.socket)

    def add_node(self, name: str, **capacity: Any) -> HollowAgent:
        agent = HollowAgent(name, heartbeat_interval=self.heartbeat_interval, **capacity)
        transport = InProcessTransport(agent.serve, name)
        self.agents[name] = agent
        self.transports[name] = transport
        self.plane.node_links.add(name, transport)
        return agent

    async def disconnect(self, name: str, within: float = DEFAULT_TIMEOUT) -> None:
        """Cut a node's connection and refuse new ones until `transports[name].refuse`
        is False again; returns once its link is down."""
        link = self.plane.node_links.links[name]
        self.transports[name].refuse = True
        await self.transports[name].cut()

        async def down() -> bool:
            return link.state is not LinkState.CONNECTED

        await eventually(down, f"the link to {name} to go down", within=within)

    async def sessions_released(self, node: str = "node-1") -> None:
        """Neither the node's link nor its agent keeps an exec or attach
        session; waits until so."""
        link = self.plane.node_links.links[node]
        agent = self.agents[node]

        async def released() -> bool:
            return not link._exec_sessions and (agent.sessions is None or not len(agent.sessions))

        await eventually(released, "the sessions to be released", within=DEFAULT_TIMEOUT)

    # -- reads ---------------------------------------------------------------

    async def _get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """The object, or None where there is none."""
        try:
            return (await self.registry.get(rt, namespace, name)).obj
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    async def node(self, name: str) -> Obj | None:
        return await self._get(NODE, None, name)

    async def pod(self, name: str, namespace: str = "default") -> Obj | None:
        return await self._get(POD, namespace, name)

    async def pods(self, namespace: str | None = "default") -> list[Obj]:
        return [kv.obj for kv in (await self.registry.list(POD, namespace)).items]

    # -- waits ---------------------------------------------------------------

    async def wait_node_ready(self, name: str, within: float = DEFAULT_TIMEOUT) -> Obj:
        async def ready() -> Obj | None:
            node = await self.node(name)
            c = condition(node, "Ready") if node else None
            return node if c and c.get("status") == "True" else None

        return await eventually(ready, f"node {name} Ready", within=within)

    async def wait_nodes_ready(self, within: float = DEFAULT_TIMEOUT) -> list[Obj]:
        return [await self.wait_node_ready(n, within) for n in self.agents]

    async def wait_pod_running(
        self, name: str, namespace: str = "default", within: float = DEFAULT_TIMEOUT
    ) -> Obj:
        async def running() -> Obj | None:
            pod = await self.pod(name, namespace)
            if pod is None or (pod.get("status") or {}).get("phase") != "Running":
                return None
            return pod if (pod["status"].get("podIP")) else None

        return await eventually(running, f"pod {namespace}/{name} Running", within=within)

    async def wait_pod_gone(
        self, name: str, namespace: str = "default", within: float = DEFAULT_TIMEOUT
    ) -> None:
        async def gone() -> bool:
            return await self.pod(name, namespace) is None

        await eventually(gone, f"pod {namespace}/{name} deleted", within=within)


@contextlib.asynccontextmanager
async def hollow_cluster(
    tmp_path: Path,
    nodes: int = 3,
    *,
    grace_period: float = 2.0,
    eviction_timeout: float = 1.0,
    heartbeat_interval: float = 0.1,
    extra_config: str = "",
    listen: str = "",
    pod_cidrs: dict[str, str] | None = None,
) -> AsyncIterator[HollowCluster]:
    """A control plane with `nodes` hollow nodes named node-1 ... node-N; with
    `listen` ("127.0.0.1:0"), TLS and tokens too; `pod_cidrs` configures some
    nodes' blocks."""
    names = [f"node-{i}" for i in range(1, nodes + 1)]
    cidrs = pod_cidrs or {}
    node_tables = "".join(
        f'[[nodes]]\nname = "{n}"\nhost = "192.0.2.{i}"\n'
        + (f'pod_cidr = "{cidrs[n]}"\n' if n in cidrs else "")
        + "\n"
        for i, n in enumerate(names, 1)
    )
    (tmp_path / "config.toml").write_text(
        f'[api]\nlisten = "{listen}"\n\n'
        "[ssh]\nreconnect_backoff_initial = 0.05\nreconnect_backoff_max = 0.5\n\n"
        f"[controllers]\nnode_monitor_grace_period = {grace_period}\n"
        f"pod_eviction_timeout = {eviction_timeout}\n\n"
        f"{node_tables}{extra_config}"
    )
    config = load_config(None, data_dir=tmp_path)
    agents = {n: HollowAgent(n, heartbeat_interval=heartbeat_interval) for n in names}
    transports = {n: InProcessTransport(a.serve, n) for n, a in agents.items()}
    plane = ControlPlane(config, transports=transports)
    cluster = HollowCluster(plane, agents, transports, heartbeat_interval)
    await plane.start()
    try:
        yield cluster
    finally:
        await plane.stop()


@contextlib.asynccontextmanager
async def hollow_pod(
    tmp_path: Path, name: str = "web", listen: str = "", extra_config: str = ""
) -> AsyncIterator[HollowCluster]:
    """One hollow node, Ready, running one pod."""
    async with hollow_cluster(
        tmp_path, nodes=1, listen=listen, extra_config=extra_config
    ) as cluster:
        await cluster.wait_nodes_ready()
        await cluster.registry.create(POD, "default", make_pod(name, "node-1"))
        await cluster.wait_pod_running(name)
        yield cluster
