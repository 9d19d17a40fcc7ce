"""ServiceRules: the service table every agent routes by, kept current on
every connected link.

Service and EndpointSlice informers mark the services that changed; after a
short pause that gathers a burst (`RulesTiming.coalesce`) only those services'
part of the table is computed again (`servicetable.service_table`) and
compared with what the agents have (`servicetable.diff`). Each change bumps the
table's generation. Each link's sender then brings its agent up to the latest
generation, one request at a time: `services_update` with the changes since
the generation the agent acknowledged, or a full `services_sync` after a
(re)connect, when the agent is out of sync, when the changes it missed are no
longer kept, or after a failure (then after a backoff, with a Warning Event
`FailedServiceRules` on the Node).

Per node, the acknowledged and latest generations go to the Node annotation
`pilothouse.io/service-rules` ("<acked>/<latest>"), at most once per
`annotate_interval` per node; a node that is behind gets that long to catch up
before its annotation says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agent.protocol import SERVICES_OUT_OF_SYNC, Peer, RpcError
from agent.protocol.services import SERVICES_SYNC, SERVICES_UPDATE
from control.api.registry import Registry
from control.errors import ApiError
from control.machinery.events import EventRecorder
from control.machinery.informer import Informer
from control.nodes.pushfailure import backoff_delay, record_failure, unsupported
from control.nodes.servicetable import (
    Change,
    EndpointsWire,
    ServiceTableWire,
    ServiceWire,
    diff,
    service_table,
)
from control.objects import Obj
from control.objects.kinds import NODE
from control.objects.servicestatus import SERVICE_RULES_ANNOTATION, rules_value, slice_service

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)

FAILED_REASON = "FailedServiceRules"
COMPONENT = "service-proxy"
SERVICE_NAME_INDEX = "service-name"  # slices by `namespace/service`
_ANNOTATION_WRITERS = 16  # Node annotation writes in flight at once


@dataclass(frozen=True)
class RulesTiming:
    coalesce: float = 0.05  # seconds to gather a burst of changes into one generation
    backoff_initial: float = 1.0  # after a failed request, then doubling ...
    backoff_max: float = 30.0  # ... up to this
    annotate_interval: float = 1.0  # at most one annotation write per node per interval
    history: int = 256  # generations whose changes are kept for incremental updates


def _slice_service_index(eps: Obj) -> list[str]:
    service = slice_service(eps)
    return [service] if service else []


def _key(wire: ServiceWire | EndpointsWire) -> Key:
    return wire["namespace"], wire["name"]


@dataclass
class _Agent:
    """One agent the rules go to: a node's, or a service proxy's."""

    name: str
    node: bool  # it has a Node object, to annotate and to record events on
    recorder: EventRecorder | None
    acked: int = 0  # the generation it last confirmed (0: none yet)
    base: int | None = None  # what its next update builds on; None: send a full sync
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    annotated: str = ""  # the annotation value last written
    keeps_rules: bool = True  # False: its agent answered that it keeps none
    written_at: float = float("-inf")


class ServiceRules:
    """`ServiceRules(registry, services, slices)`; `run()` it, and `serve()`
    each connected agent. The informers are run by whoever made them."""

    def __init__(
        self,
        registry: Registry,
        services: Informer,
        slices: Informer,
        timing: RulesTiming | None = None,
    ) -> None:
        self.registry = registry
        self.timing = timing or RulesTiming()
        self.services = services
        self.slices = slices
        slices.add_index(SERVICE_NAME_INDEX, _slice_service_index)
        services.add_handler(self._on_service)
        slices.add_handler(self._on_slice)
        self.generation = 0
        self.ready = asyncio.Event()  # the first table is computed
        self._services: dict[Key, ServiceWire] = {}
        self._endpoints: dict[Key, EndpointsWire] = {}
        self._history: deque[tuple[int, list[Change]]] = deque(maxlen=self.timing.history)
        self._table: ServiceTableWire | None = None  # of this generation, once asked for
        self._dirty: set[Key] = set()
        self._changed = asyncio.Event()
        # By (is a node, name): a service proxy may share a node's name.
        self._agents: dict[tuple[bool, str], _Agent] = {}
        self._bumped_at = float("-inf")
        self._to_annotate: set[str] = set()
        self._annotate = asyncio.Event()

    # -- the table -------------------------------------------------------------

    def _on_service(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        meta = (new or old or {}).get("metadata") or {}
        self._dirty.add((str(meta.get("namespace") or ""), str(meta.get("name") or "")))
        self._changed.set()

    def _on_slice(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for eps in (old, new):
            service = slice_service(eps) if eps is not None else None
            if service is not None:
                namespace, _, name = service.partition("/")
                self._dirty.add((namespace, name))
        self._changed.set()

    def _recompute(self) -> list[Change]:
        """The changes for the services marked since the last call, made to the table."""
        keys, self._dirty = self._dirty, set()
        services = [
            svc for ns, name in keys if (svc := self.services.get(f"{ns}/{name}")) is not None
        ]
        slices = [
            eps
            for ns, name in keys
            for eps in self.slices.by_index(SERVICE_NAME_INDEX, f"{ns}/{name}")
        ]
        new = service_table(services, slices)
        old: ServiceTableWire = {
            "services": [self._services[k] for k in keys if k in self._services],
            "endpoints": [self._endpoints[k] for k in keys if k in self._endpoints],
        }
        changes = diff(old, new)
        if changes:
            for k in keys:
                self._services.pop(k, None)
                self._endpoints.pop(k, None)
            self._services.update((_key(w), w) for w in new["services"])
            self._endpoints.update((_key(e), e) for e in new["endpoints"])
        return changes

    def _bump(self, changes: list[Change]) -> None:
        self.generation += 1
        self._history.append((self.generation, changes))
        self._table = None
        self._bumped_at = asyncio.get_running_loop().time()
        for agent in self._agents.values():
            agent.wake.set()
            if agent.node:
                self._to_annotate.add(agent.name)
        self._annotate.set()

    def table(self) -> ServiceTableWire:
        """The whole table at the current generation."""
        if self._table is None:
            self._table = {
                "services": [self._services[k] for k in sorted(self._services)],
                "endpoints": [self._endpoints[k] for k in sorted(self._endpoints)],
            }
        return self._table

    def changes_since(self, base: int) -> list[Change] | None:
        """The changes from generation `base` to the current one; None when they
        are no longer all kept, or a full table would be smaller."""
        if base == self.generation:
            return []
        if base > self.generation or not self._history or base < self._history[0][0] - 1:
            return None
        parts: list[list[Change]] = []
        for generation, changes in reversed(self._history):
            if generation <= base:
                break
            parts.append(changes)
        out = [c for part in reversed(parts) for c in part]
        return None if len(out) > len(self._services) + len(self._endpoints) else out

    async def run(self) -> None:
        """Compute the table and keep it current; write the Node annotations."""
        annotator = asyncio.create_task(self._annotate_loop(), name="service rules: annotations")
        try:
            await self.services.synced.wait()
            await self.slices.synced.wait()
            self._bump(self._recompute())  # generation 1, even for an empty table
            self.ready.set()
            while True:
                await self._changed.wait()
                if self.timing.coalesce:
                    await asyncio.sleep(self.timing.coalesce)
                self._changed.clear()
                changes = self._recompute()
                if changes:
                    self._bump(changes)
        finally:
            annotator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await annotator

    # -- the agents ----------------------------------------------------------

    async def serve(self, name: str, peer: Peer, *, node: bool) -> None:
        """Keep one connected agent's rules at the latest generation, starting
        with a full sync; until cancelled, or raises when the connection fails."""
        agent = self._agents.get((node, name))
        if agent is None:
            recorder = EventRecorder(self.registry, COMPONENT, name) if node else None
            agent = self._agents[node, name] = _Agent(name, node, recorder)
        agent.base = None
        agent.keeps_rules = True
        agent.wake.set()
        failures = 0
        try:
            await self.ready.wait()
            while True:
                await agent.wake.wait()
                agent.wake.clear()
                generation = self.generation
                if agent.base == generation:
                    continue
                try:
                    result = await self._send(peer, agent, generation)
                except RpcError as e:
                    if e.code == SERVICES_OUT_OF_SYNC and agent.base is not None:
                        log.info("%s: service rules out of sync (%s); full sync", name, e.message)
                        agent.base = None
                        agent.wake.set()
                        continue
                    if unsupported(e):
                        log.debug("%s: the agent keeps no service rules: %s", name, e.message)
                        agent.keeps_rules = False  # nothing to annotate
                        await asyncio.Event().wait()  # until the session ends
                    failures += 1
                    await self._failed(agent, e.message, failures)
                    continue
                except ValueError as e:  # the table is over the message size limit
                    failures += 1
                    await self._failed(agent, str(e), failures)
                    continue
                failures = 0
                acked = result.get("generation") if isinstance(result, dict) else None
                agent.acked = agent.base = acked if isinstance(acked, int) else generation
                if agent.node:
                    self._to_annotate.add(name)
                    self._annotate.set()
        finally:
            agent.base = None

    async def _send(self, peer: Peer, agent: _Agent, generation: int) -> Any:
        changes = None if agent.base is None else self.changes_since(agent.base)
        if agent.base is None or changes is None:
            return await peer.request(
                SERVICES_SYNC, {"generation": generation, "table": self.table()}
            )
        return await peer.request(
            SERVICES_UPDATE, {"generation": generation, "base": agent.base, "changes": changes}
        )

    async def _failed(self, agent: _Agent, message: str, failures: int) -> None:
        """Record the failure, wait out the backoff, then send a full sync."""
        t = self.timing
        delay = backoff_delay(t.backoff_initial, t.backoff_max, failures)
        agent.base = None
        await record_failure(
            self.registry,
            agent.recorder,
            agent.name,
            FAILED_REASON,
            "Service rules",
            message,
            delay,
        )
        agent.wake.set()

    def forget(self, name: str, *, node: bool = True) -> None:
        """A link is gone for good: stop tracking its agent."""
        self._agents.pop((node, name), None)
        if node:
            self._to_annotate.discard(name)

    def acked(self, name: str, *, node: bool = True) -> int:
        """The generation an agent (a node's, or a service proxy's) last confirmed (0: none)."""
        agent = self._agents.get((node, name))
        return agent.acked if agent is not None else 0

    # -- Node annotations ----------------------------------------------------

    async def _annotate_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.timing.annotate_interval
        wait: float | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._annotate.wait()
            self._annotate.clear()
            now, wait = loop.time(), None
            writes: list[tuple[_Agent, str]] = []
            for name in list(self._to_annotate):
                agent = self._agents.get((True, name))
                value = rules_value(agent.acked, self.generation) if agent else ""
                if agent is None or not agent.keeps_rules or value == agent.annotated:
                    self._to_annotate.discard(name)
                    continue
                due = agent.written_at + interval
                if agent.acked != self.generation:
                    due = max(due, self._bumped_at + interval)  # a moment to catch up
                if due <= now:
                    writes.append((agent, value))
                    self._to_annotate.discard(name)
                else:
                    wait = min(wait, due - now) if wait is not None else due - now
            for i in range(0, len(writes), _ANNOTATION_WRITERS):
                batch = writes[i : i + _ANNOTATION_WRITERS]
                await asyncio.gather(*(self._write_annotation(a, v) for a, v in batch))
            # Many acknowledgements arrive together: look again after a short pause.
            await asyncio.sleep(min(0.1, interval))

    async def _write_annotation(self, agent: _Agent, value: str) -> None:
        def build(obj: Obj) -> Obj:
            meta = obj.setdefault("metadata", {})
            meta["annotations"] = {
                **(meta.get("annotations") or {}),
                SERVICE_RULES_ANNOTATION: value,
            }
            return obj

        agent.written_at = asyncio.get_running_loop().time()
        try:
            await self.registry.patch(NODE, None, agent.name, build)
        except ApiError as e:
            if e.code != 404:  # no Node (yet): nothing to annotate
                log.warning("node %s: service rules annotation not written: %s", agent.name, e)
                self._to_annotate.add(agent.name)
            return
        agent.annotated = value
