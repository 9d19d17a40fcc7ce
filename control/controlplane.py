"""The control plane as one unit: store, registry and API server listeners.

`pilothouse serve` runs it headless; the console hosts it in-process. On first
start it creates the data dir's PKI and tokens, then writes a kubeconfig so
that the CLI, the `kubernetes` client and kubectl can connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import socket
import sys
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from control.api.leaderproxy import LeaderForwarder
from control.api.pki import (
    Tokens,
    ensure_ca,
    ensure_pki,
    ensure_tokens,
    server_ssl_context,
    write_kubeconfig,
)
from control.api.registry import Registry
from control.api.server import ApiServer
from control.config import Config
from control.controllers.endpoints import EndpointsController
from control.controllers.endpointslices import EndpointSliceController
from control.controllers.manager import ControllerManager
from control.controllers.namespace import NamespaceController
from control.controllers.nodelifecycle import NodeLifecycleController
from control.controllers.rootca import RootCAPublisher
from control.kubeconfig import client_ssl_context
from control.leader.election import ElectionTiming, LeaderElector
from control.leader.leaselock import RegistryLeaseLock
from control.nodes.ingress import ensure_default_classes
from control.nodes.link import NodeLink
from control.nodes.manager import NodeLinks
from control.nodes.transport import CommandTransport, Transport
from control.scheduler.scheduler import Scheduler
from control.store.backends import cached_store
from control.store.interface import Store
from control.wire import LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE

log = logging.getLogger(__name__)

KUBECONFIG = "kubeconfig"
READONLY_KUBECONFIG = "kubeconfig-readonly"
READONLY_TOKEN = "readonly-token"

# Cyclic garbage collection while the control plane runs: generation 0 after
# this many net allocations (Python's default is 700). The informers hold every
# watched object as decoded JSON (10,000 pods and 5,000 nodes: well over
# 100,000 dicts and lists, none in a cycle), and each collection that reaches
# them walks them all for nothing; at the default the serve process spent about a
# tenth of its main thread in the collector while scheduling. Refcounting
# still frees acyclic garbage at once; only cycles wait longer.
GC_THRESHOLDS = (50_000, 20, 10)


def open_store(config: Config) -> Store:
    # Reads are served from memory; the cache follows the backend with a watch.
    return cached_store(config.store)


class ControlPlane:
    def __init__(
        self,
        config: Config,
        *,
        transports: Mapping[str, Transport] | None = None,
        proxies: Mapping[str, Transport] | None = None,
        components: bool = True,
    ) -> None:
        """`transports` reaches the node agents by node name (in-process hollow
        agents in tests and benchmarks); more can be added to `node_links`.
        `proxies` reaches the service proxies by name (default: the config's
        `[[service_proxies]]` commands, run here).
        With `components=False` it serves the API alone: no scheduler,
        controllers or node links (for tests of the API itself)."""
        self.config = config
        self.components = components
        self.store = open_store(config)
        self.registry = Registry(
            self.store,
            config.network.service_cidr,
            # As kube-apiserver's --default-not-ready-toleration-seconds: the
            # eviction timeout, so eviction waits as long as before.
            default_toleration_seconds=math.ceil(config.controllers.pod_eviction_timeout),
        )
        self.api: ApiServer | None = None
        self.server_url: str | None = None
        if proxies is None:
            proxies = {
                p.name: CommandTransport(p.command, name=f"service proxy {p.name}")
                for p in config.service_proxies
            }
        self._transports = dict(transports or {})
        self._proxies = dict(proxies)
        self._build_components()
        # With leader election: campaigns while the API serves, and runs the
        # components only while this control plane leads.
        self.elector: LeaderElector | None = None
        self._terms = 0  # how many times the components have started
        # Components that run until stop(), each as one task.
        self._tasks: list[asyncio.Task[None]] = []
        self._gc_thresholds: tuple[int, int, int] | None = None  # to restore at stop()

    def _build_components(self) -> None:
        """The scheduler, the controllers and the node links, fresh: each term
        of leadership starts from new informers, queues and links."""
        config = self.config
        self.controllers = ControllerManager(self.registry, config)
        self.scheduler = Scheduler(self.registry, config, informers=self.controllers.informer)
        self.controllers.register(EndpointsController(self.controllers, config))
        self.controllers.register(EndpointSliceController(self.controllers, config))
        self.controllers.register(NodeLifecycleController(self.controllers, config))
        self.controllers.register(NamespaceController(self.controllers, config))
        self.node_links = NodeLinks(
            self.registry,
            config,
            self._transports,
            proxies=self._proxies,
            informers=self.controllers.informer,
        )
        self._ca_published = False  # the root CA publisher needs the CA: made at start()

    @property
    def socket_path(self) -> Path:
        return self.config.api.socket

    @property
    def kubeconfig_path(self) -> Path:
        return self.config.data_dir / KUBECONFIG

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(cfg.data_dir, 0o700)
        if self._gc_thresholds is None:
            self._gc_thresholds = gc.get_threshold()
            gc.set_threshold(*GC_THRESHOLDS)
        await self.store.open()
        try:
            await self.registry.ensure_system_namespaces()
            await ensure_default_classes(self.registry)
            tokens = ensure_tokens(cfg.api.tokens_file)
            elect = self.components and cfg.leader_election.enabled
            if elect:
                self.elector = self._elector()
            self.api = ApiServer(
                self.registry,
                role_of_token=tokens.role_of,
                user_of_token=tokens.user_of,
                nodes=(_LeadersLinks(self) if elect else self.node_links)
                if self.components
                else None,
                leader=self._forwarder(tokens) if self.elector is not None else None,
                limits=cfg.api.limits,
            )
            await self.api.start_unix(cfg.api.socket)
            listen = cfg.api.listen_address
            if listen is not None:
                await self._start_tls(*listen, tokens)
            if self.elector is not None:
                self.elector.endpoint = cfg.leader_election.advertise_url or self.server_url or ""
                self._tasks.append(
                    asyncio.create_task(self.elector.run(self._lead), name="leader election")
                )
            elif self.components:
                self._tasks.extend(self._start_components())
        except BaseException:
            await self.stop()
            raise

    def _elector(self) -> LeaderElector:
        election = self.config.leader_election
        identity = election.identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        return LeaderElector(
            RegistryLeaseLock(self.registry, LEADER_LEASE_NAMESPACE, LEADER_LEASE_NAME),
            identity,
            ElectionTiming(election.lease_duration, election.renew_deadline, election.retry_period),
        )

    def _forwarder(self, tokens: Tokens) -> LeaderForwarder:
        assert self.elector is not None
        cfg = self.config
        # The leader's certificate: the shared CA's, or an operator's under the system CAs.
        ca_pem = None if cfg.api.tls_cert else ensure_ca(cfg.api.pki_dir)
        return LeaderForwarder(
            self.registry,
            self.elector,
            identity=self.elector.identity,
            ssl_context=client_ssl_context(ca_pem),
            admin_token=tokens.require_token("admin"),
        )

    @property
    def leading(self) -> bool:
        """Whether this control plane runs the scheduler, the controllers and
        the node links now (always, once started, without leader election)."""
        return bool(self._terms) and (self.elector is None or self.elector.leading)

    def _start_components(self) -> list[asyncio.Task[None]]:
        """Start the scheduler, the controllers and the node links, one task each."""
        if self._terms:
            self._build_components()
        self._terms += 1
        cfg = self.config
        if not self._ca_published:
            ca_pem = ensure_ca(cfg.api.pki_dir).decode()
            self.controllers.register(RootCAPublisher(self.controllers, cfg, ca_pem))
            self._ca_published = True
        return [
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
            asyncio.create_task(self.controllers.run(), name="controllers"),
            asyncio.create_task(self.node_links.run(), name="node links"),
        ]

    async def _lead(self) -> None:
        """One term of leadership: the components run until cancelled."""
        log.info("leading: the scheduler, the controllers and the node links start")
        tasks = self._start_components()
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info("not leading: the scheduler, the controllers and the node links stopped")

    async def _start_tls(self, host: str, port: int, tokens: Tokens) -> None:
        cfg = self.config
        assert self.api is not None
        ca_pem: bytes | None
        if cfg.api.tls_cert and cfg.api.tls_key:
            # An operator's own certificate: clients trust it through the system CAs.
            context = server_ssl_context(cfg.api.tls_cert, cfg.api.tls_key)
            ca_pem = None
        else:
            wildcard = host in ("0.0.0.0", "::", "")
            pki = ensure_pki(cfg.api.pki_dir, [*([] if wildcard else [host]), *cfg.api.tls_san])
            context = server_ssl_context(pki.server_cert, pki.server_key)
            ca_pem = pki.ca_pem
        port = await self.api.start_tcp(host, port, context)
        url_host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        if ":" in url_host:
            url_host = f"[{url_host}]"
        self.server_url = f"https://{url_host}:{port}"
        admin, readonly = tokens.require_token("admin"), tokens.require_token("readonly")
        write_kubeconfig(self.kubeconfig_path, self.server_url, ca_pem, admin)
        write_kubeconfig(
            cfg.data_dir / READONLY_KUBECONFIG, self.server_url, ca_pem, readonly, user="readonly"
        )
        _write_private(cfg.data_dir / READONLY_TOKEN, readonly + "\n")

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.api is not None:
            await self.api.stop()
            self.api = None
        await self.store.close()
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
            self._gc_thresholds = None

    async def run_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()


class _LeadersLinks:
    """The node links while this control plane leads; none otherwise."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def link(self, node: str) -> NodeLink | None:
        return self.plane.node_links.link(node) if self.plane.leading else None


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


