"""NodeLinks: the node links of one control plane, over shared caches.

One pod informer (indexed by `spec.nodeName`) and one node informer serve
every link: a pod change marks only the links of the nodes it was and is on,
and each link sends its node's full desired set. The manager also hands out
pod CIDRs from `network.pod_cidr` and computes each node's network state
(its routes to the other nodes' pod CIDRs). One ServiceRules keeps the service
rules of every node, and of the service proxies (`[[service_proxies]]`: links
to proxy-only agents that are not nodes), current; one IngressRoutes keeps the
ingress nodes' route tables current.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping

from agent.protocol import NetworkConfigParams, Params, Peer, PodSource, Route
from control.api.registry import Registry
from control.config import Config, NodeConfig
from control.machinery.events import EventRecorder
from control.machinery.indexes import NODE_NAME_INDEX, pod_node_name
from control.machinery.informer import Informer
from control.nodes.ingress import IngressRoutes, IngressTiming
from control.nodes.link import LinkTiming, NodeLink, desired_changed
from control.nodes.nodeaddress import internal_ip
from control.nodes.podsources import PodSources
from control.nodes.proxylink import ProxyLink
from control.nodes.services import RulesTiming, ServiceRules
from control.nodes.transport import Transport
from control.objects import Obj
from control.objects.kinds import (
    CONFIGMAP,
    ENDPOINTSLICE,
    NODE,
    POD,
    SECRET,
    SERVICE,
    ResourceType,
    object_key,
)

log = logging.getLogger(__name__)

InformerFor = Callable[[ResourceType], Informer]


def _network_view(node: Obj) -> tuple[str, str]:
    return (node.get("spec") or {}).get("podCIDR") or "", internal_ip(node)


class NodeLinks:
    """`NodeLinks(registry, config, transports)`, then `await run()`.

    `proxies` reaches the service proxies by name. `informers`, when given,
    returns shared informers that someone else runs; otherwise NodeLinks runs
    its own informers (pods, nodes, and the kinds service rules and ingress
    routes are made of).
    """

    def __init__(
        self,
        registry: Registry,
        config: Config,
        transports: Mapping[str, Transport],
        *,
        proxies: Mapping[str, Transport] | None = None,
        informers: InformerFor | None = None,
        timing: LinkTiming | None = None,
        rules_timing: RulesTiming | None = None,
        ingress_timing: IngressTiming | None = None,
    ) -> None:
        self.registry = registry
        self.config = config
        grace = config.controllers.node_monitor_grace_period
        self.timing = timing or LinkTiming(
            connect_timeout=config.ssh.connect_timeout,
            backoff_initial=config.ssh.reconnect_backoff_initial,
            backoff_max=config.ssh.reconnect_backoff_max,
            # Well inside the grace period, so a live node never looks stale.
            status_interval=min(10.0, grace / 4),
        )
        self._own_informers = informers is None
        own: dict[str, Informer] = {}

        def informer(rt: ResourceType) -> Informer:
            if informers is not None:
                return informers(rt)
            if rt.plural not in own:
                own[rt.plural] = Informer(registry, rt)
            return own[rt.plural]

        self.pods, self.nodes, services, slices, configmaps, secrets = (
            informer(rt) for rt in (POD, NODE, SERVICE, ENDPOINTSLICE, CONFIGMAP, SECRET)
        )
        self.service_rules = ServiceRules(registry, services, slices, rules_timing)
        self.ingress_routes = IngressRoutes(registry, informer, self.nodes, ingress_timing)
        self._informers = list(own.values())
        self.pods.add_index(NODE_NAME_INDEX, pod_node_name)
        self.sources = PodSources(self.pods, configmaps, secrets, self._sources_changed)
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)
        self.recorder = EventRecorder(registry, "kubelet")
        self._configs = {n.name: n for n in config.nodes}
        self.links: dict[str, NodeLink] = {}
        self.proxies: dict[str, ProxyLink] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._assigned: dict[str, str] = {}  # node -> pod CIDR handed out by this process
        self._running = False
        for name, transport in transports.items():
            self.add(name, transport)
        for name, transport in (proxies or {}).items():
            self.add_proxy(name, transport)

    # -- membership ----------------------------------------------------------

    def add(self, name: str, transport: Transport, node: NodeConfig | None = None) -> NodeLink:
        """Add a node link; it starts at once when the manager is running."""
        if name in self.links:
            raise ValueError(f"node {name} already has a link")
        node = node or self._configs.get(name) or NodeConfig(name=name, host="")
        link = NodeLink(
            node,
            transport,
            self.registry,
            self,
            timing=self.timing,
            recorder=EventRecorder(self.registry, "kubelet", name),
        )
        self.links[name] = link
        if self._running:
            self._start(link)
        return link

    def add_proxy(self, name: str, transport: Transport) -> ProxyLink:
        """Add a service proxy link; it starts at once when the manager is running."""
        if name in self.proxies:
            raise ValueError(f"service proxy {name} already has a link")
        proxy = ProxyLink(
            name, transport, self.service_rules, self.proxy_network_config(), timing=self.timing
        )
        self.proxies[name] = proxy
        if self._running:
            self._start(proxy)
        return proxy

    def link(self, node: str) -> NodeLink | None:
        """The link to a node, for requests to its agent (logs, exec, stats)."""
        return self.links.get(node)

    async def remove(self, name: str) -> None:
        """Stop a node's link (the Node object stays, as it would for a dead node)."""
        self.links.pop(name, None)
        self.service_rules.forget(name)
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _start(self, link: NodeLink | ProxyLink) -> None:
        key = link.name if isinstance(link, NodeLink) else f"proxy {link.name}"
        self._tasks[key] = asyncio.create_task(link.run(), name=f"{link.what} link {link.name}")

    async def run(self) -> None:
        background: list[asyncio.Task[None]] = []
        if self._own_informers:
            background = [
                asyncio.create_task(i.run(), name=f"node links: {i.rt.plural}")
                for i in self._informers
            ]
        background.append(asyncio.create_task(self.service_rules.run(), name="service rules"))
        background.append(asyncio.create_task(self.ingress_routes.run(), name="ingress routes"))
        try:
            await self.pods.synced.wait()
            await self.nodes.synced.wait()
            for source_informer in self.sources.informers.values():
                await source_informer.synced.wait()
            self._running = True
            for link in self.links.values():
                self._start(link)
            for proxy in self.proxies.values():
                self._start(proxy)
            await asyncio.Event().wait()
        finally:
            self._running = False
            tasks = [*self._tasks.values(), *background]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.clear()

    # -- informer handlers ---------------------------------------------------

    def _on_pod(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if not desired_changed(old, new):
            return
        for pod in (old, new):
            if pod is None:
                continue
            for node in pod_node_name(pod):
                link = self.links.get(node)
                if link is not None:
                    link.pods_changed()

    def _sources_changed(self, node: str) -> None:
        link = self.links.get(node)
        if link is not None:
            link.pods_changed()

    def _on_node(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        before = _network_view(old) if old is not None else None
        after = _network_view(new) if new is not None else None
        if before == after:
            return
        for link in self.links.values():
            if link.info is not None and link.info["networking"]:
                link.network_changed()

    # -- LinkHost ------------------------------------------------------------

    def desired_pods(self, node: str) -> list[Obj]:
        pods = self.pods.by_index(NODE_NAME_INDEX, node)
        pods.sort(key=object_key)
        return pods

    def pod_sources(self, pods: list[Obj]) -> dict[str, list[PodSource]]:
        return self.sources.for_pods(pods)

    def cached_pod(self, key: str) -> Obj | None:
        return self.pods.get(key)

    def allocate_pod_cidr(self, node: str) -> str:
        """The lowest free node-sized block of the cluster's pod CIDR."""
        existing = self.nodes.get(node)
        if existing is not None and (existing.get("spec") or {}).get("podCIDR"):
            return str(existing["spec"]["podCIDR"])
        if node in self._assigned:
            return self._assigned[node]
        configured = self._configs.get(node)
        if configured is not None and configured.pod_cidr:
            self._assigned[node] = configured.pod_cidr
            return configured.pod_cidr
        used = {cidr for cidr, _ in map(_network_view, self.nodes.list()) if cidr}
        used |= set(self._assigned.values())
        used |= {n.pod_cidr for n in self._configs.values() if n.pod_cidr}
        net = self.config.network
        for block in ipaddress.ip_network(net.pod_cidr).subnets(new_prefix=net.node_cidr_mask):
            if str(block) not in used:
                self._assigned[node] = str(block)
                return str(block)
        raise RuntimeError(f"pod CIDR {net.pod_cidr} has no free /{net.node_cidr_mask} for {node}")

    def network_config(
        self, node: str, pod_cidr: str, node_ip: str, routes: bool = True
    ) -> NetworkConfigParams:
        net = self.config.network
        return NetworkConfigParams(
            podCIDR=pod_cidr,
            nodeIP=node_ip,
            clusterCIDR=net.pod_cidr,
            serviceCIDR=net.service_cidr,
            clusterDNS=net.cluster_dns,
            clusterDomain=net.cluster_domain,
            routes=list(_routes(node, self.nodes.list())) if routes else [],
            clusterDNSTTL=net.dns_ttl,
        )

    def proxy_network_config(self) -> Params:
        """A service proxy's `network_config`: the cluster's ranges and DNS, no pod
        CIDR and no routes (it is not a node)."""
        node_only = ("podCIDR", "nodeIP", "routes")
        params = self.network_config("", "", "", routes=False)
        return {k: v for k, v in params.items() if k not in node_only}

    async def serve_services(self, node: str, peer: Peer) -> None:
        await self.service_rules.serve(node, peer, node=True)

    async def serve_ingress(self, node: str, peer: Peer) -> None:
        await self.ingress_routes.serve(node, peer)


def _routes(node: str, nodes: Iterable[Obj]) -> Iterable[Route]:
    for other in sorted(nodes, key=lambda n: str((n.get("metadata") or {}).get("name"))):
        if (other.get("metadata") or {}).get("name") == node:
            continue
        cidr, ip = _network_view(other)
        if cidr and ip:
            yield Route(cidr=cidr, via=ip)
