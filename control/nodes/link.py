"""One node link: the control plane's side of one node agent.

A supervisor task connects through a Transport, says hello, registers the
Node, then keeps two flows going until the connection drops:

- down: the node's full desired pod set (`sync_pods`, coalesced, sent again
  whenever a pod on the node changes in a way the agent cares about, with the
  ConfigMaps and Secrets those pods read: control.nodes.podsources), the
  network state (`network_config`), and after it the service rules (a full
  `services_sync` on every connect, then updates: control.nodes.services;
  an ingress node's route table: control.nodes.ingress);
- up: `pod_status` notifications become pod status writes (and, for a pod
  being deleted whose agent confirms it stopped, the final delete), and
  `node_status` heartbeats become Node status writes, at most one per
  `status_interval` unless something other than the heartbeat time changed,
  each with a renewal of the node's Lease (control.nodes.lease).

A dropped connection is retried with capped exponential backoff
(control.nodes.reconnecting). The link
never marks its Node NotReady: the node lifecycle controller does that when
heartbeats stop arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import socket
from collections.abc import AsyncGenerator
from typing import Any, Protocol, cast

from agent.protocol import (
    AttachParams,
    ConnectionClosed,
    ExecParams,
    ExecResult,
    LogsParams,
    LogsResult,
    NetworkConfigParams,
    NodeInfo,
    Params,
    Peer,
    PodSource,
    RpcError,
    StatsParams,
    StatsResult,
    hello,
)
from agent.protocol.primitives import now_rfc3339
from control.api.registry import Registry
from control.config import NodeConfig
from control.errors import ApiError
from control.machinery.events import EventRecorder
from control.nodes.lease import renew_node_lease
from control.nodes.reconnecting import (
    LinkTiming,
    ReconnectingLink,
    end_session,
    serve_until_one_ends,
)
from control.nodes.remoteexec import RemoteExec
from control.nodes.transport import Transport
from control.objects import Obj
from control.objects.kinds import NODE, POD

log = logging.getLogger(__name__)

HOSTNAME_LABEL = "kubernetes.io/hostname"
OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"
# Pod status writes in flight at once, per link.
_STATUS_WRITERS = 8


class LinkHost(Protocol):
    """What a link needs from the manager that owns it (shared caches)."""

    def desired_pods(self, node: str) -> list[Obj]: ...

    def cached_pod(self, key: str) -> Obj | None: ...

    def pod_sources(self, pods: list[Obj]) -> dict[str, list[PodSource]]:
        """The ConfigMaps and Secrets these pods read (control.nodes.podsources)."""

    def allocate_pod_cidr(self, node: str) -> str: ...

    def network_config(
        self, node: str, pod_cidr: str, node_ip: str, routes: bool = True
    ) -> NetworkConfigParams: ...

    async def serve_services(self, node: str, peer: Peer) -> None:
        """Keep the node's service rules current over `peer` (see
        control.nodes.services), starting with a full sync."""

    async def serve_ingress(self, node: str, peer: Peer) -> None:
        """Keep the node's ingress proxy's route table current over `peer`
        while it is an ingress node (see control.nodes.ingress)."""


class _Gone(Exception):
    """The pod a status was for is gone or was replaced."""


def desired_changed(old: Obj | None, new: Obj | None) -> bool:
    """Whether the agent must hear about this pod change (status changes it made itself need not)."""
    if old is None or new is None:
        return True
    if old.get("spec") != new.get("spec"):
        return True
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return any(
        om.get(k) != nm.get(k)
        for k in ("uid", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations")
    )


class NodeLink(ReconnectingLink):
    def __init__(
        self,
        node: NodeConfig,
        transport: Transport,
        registry: Registry,
        host: LinkHost,
        *,
        timing: LinkTiming | None = None,
        recorder: EventRecorder | None = None,
    ) -> None:
        super().__init__(node.name, "node", timing)
        self.node = node
        self.transport = transport
        self.registry = registry
        self.host = host
        self.recorder = recorder or EventRecorder(registry, "kubelet", node.name)
        self.info: NodeInfo | None = None
        self.pod_cidr = ""
        self.node_ip = _ip_or_empty(node.host)
        self._peer: Peer | None = None
        self._pods_dirty = asyncio.Event()
        self._network_dirty = False
        self._node_status: Params | None = None
        self._node_status_event = asyncio.Event()
        self._node_status_urgent = asyncio.Event()
        self._written_node_status: tuple[Any, ...] | None = None
        self._last_node_write = -1e18
        self._pod_updates: dict[str, Params] = {}
        self._pod_event = asyncio.Event()
        self._killing: set[str] = set()  # uids whose Killing event is recorded
        self._background: set[asyncio.Task[None]] = set()
        # `stream` notifications (followed logs) by stream name; None ends one.
        self._streams: dict[str, asyncio.Queue[Params | None]] = {}
        self._closed_streams: set[str] = set()
        # Interactive exec sessions by id (see control.nodes.remoteexec).
        self._exec_sessions: dict[str, RemoteExec] = {}
        self._exec_ids = itertools.count(1)

    # -- signals from the manager --------------------------------------------

    def pods_changed(self) -> None:
        self._pods_dirty.set()

    def network_changed(self) -> None:
        self._network_dirty = True
        self._pods_dirty.set()

    # -- supervision ---------------------------------------------------------

    async def _session(self) -> None:
        t = self.timing
        if not self.node_ip and self.node.host:
            self.node_ip = await _resolve(self.node.host, t.connect_timeout)
        async with asyncio.timeout(t.connect_timeout):
            channel = await self.transport.open()
        # Only this session's heartbeats count: a stale one must never be written as fresh.
        self._node_status = None
        self._node_status_event.clear()
        self._node_status_urgent.clear()
        self._written_node_status = None
        peer = Peer(
            channel.reader,
            channel.writer,
            name=f"node {self.name}",
            handlers={
                "node_status": self._on_node_status,
                "pod_status": self._on_pod_status,
                "pod_event": self._on_pod_event,
                "stream": self._on_stream,
                "exec_io": self._on_exec_io,
            },
            request_timeout=t.request_timeout,
        )
        tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(peer.run(), name=f"read {self.name}")
        ]
        try:
            async with asyncio.timeout(t.connect_timeout):
                info = await hello(peer, self.name)
            self.info = info
            await self._register(info)
            await peer.request("network_config", self._network_params())
            self._network_dirty = False
            self._peer = peer
            self._pods_dirty.set()
            self._up(channel)
            tasks += [
                asyncio.create_task(self._sync_loop(peer), name=f"sync {self.name}"),
                asyncio.create_task(self._node_status_loop(), name=f"node status {self.name}"),
                asyncio.create_task(self._pod_status_loop(), name=f"pod status {self.name}"),
                asyncio.create_task(
                    self.host.serve_services(self.name, peer), name=f"services {self.name}"
                ),
                asyncio.create_task(
                    self.host.serve_ingress(self.name, peer), name=f"ingress {self.name}"
                ),
            ]
            await serve_until_one_ends(tasks)
        finally:
            self._peer = None
            self._end_streams()
            await end_session(peer, channel, tasks)

    # -- registration --------------------------------------------------------

    async def _register(self, info: NodeInfo) -> None:
        """Create the Node, or bring an existing one up to date. Taints and
        cordoning set by operators are left alone."""
        labels = {
            HOSTNAME_LABEL: self.name,
            OS_LABEL: info["os"] or "linux",
            **({ARCH_LABEL: info["architecture"]} if info["architecture"] else {}),
            **self.node.labels,
        }
        for _ in range(3):
            try:
                current = (await self.registry.get(NODE, None, self.name)).obj
            except ApiError as e:
                if e.code != 404:
                    raise
                cidr = self.host.allocate_pod_cidr(self.name)
                body: Obj = {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": self.name, "labels": labels},
                    "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
                    "status": self._info_status(info),
                }
                if self.node.taints:
                    body["spec"]["taints"] = [t.to_dict() for t in self.node.taints]
                try:
                    await self.registry.create(NODE, None, body)
                except ApiError as e2:
                    if e2.reason == "AlreadyExists":
                        continue
                    raise
                self.pod_cidr = cidr
                log.info("node %s: registered, pod CIDR %s", self.name, cidr)
                return
            cidr = (current.get("spec") or {}).get("podCIDR") or ""

            def update(obj: Obj) -> Obj:
                nonlocal cidr
                meta = obj.setdefault("metadata", {})
                meta["labels"] = {**(meta.get("labels") or {}), **labels}
                spec = obj.setdefault("spec", {})
                if not spec.get("podCIDR"):
                    cidr = self.host.allocate_pod_cidr(self.name)
                    spec["podCIDR"], spec["podCIDRs"] = cidr, [cidr]
                else:
                    cidr = spec["podCIDR"]
                return obj

            await self.registry.patch(NODE, None, self.name, update)

            def status(obj: Obj) -> Obj:
                obj["status"] = {**(obj.get("status") or {}), **self._info_status(info)}
                return obj

            await self.registry.patch(NODE, None, self.name, status, subresource="status")
            self.pod_cidr = cidr
            return
        raise ApiError(409, "Conflict", f"node {self.name}: could not register")

    def _info_status(self, info: NodeInfo) -> Obj:
        addresses = [{"type": "Hostname", "address": info["hostname"] or self.name}]
        if self.node_ip:
            addresses.insert(0, {"type": "InternalIP", "address": self.node_ip})
        runtime = info["containerdVersion"]
        return {
            "addresses": addresses,
            # Every field of Kubernetes' NodeSystemInfo, in its order: clients
            # require them all (kubeProxyVersion is deprecated and empty).
            "nodeInfo": {
                "machineID": info.get("machineID", ""),
                "systemUUID": info.get("systemUUID", ""),
                "bootID": info.get("bootID", ""),
                "kernelVersion": info["kernel"],
                "osImage": info["osImage"],
                "containerRuntimeVersion": f"containerd://{runtime}" if runtime else "hollow://",
                "kubeletVersion": f"pilothouse-agent/{info['agentVersion']}",
                "kubeProxyVersion": "",
                "operatingSystem": info["os"],
                "architecture": info["architecture"],
            },
        }

    def _network_params(self) -> NetworkConfigParams:
        routes = self.info is None or self.info["networking"]
        return self.host.network_config(self.name, self.pod_cidr, self.node_ip, routes)

    # -- down: desired pods --------------------------------------------------

    async def _sync_loop(self, peer: Peer) -> None:
        while True:
            await self._pods_dirty.wait()
            if self.timing.coalesce:
                await asyncio.sleep(self.timing.coalesce)
            self._pods_dirty.clear()
            if self._network_dirty:
                self._network_dirty = False
                await peer.request("network_config", self._network_params())
            pods = self.host.desired_pods(self.name)
            self._announce_kills(pods)
            try:
                await peer.request("sync_pods", {"pods": pods, **self.host.pod_sources(pods)})
            except ValueError as e:  # over the message size limit
                log.error("node %s: cannot send its pods: %s", self.name, e)
            except RpcError as e:
                # The agent refused the set; the connection is fine. Try again later.
                log.warning("node %s: sync_pods failed: %s", self.name, e)
                loop = asyncio.get_running_loop()
                loop.call_later(self.timing.backoff_initial, self._pods_dirty.set)

    def _announce_kills(self, pods: list[Obj]) -> None:
        live: set[str] = set()
        for pod in pods:
            meta = pod.get("metadata") or {}
            uid = str(meta.get("uid"))
            live.add(uid)
            if meta.get("deletionTimestamp") and uid not in self._killing:
                self._killing.add(uid)
                for c in (pod.get("spec") or {}).get("containers") or []:
                    why = f"Stopping container {c.get('name')}"
                    task = asyncio.create_task(self.recorder.record(pod, "Normal", "Killing", why))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
        self._killing &= live

    # -- up: pod status ------------------------------------------------------

    async def _on_pod_status(self, params: Params) -> None:
        uid = params.get("uid")
        if not isinstance(uid, str) or not isinstance(params.get("status"), dict):
            log.warning("node %s: malformed pod_status dropped", self.name)
            return
        self._pod_updates[uid] = params
        self._pod_event.set()

    async def _pod_status_loop(self) -> None:
        while True:
            await self._pod_event.wait()
            self._pod_event.clear()
            batch, self._pod_updates = self._pod_updates, {}
            items = list(batch.values())
            for i in range(0, len(items), _STATUS_WRITERS):
                await asyncio.gather(
                    *(self._apply_pod_status(p) for p in items[i : i + _STATUS_WRITERS])
                )

    async def _apply_pod_status(self, params: Params) -> None:
        ns, name, uid = str(params.get("namespace")), str(params.get("name")), params["uid"]
        cached = self.host.cached_pod(f"{ns}/{name}")
        if cached is None or (cached.get("metadata") or {}).get("uid") != uid:
            return  # deleted or replaced: the agent will hear of it with the next sync
        if (cached.get("spec") or {}).get("nodeName") != self.name:
            return
        reported: Obj = params["status"]
        try:
            if _merge_status(cached.get("status") or {}, reported) != cached.get("status"):

                def build(obj: Obj) -> Obj:
                    if (obj.get("metadata") or {}).get("uid") != uid:
                        raise _Gone
                    obj["status"] = _merge_status(obj.get("status") or {}, reported)
                    return obj

                await self.registry.patch(POD, ns, name, build, subresource="status")
            if params.get("terminated") and (cached.get("metadata") or {}).get("deletionTimestamp"):
                # The agent confirms the pod stopped: finish the graceful delete.
                await self.registry.delete(POD, ns, name, expected_uid=uid, grace_period_seconds=0)
        except _Gone:
            return
        except ApiError as e:
            if e.code in (404, 409):
                return
            log.warning("node %s: status of pod %s/%s not written: %s", self.name, ns, name, e)

    async def _on_pod_event(self, params: Params) -> None:
        """An Event the agent reports about one of its pods (see PodEventParams)."""
        ns, name = str(params.get("namespace")), str(params.get("name"))
        pod = self.host.cached_pod(f"{ns}/{name}")
        if pod is None or (pod.get("metadata") or {}).get("uid") != params.get("uid"):
            return
        type_ = "Warning" if params.get("type") == "Warning" else "Normal"
        reason, message = str(params.get("reason") or ""), str(params.get("message") or "")
        if reason:
            await self.recorder.record(pod, type_, reason, message)

    # -- up: node status -----------------------------------------------------

    async def _on_node_status(self, params: Params) -> None:
        if not isinstance(params.get("conditions"), list):
            log.warning("node %s: malformed node_status dropped", self.name)
            return
        self._node_status = params
        self._node_status_event.set()
        if _status_signature(params) != self._written_node_status:
            self._node_status_urgent.set()

    async def _node_status_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._node_status_event.wait()
            if not self._node_status_urgent.is_set():
                wait = self._last_node_write + self.timing.status_interval - loop.time()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._node_status_urgent.wait()
            self._node_status_event.clear()
            self._node_status_urgent.clear()
            status = self._node_status
            if status is None:
                continue
            await self._write_node_status(status)
            self._last_node_write = loop.time()
            self._written_node_status = _status_signature(status)

    async def _write_node_status(self, params: Params) -> None:
        now = now_rfc3339()
        became: list[str] = []

        def build(obj: Obj) -> Obj:
            status = dict(obj.get("status") or {})
            previous = {c.get("type"): c for c in status.get("conditions") or []}
            reported = {c.get("type") for c in params["conditions"]}
            conditions: list[Obj] = []
            for c in params["conditions"]:
                prev = previous.get(c.get("type")) or {}
                changed = prev.get("status") != c.get("status")
                conditions.append(
                    {
                        "type": c.get("type"),
                        "status": c.get("status"),
                        **({"reason": c["reason"]} if c.get("reason") else {}),
                        **({"message": c["message"]} if c.get("message") else {}),
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now
                        if changed
                        else prev.get("lastTransitionTime", now),
                    }
                )
                if c.get("type") == "Ready" and changed:
                    became.append(str(c.get("status")))
            conditions += [c for t, c in previous.items() if t not in reported]
            status["conditions"] = conditions
            for key in ("capacity", "allocatable"):
                if isinstance(params.get(key), dict):
                    status[key] = params[key]
            if self.info is not None:
                status.update(self._info_status(self.info))
            obj["status"] = status
            return obj

        try:
            kv = await self.registry.patch(NODE, None, self.name, build, subresource="status")
        except ApiError as e:
            if e.code == 404 and self.info is not None:
                # Someone deleted the Node while its agent lives: register it again.
                log.info("node %s: the Node object is gone; registering again", self.name)
                await self._register(self.info)
                self._written_node_status = None
                self._node_status_urgent.set()
                self._node_status_event.set()
            else:
                log.warning("node %s: status not written: %s", self.name, e)
            return
        await renew_node_lease(self.registry, self.name, kv)
        if became:
            ready = became[-1] == "True"
            await self.recorder.record(
                kv.obj,
                "Normal",
                "NodeReady" if ready else "NodeNotReady",
                f"Node {self.name} status is now: {'NodeReady' if ready else 'NodeNotReady'}",
            )

    # -- requests for the console (logs, exec, stats) -------------------------

    async def request(self, method: str, params: Params, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Send a request to the agent; ConnectionClosed when the link is down."""
        peer = self._peer
        if peer is None:
            raise ConnectionClosed(
                f"node {self.name}: not connected ({self.last_error or 'connecting'})"
            )
        return await peer.request(method, params, timeout=timeout)

    async def logs(self, params: LogsParams, timeout: float | None = None) -> LogsResult:  # noqa: ASYNC109
        """A container's log, all at once (`follow` is ignored: see follow_logs)."""
        p = cast(Params, {k: v for k, v in params.items() if k != "follow"})
        return cast(LogsResult, await self.request("logs", p, timeout))

    async def follow_logs(self, params: LogsParams) -> AsyncGenerator[str, None]:
        """A container's log so far (the first chunk, maybe empty, so that
        errors surface before any data), then what it writes, chunk by chunk,
        until the container ends or the link drops. Closing the generator
        stops listening; the agent stops when the container does."""
        peer = self._peer
        result = cast(LogsResult, await self.request("logs", {**params, "follow": True}))
        stream = result.get("stream")
        ended = False  # the agent said eof, or the session is gone
        try:
            yield result.get("data", "")
            if not stream:
                return
            queue = self._streams.setdefault(stream, asyncio.Queue())
            if self._peer is not peer or peer is None:
                queue.put_nowait(None)  # the session that would send it is gone
            while True:
                item = await queue.get()
                if item is None or item.get("eof"):
                    ended = True
                if item is not None and item.get("data"):
                    yield str(item["data"])
                if ended:
                    return
        finally:
            if stream:
                self._streams.pop(stream, None)
                if not ended and self._peer is peer:
                    # Drop what the agent still sends for it, until its eof.
                    self._closed_streams.add(stream)

    async def exec(self, params: ExecParams, timeout: float | None = None) -> ExecResult:  # noqa: ASYNC109
        return cast(ExecResult, await self.request("exec", cast(Params, params), timeout))

    async def exec_session(self, params: ExecParams) -> RemoteExec:
        """Start an interactive exec (`params` says stdin, tty and the first
        terminal size); the caller reads and writes it, then closes it."""
        return await self._open_session("exec", cast(Params, params))

    async def attach_session(self, params: AttachParams) -> RemoteExec:
        """Attach to a container's main process, as an interactive session
        like exec's; it ends when the container does."""
        return await self._open_session("attach", cast(Params, params))

    async def _open_session(self, method: str, params: Params) -> RemoteExec:
        peer = self._peer
        if peer is None:
            raise ConnectionClosed(
                f"node {self.name}: not connected ({self.last_error or 'connecting'})"
            )
        sid = f"{method}-{next(self._exec_ids)}"
        session = RemoteExec(self.name, peer, sid, self._forget_exec)
        self._exec_sessions[sid] = session
        try:
            result = await peer.request(method, {**params, "session": sid})
        except BaseException:
            await session.close()
            raise
        if isinstance(result, dict) and result.get("stdinClose") is False:
            session.can_close_stdin = bool(params.get("tty"))
        return session

    def _forget_exec(self, sid: str) -> None:
        self._exec_sessions.pop(sid, None)

    async def _on_exec_io(self, params: Params) -> None:
        session = self._exec_sessions.get(str(params.get("session") or ""))
        if session is not None:
            session.deliver(params)

    async def stats(self, params: StatsParams | None = None) -> StatsResult:
        return cast(StatsResult, await self.request("stats", cast(Params, params or {})))

    async def _on_stream(self, params: Params) -> None:
        stream = str(params.get("stream") or "")
        if not stream.startswith("logs-"):
            return  # only followed logs stream this way (exec sessions use exec_io)
        if stream in self._closed_streams:
            if params.get("eof"):
                self._closed_streams.discard(stream)
            return
        self._streams.setdefault(stream, asyncio.Queue()).put_nowait(params)

    def _end_streams(self) -> None:
        for queue in self._streams.values():
            queue.put_nowait(None)
        self._closed_streams.clear()
        for session in self._exec_sessions.values():
            session.lost()
        self._exec_sessions.clear()


