"""IngressRoutes: the ingress proxies' route table, kept current on every
ingress node's link.

Ingress nodes are the Nodes labelled `pilothouse.io/ingress=true` (the label
may change at run time). Informers on the kinds the table is made of mark it
dirty; after a short pause that gathers a burst (`IngressTiming.coalesce`) the
whole table is computed again (`ingressroutes.route_table`, pure) and, when it
changed, its generation is bumped and every ingress node's link sends it with
`ingress_sync`. A node that loses the label gets an empty table, once. An agent
run without `--ingress` answers METHOD_NOT_FOUND and is left alone for that
session; a failed sync is a Warning Event on the Node and a retry after a
backoff.

After each computation the warnings not seen the last time become Warning
Events on their objects, the Ingresses of this controller's class get
`status.loadBalancer.ingress` = the ingress nodes' IPs, and HTTPRoutes get
their `status.parents` entries for this controller's parents, and this
controller's GatewayClasses and their Gateways their conditions and addresses
(`gatewaystatus.py`): each written
only when it changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.protocol import Peer, RpcError
from agent.protocol.ingress import INGRESS_SYNC, RouteTableWire
from control.api.registry import Registry
from control.errors import ApiError
from control.machinery.events import EventRecorder
from control.machinery.informer import Informer
from control.nodes.gatewaystatus import gateway_class_status, gateway_status
from control.nodes.ingressroutes import (
    CLASS_NAME,
    GATEWAY_CONTROLLER,
    RouteResult,
    RouteWarning,
    route_table,
    serves_ingress,
)
from control.nodes.nodeaddress import internal_ip
from control.nodes.pushfailure import backoff_delay, record_failure, unsupported
from control.objects import Obj
from control.objects.kinds import (
    ENDPOINTSLICE,
    GATEWAY,
    GATEWAYCLASS,
    HTTPROUTE,
    INGRESS,
    INGRESSCLASS,
    SECRET,
    SERVICE,
    ResourceType,
    object_key,
)
from control.objects.networking import DEFAULT_CLASS_ANNOTATION
from control.objects.routes import is_ingress_node

log = logging.getLogger(__name__)

INGRESS_CONTROLLER = "pilothouse.io/ingress-controller"
FAILED_REASON = "FailedIngressRoutes"
COMPONENT = "ingress-controller"
# The kinds the route table is made of, in route_table's argument order.
SOURCES: tuple[ResourceType, ...] = (
    INGRESS,
    INGRESSCLASS,
    GATEWAY,
    HTTPROUTE,
    SERVICE,
    ENDPOINTSLICE,
    SECRET,
    GATEWAYCLASS,
)


@dataclass(frozen=True)
class IngressTiming:
    coalesce: float = 0.1  # seconds to gather a burst of changes into one table
    backoff_initial: float = 1.0  # after a failed sync, then doubling ...
    backoff_max: float = 30.0  # ... up to this


def _ingress_view(node: Obj | None) -> tuple[bool, str]:
    return (is_ingress_node(node), internal_ip(node)) if node is not None else (False, "")


@dataclass
class _Link:
    """One connected node agent's session."""

    node: str
    recorder: EventRecorder
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    acked: int = 0  # the generation its proxy serves (0: none)
    serving: bool = False  # it was sent a non-empty table this session