HOLLOW_NODE_PREFIX = "hollow-"


def hollow_node_transports(count: int, taken: Iterable[str] = ()) -> dict[str, Transport]:
    """`count` hollow nodes (`python3 -m agent.hollow`, one child process each:
    the real protocol, no containers), named hollow-1 ... hollow-N. A child
    exits when its link closes its stdin, and when this process dies."""
    names = [f"{HOLLOW_NODE_PREFIX}{i}" for i in range(1, count + 1)]
    clash = sorted(set(names) & set(taken))
    if clash:
        raise ValueError(f"hollow node {clash[0]} is also a configured [[nodes]] entry")
    return {
        name: CommandTransport(
            (sys.executable, "-m", "agent.hollow", "--name", name), name=f"hollow node {name}"
        )
        for name in names
    }


def over_ssh(config: Config, *, hollow_nodes: int = 0) -> ControlPlane:
    """A control plane that reaches the configured [[nodes]] over SSH, as
    `pilothouse serve` runs it, plus `hollow_nodes` simulated nodes."""
    from control.nodes.ssh import ssh_transports  # asyncssh: only where SSH links are made

    transports: dict[str, Transport] = dict(ssh_transports(config))
    transports.update(hollow_node_transports(hollow_nodes, transports))
    return ControlPlane(config, transports=transports)