def _merge_status(current: Obj, reported: Obj) -> Obj:
    """The agent's status, keeping the conditions it does not own (PodScheduled,
    readiness gates) and fields other components set."""
    merged = {**current, **reported}
    ours = {c.get("type") for c in reported.get("conditions") or []}
    kept = [c for c in current.get("conditions") or [] if c.get("type") not in ours]
    if kept or "conditions" in reported:
        merged["conditions"] = [*(reported.get("conditions") or []), *kept]
    return merged


def _status_signature(params: Params) -> tuple[Any, ...]:
    """What makes a heartbeat worth writing at once: anything but its time."""
    conditions = tuple(
        sorted(
            (str(c.get("type")), str(c.get("status")), str(c.get("reason", "")))
            for c in params.get("conditions") or []
            if isinstance(c, dict)
        )
    )
    return conditions, _frozen(params.get("capacity")), _frozen(params.get("allocatable"))


def _frozen(d: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in d.items())) if isinstance(d, dict) else ()


async def _resolve(host: str, timeout: float) -> str:  # noqa: ASYNC109
    """The node's address for pod hostIP and routes; "" when it does not resolve."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as e:
        log.warning("cannot resolve node address %s: %s", host, e)
        return ""
    return str(infos[0][4][0]) if infos else ""


def _ip_or_empty(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return ""