class IngressRoutes:
    """`IngressRoutes(registry, informer_for, nodes)`; `run()` it, and
    `serve()` each connected node agent. The informers are run by whoever
    made them."""

    def __init__(
        self,
        registry: Registry,
        informer_for: Callable[[ResourceType], Informer],
        nodes: Informer,
        timing: IngressTiming | None = None,
    ) -> None:
        self.registry = registry
        self.timing = timing or IngressTiming()
        self.sources = [informer_for(rt) for rt in SOURCES]
        for informer in self.sources:
            informer.add_handler(self._on_change)
        self.nodes = nodes
        nodes.add_handler(self._on_node)
        self.generation = 0
        self.result: RouteResult | None = None
        self.ready = asyncio.Event()  # the first table is computed
        self._changed = asyncio.Event()
        self._links: dict[str, _Link] = {}
        self._warned: set[RouteWarning] = set()
        self._recorder = EventRecorder(registry, COMPONENT)

    # -- the table -------------------------------------------------------------

    def _on_change(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        self._changed.set()

    def _on_node(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        if _ingress_view(old) != _ingress_view(new):
            self._changed.set()  # Ingress addresses
            for link in self._links.values():
                link.wake.set()

    def table(self) -> RouteTableWire:
        """The current table (empty before the first computation)."""
        if self.result is None:
            return {"generation": 0, "frontends": [], "certificates": []}
        return self.result.table

    def addresses(self) -> list[str]:
        """The IPs of the ingress nodes, sorted."""
        return sorted(
            {ip for n in self.nodes.list() if is_ingress_node(n) and (ip := internal_ip(n))}
        )

    def _compute(self) -> None:
        ingresses, classes, gateways, routes, services, slices, secrets, gw_classes = (
            i.list() for i in self.sources
        )
        result = route_table(
            ingresses,
            classes,
            gateways,
            routes,
            services,
            slices,
            secrets,
            generation=self.generation + 1,
            gateway_classes=gw_classes,
        )
        old = self.table()
        if self.result is None or (old["frontends"], old["certificates"]) != (
            result.table["frontends"],
            result.table["certificates"],
        ):
            self.generation += 1
            self.result = result
            for link in self._links.values():
                link.wake.set()
        else:  # the same table: keep its generation
            result.table = old
            self.result = result

    async def run(self) -> None:
        """Compute the table and keep it current; record warnings, write statuses."""
        for informer in (*self.sources, self.nodes):
            await informer.synced.wait()
        while True:
            self._changed.clear()
            self._compute()
            self.ready.set()
            await self._record_warnings()
            await self._write_statuses()
            await self._changed.wait()
            if self.timing.coalesce:
                await asyncio.sleep(self.timing.coalesce)

    # -- the agents ----------------------------------------------------------

    async def serve(self, node: str, peer: Peer) -> None:
        """Keep one connected node agent's proxy at the latest table while the
        node is an ingress node; until cancelled, or raises when the connection
        fails."""
        link = self._links[node] = _Link(node, EventRecorder(self.registry, COMPONENT, node))
        link.wake.set()
        try:
            await self.ready.wait()
            failures = 0
            while True:
                await link.wake.wait()
                link.wake.clear()
                wanted = is_ingress_node(self.nodes.get(node))
                table = self._due(link, wanted)
                if table is None:
                    continue
                try:
                    result = await peer.request(INGRESS_SYNC, {"table": table})
                except (RpcError, ValueError) as e:  # ValueError: over the message size limit
                    if isinstance(e, RpcError) and unsupported(e):
                        log.debug("%s: the agent runs no ingress proxy: %s", node, e)
                        await asyncio.Event().wait()  # until the session ends
                    failures += 1
                    message = e.message if isinstance(e, RpcError) else str(e)
                    await self._failed(link, message, failures)
                    continue
                failures = 0
                acked = result.get("generation") if isinstance(result, dict) else None
                link.acked = acked if isinstance(acked, int) else table["generation"]
                link.serving = wanted
        finally:
            if self._links.get(node) is link:
                del self._links[node]

    def _due(self, link: _Link, ingress_node: bool) -> RouteTableWire | None:
        """What the link's agent must be sent now, if anything: the table to an
        ingress node that lacks it, an empty one to a node that lost the label."""
        if ingress_node:
            return None if link.serving and link.acked == self.generation else self.table()
        if link.serving:
            return {"generation": self.generation, "frontends": [], "certificates": []}
        return None

    async def _failed(self, link: _Link, message: str, failures: int) -> None:
        t = self.timing
        delay = backoff_delay(t.backoff_initial, t.backoff_max, failures)
        link.serving = True  # whatever it serves now, send it a table again
        link.acked = 0
        await record_failure(
            self.registry, link.recorder, link.node, FAILED_REASON, "Ingress routes", message, delay
        )
        link.wake.set()

    def acked(self, node: str) -> int:
        """The generation a connected node's proxy last confirmed (0: none)."""
        link = self._links.get(node)
        return link.acked if link is not None else 0

    # -- events and statuses ---------------------------------------------------

    def _source(self, kind: str) -> Informer | None:
        for rt, informer in zip(SOURCES, self.sources, strict=True):
            if rt.kind == kind:
                return informer
        return None

    async def _record_warnings(self) -> None:
        assert self.result is not None
        warnings = set(self.result.warnings)
        new, self._warned = warnings - self._warned, warnings
        for w in self.result.warnings:
            informer = self._source(w.kind)
            obj = informer.get(w.key) if informer is not None else None
            if w in new and obj is not None:
                await self._recorder.record(obj, "Warning", w.reason, w.message)

    async def _write_statuses(self) -> None:
        assert self.result is not None
        ingresses, classes = self.sources[0], self.sources[1].list()
        load_balancer: Obj = {"ingress": [{"ip": ip} for ip in self.addresses()]}
        if not load_balancer["ingress"]:
            load_balancer = {}
        for ingress in ingresses.list():
            if not serves_ingress(ingress, classes, CLASS_NAME):
                continue
            current = (ingress.get("status") or {}).get("loadBalancer") or {}
            if current != load_balancer:
                await self._write_status(INGRESS, ingress, {"loadBalancer": load_balancer})
        parents = self.result.route_parents
        for route in self.sources[3].list():
            current = (route.get("status") or {}).get("parents") or []
            others = [p for p in current if p.get("controllerName") != GATEWAY_CONTROLLER]
            wanted = others + parents.get(object_key(route), [])
            if current != wanted:
                await self._write_status(HTTPROUTE, route, {"parents": wanted})
        ours = set()
        for gateway_class in self.sources[7].list():
            if (gateway_class.get("spec") or {}).get("controllerName") != GATEWAY_CONTROLLER:
                continue
            ours.add((gateway_class.get("metadata") or {}).get("name"))
            status = gateway_class_status(gateway_class)
            if status is not None:
                await self._write_status(GATEWAYCLASS, gateway_class, status)
        for gateway in self.sources[2].list():
            if (gateway.get("spec") or {}).get("gatewayClassName") in ours:
                status = gateway_status(gateway, self.addresses())
                if status is not None:
                    await self._write_status(GATEWAY, gateway, status)

    async def _write_status(self, rt: ResourceType, obj: Obj, fields: Obj) -> None:
        """Set `fields` in the object's status."""
        meta = obj.get("metadata") or {}

        def build(current: Obj) -> Obj:
            current["status"] = {**(current.get("status") or {}), **fields}
            return current

        try:
            await self.registry.patch(
                rt, meta.get("namespace"), str(meta.get("name")), build, subresource="status"
            )
        except ApiError as e:
            if e.code != 404:
                log.warning("%s %s: status not written: %s", rt.kind, object_key(obj), e)


async def ensure_default_classes(registry: Registry) -> None:
    """Create the IngressClass and GatewayClass "pilothouse" when missing."""
    defaults: tuple[tuple[ResourceType, Obj], ...] = (
        (
            INGRESSCLASS,
            {
                "apiVersion": INGRESSCLASS.api_version,
                "kind": INGRESSCLASS.kind,
                "metadata": {
                    "name": CLASS_NAME,
                    "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
                },
                "spec": {"controller": INGRESS_CONTROLLER},
            },
        ),
        (
            GATEWAYCLASS,
            {
                "apiVersion": GATEWAYCLASS.api_version,
                "kind": GATEWAYCLASS.kind,
                "metadata": {"name": CLASS_NAME},
                "spec": {"controllerName": GATEWAY_CONTROLLER},
            },
        ),
    )
    for rt, body in defaults:
        try:
            await registry.get(rt, None, CLASS_NAME)
        except ApiError as e:
            if e.code != 404:
                raise
        else:
            continue
        try:
            await registry.create(rt, None, body)
        except ApiError as e:
            if e.reason != "AlreadyExists":
                raise
