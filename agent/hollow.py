"""A hollow node agent: the real protocol, no containers.

It keeps the desired pods in memory and reports each one Running and Ready at
once, with an IP from the node's pod CIDR, and sends node heartbeats. Scale
tests and benchmarks run thousands of these in one process; `python3 -m
agent.hollow` serves one over stdin and stdout, as an SSH-started agent would.

Failures can be simulated: stop heartbeating, report the node not ready, or
make a pod not ready.

`logs`, `exec` and `stats` answer with deterministic synthetic data, so that
the control side of those requests can be tested without containers: a
container's log is `HOLLOW_LOG_LINES` lines "<pod>/<container> line <i>"
(following adds `HOLLOW_FOLLOW_LINES` more, then ends); exec runs a tiny
fake shell (`echo`, `true`, `false`, `exit N`; anything else exits 127); stats
report `HOLLOW_CPU_NANO` and `HOLLOW_MEMORY` per container.

`services_sync` and `services_update` change the node's service table
(`services.table`, for tests to inspect) and are acknowledged at once: no
rules are loaded. `ingress_sync` keeps the route table (`ingress_table`) and
acknowledges its generation at once; `ingress_stats` has no routes.

Interactive exec sessions (HollowShell) run that fake shell too: `cat` copies
stdin to stdout; a shell (`sh`, `bash`, ...) runs each line of stdin as a
command (plus `stty size`, which prints the last terminal size), echoing the
line first on a tty; both exit at end of input (code 0) or at `exit N`; any
other command runs at once and exits with its code. An attach (HollowAttach)
finds a main process that writes `HOLLOW_FOLLOW_LINES` lines
"<pod>/<container> attached line <i>", then copies stdin to stdout until the
control plane hangs up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.cri import api_pb2 as pb
from agent.images import ImageReceiver
from agent.ingress.routetable import RouteTable, RouteTableError, parse_route_table
from agent.network.servicesync import ServiceSync
from agent.nodestatus import architecture, hollow_identity, node_conditions
from agent.pods.params import attach_session, container_name, desired_pods, exec_command
from agent.pods.sessions import Sessions
from agent.pods.sources import Sources, first_missing
from agent.pods.status import Observed, PodStatusBuilder, gone_status, ns_to_s
from agent.protocol import (
    AGENT_VERSION,
    NOT_FOUND,
    PROTOCOL_VERSION,
    ExecResult,
    ExecSessionResult,
    InvalidParams,
    LogsResult,
    NodeCondition,
    NodeInfo,
    NodeStatusParams,
    Params,
    Peer,
    PodStatusParams,
    Reader,
    RpcError,
    StatsResult,
    SyncPodsResult,
    Writer,
    check_hello,
    image_archive_names,
)
from agent.protocol.execio import CHANNEL_ERROR, CHANNEL_STDERR, CHANNEL_STDOUT, exec_status
from agent.protocol.ingress import (
    INGRESS_STATS,
    INGRESS_SYNC,
    IngressStatsResult,
    IngressSyncResult,
)
from agent.protocol.primitives import format_rfc3339, now_rfc3339, quantity_value
from agent.stdio import stdio

log = logging.getLogger(__name__)

Obj = dict[str, Any]
HOLLOW_LOG_LINES = 5
HOLLOW_FOLLOW_LINES = 3
HOLLOW_LOG_TIME = "2026-01-01T00:00:00.000000000Z"
HOLLOW_CPU_NANO = 1_000_000  # 1m per container
HOLLOW_MEMORY = 16 * 1024 * 1024  # 16Mi per container


def _fake_command(argv: list[str]) -> ExecResult:
    """The hollow node's one-line shell."""
    if argv[0] == "echo":
        return ExecResult(exitCode=0, stdout=" ".join(argv[1:]) + "\n", stderr="")
    if argv[0] == "true":
        return ExecResult(exitCode=0, stdout="", stderr="")
    if argv[0] == "false":
        return ExecResult(exitCode=1, stdout="", stderr="")
    if argv[0] == "exit" and len(argv) == 2 and argv[1].isdigit():
        return ExecResult(exitCode=int(argv[1]), stdout="", stderr="")
    return ExecResult(exitCode=127, stdout="", stderr=f"{argv[0]}: not found\n")


SHELLS = {"sh", "bash", "ash", "dash", "zsh", "/bin/sh", "/bin/bash"}


class HollowShell:
    """An interactive exec on a hollow node, as a session Backend (see the
    module docstring for what it does)."""

    def __init__(self, argv: list[str], tty: bool, cols: int, rows: int) -> None:
        self.mode = "cat" if argv[0] == "cat" else "shell" if argv[0] in SHELLS else "once"
        self.tty = tty
        self.size = (cols, rows)
        self._line = b""
        self._out: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._done = False
        if self.mode == "once":
            self._run(argv)

    def _emit(self, channel: int, data: bytes) -> None:
        if data and not self._done:
            if self.tty and channel == CHANNEL_STDERR:
                channel = CHANNEL_STDOUT  # a terminal merges them
            self._out.put_nowait((channel, data.replace(b"\n", b"\r\n") if self.tty else data))

    def _exit(self, code: int) -> None:
        if not self._done:
            self._out.put_nowait((CHANNEL_ERROR, json.dumps(exec_status(code)).encode()))
            self._done = True
            self._out.put_nowait(None)

    def _run(self, argv: list[str]) -> None:
        if argv == ["stty", "size"]:
            self._emit(CHANNEL_STDOUT, f"{self.size[1]} {self.size[0]}\n".encode())
            return
        r = _fake_command(argv)
        self._emit(CHANNEL_STDOUT, r["stdout"].encode())
        self._emit(CHANNEL_STDERR, r["stderr"].encode())
        if self.mode == "once" or argv[0] == "exit":
            self._exit(r["exitCode"])

    async def send(self, channel: int, data: bytes) -> None:
        if self._done:
            return
        if self.mode == "cat":
            self._emit(CHANNEL_STDOUT, data)
            return
        if self.mode != "shell":
            return
        self._line += data.replace(b"\r", b"\n")
        while b"\n" in self._line and not self._done:
            line, _, self._line = self._line.partition(b"\n")
            if self.tty:
                self._emit(CHANNEL_STDOUT, line + b"\n")
            argv = line.decode(errors="replace").split()
            if argv:
                self._run(argv)

    async def resize(self, cols: int, rows: int) -> None:
        self.size = (cols, rows)

    async def close_stdin(self) -> bool:
        self._exit(0)
        return True

    async def recv(self) -> tuple[int, bytes] | None:
        return await self._out.get()

    async def close(self) -> None:
        self._done = True
        self._out.put_nowait(None)


class HollowAttach(HollowShell):
    """An attach on a hollow node (see the module docstring)."""

    def __init__(self, prefix: str, tty: bool, cols: int, rows: int) -> None:
        super().__init__(["cat"], tty, cols, rows)
        for i in range(1, HOLLOW_FOLLOW_LINES + 1):
            self._emit(CHANNEL_STDOUT, f"{prefix} attached line {i}\n".encode())

    async def close_stdin(self) -> bool:
        return True  # the main process's stdin stays open (no stdinOnce)


def _key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


@dataclass
class _Readiness:
    """What a hollow pod's probes say, for all its containers alike."""

    ready: bool = True
    started: bool = True


@dataclass
class _Pod:
    obj: Obj
    ip: str
    observed: Observed  # what the pod runs, as a runtime would show it
    status: PodStatusBuilder
    readiness: _Readiness
    probes: dict[str, _Readiness]  # by container id: the running containers
    reported: Obj = field(default_factory=dict)  # the last status sent


def _image_id(image: str) -> str:
    return "hollow://sha256:" + hashlib.sha256(image.encode()).hexdigest()


def _container(
    obs: Observed, uid: str, c: Obj, state: pb.ContainerState, started: int, finished: int
) -> None:
    cid = f"{uid}/{c['name']}"
    obs.containers[c["name"]] = [
        pb.Container(
            id=cid,
            pod_sandbox_id=uid,
            state=state,
            metadata=pb.ContainerMetadata(name=c["name"]),
            image_ref=_image_id(str(c.get("image", ""))),
        )
    ]
    obs.statuses[cid] = pb.ContainerStatus(
        id=cid,
        state=state,
        started_at=started,
        finished_at=finished,
        exit_code=0,
    )


def _running(obj: Obj, ip: str, started: int) -> Observed:
    """What a hollow node runs for a pod from `started` (nanoseconds) on: a ready
    sandbox, every container running, the init containers done."""
    uid = str(obj["metadata"]["uid"])
    spec = obj.get("spec") or {}
    sandbox = pb.PodSandbox(id=uid, state=pb.SANDBOX_READY, created_at=started)
    obs = Observed(sandbox=sandbox, sandboxes=[sandbox], pod_ip=ip)
    for c in spec.get("initContainers") or []:
        _container(obs, uid, c, pb.CONTAINER_EXITED, started, started)
    for c in spec.get("containers") or []:
        _container(obs, uid, c, pb.CONTAINER_RUNNING, started, 0)
    return obs


def _stopped(running: Observed) -> Observed:
    """What a stopped hollow pod leaves: its containers, exited with 0, no sandbox."""
    now = time.time_ns()
    obs = Observed()
    for name, (c, *_) in running.containers.items():
        st = running.statuses[c.id]
        obs.containers[name] = [
            pb.Container(
                id=c.id,
                pod_sandbox_id=c.pod_sandbox_id,
                state=pb.CONTAINER_EXITED,
                metadata=c.metadata,
                image_ref=c.image_ref,
            )
        ]
        obs.statuses[c.id] = pb.ContainerStatus(
            id=c.id,
            state=pb.CONTAINER_EXITED,
            started_at=st.started_at,
            finished_at=st.finished_at or now,
            exit_code=0,
        )
    return obs


class HollowAgent:
    """One hollow node. `serve()` handles one connection; the pods it runs
    outlive the connection, as containers outlive a real agent."""

    def __init__(
        self,
        name: str,
        *,
        cpu: str = "4",
        memory: str = "8Gi",
        pods: int = 110,
        heartbeat_interval: float = 10.0,
        pod_cidr: str | None = None,
        node_ip: str | None = None,
    ) -> None:
        self.name = name
        self.identity = hollow_identity(name)
        self.capacity = {"cpu": cpu, "memory": memory, "pods": str(pods)}
        self.heartbeat_interval = heartbeat_interval
        self.pod_cidr = pod_cidr
        self.node_ip = node_ip or ""
        # Failure simulation.
        self.heartbeating = True
        self.node_ready = True
        # Whether a pod reports ready when it starts (None: every pod does).
        self.start_ready: Callable[[Obj], bool] | None = None
        self.pods: dict[str, _Pod] = {}  # uid -> pod
        self.sources = Sources()  # the ConfigMaps and Secrets the last sync_pods brought
        self._free_ips: list[str] = []
        self._used_ips: set[str] = set()
        self._next_host = 2  # .1 is the bridge
        self._peer: Peer | None = None
        self._streams = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.sessions: Sessions | None = None  # this connection's exec sessions
        self.images: list[str] = []  # names imported with `image_import_*`, in order
        self.image_dir: Path | None = None  # where uploads land (None: the system's temp dir)
        self.services = ServiceSync()  # the table the control plane sent; no rules
        self.ingress_table: RouteTable | None = None  # the route table sent; no proxy

    # -- failure simulation --------------------------------------------------

    async def set_pod_ready(self, namespace: str, name: str, ready: bool) -> None:
        """Report a pod's containers (not) ready, as a failing readiness probe would."""
        for pod in self.pods.values():
            if _key(pod.obj) == f"{namespace}/{name}" and pod.readiness.ready != ready:
                pod.readiness.ready = ready
                await self._report(pod)

    def running(self) -> list[str]:
        """`namespace/name` of the pods this node runs."""
        return sorted(_key(p.obj) for p in self.pods.values())

    # -- serving -------------------------------------------------------------

    async def serve(self, reader: Reader, writer: Writer) -> None:
        """Speak the protocol over one connection until it closes."""
        peer = Peer(reader, writer, name=f"hollow {self.name}")
        helloed = asyncio.Event()

        async def on_hello(params: Params) -> NodeInfo:
            info = self._hello(params)
            helloed.set()
            return info

        peer.on("hello", on_hello)
        peer.on("network_config", self._network_config)
        peer.on("sync_pods", self._sync_pods)
        peer.on("stats", self._stats)
        peer.on("logs", self._logs)
        peer.on("exec", self._exec)
        peer.on("attach", self._attach)
        peer.on(INGRESS_SYNC, self._ingress_sync)
        peer.on(INGRESS_STATS, self._ingress_stats)
        sessions = Sessions(peer.notify)
        peer.on("exec_io", sessions.on_io)
        self.sessions = sessions
        receiver = ImageReceiver(self._import_image, self.image_dir)
        for method, handler in (receiver.handlers() | self.services.handlers()).items():
            peer.on(method, handler)
        self._peer = peer
        self.connections += 1
        for pod in self.pods.values():
            pod.reported = {}  # a new control plane connection hears everything again

        async def heartbeats() -> None:
            await helloed.wait()
            while True:
                if self.heartbeating:
                    await self.send_heartbeat()
                await asyncio.sleep(self.heartbeat_interval)

        try:
            await peer.run_beside(heartbeats())
        finally:
            peer.close()
            await sessions.close_all()
            receiver.close()
            if self._peer is peer:
                self._peer = None

    async def send_heartbeat(self) -> None:
        peer = self._peer
        if peer is None:
            return
        ready: NodeCondition = (
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "hollow agent is posting ready status",
            }
            if self.node_ready
            else {
                "type": "Ready",
                "status": "False",
                "reason": "KubeletNotReady",
                "message": "hollow agent reports not ready",
            }
        )
        status = NodeStatusParams(
            conditions=node_conditions(ready),
            capacity=dict(self.capacity),
            allocatable=dict(self.capacity),
            usage={"cpu": "0", "memory": "0", "pods": str(len(self.pods))},
        )
        with contextlib.suppress(ConnectionError):
            await peer.notify("node_status", status)

    # -- handlers ------------------------------------------------------------

    def _import_image(self, archive: Path) -> list[str]:
        """A hollow import: the archive was checked; record the names it carries."""
        names = image_archive_names(archive)[1]
        self.images += [n for n in names if n not in self.images]
        return names

    def _hello(self, params: Params) -> NodeInfo:
        check_hello(params)
        return NodeInfo(
            hostname=self.name,
            os="linux",
            osImage="pilothouse hollow node",
            kernel=platform.release(),
            architecture=architecture(),
            cpus=int(float(self.capacity["cpu"])),
            memoryBytes=quantity_value(self.capacity["memory"]),
            containerdVersion="",
            agentVersion=f"{AGENT_VERSION}-hollow",
            protocolVersion=PROTOCOL_VERSION,
            networking=False,
            machineID=self.identity.machine_id,
            systemUUID=self.identity.system_uuid,
            bootID=self.identity.boot_id,
        )

    async def _network_config(self, params: Params) -> dict[str, Any]:
        cidr = params.get("podCIDR")
        if cidr and cidr != self.pod_cidr:
            if not isinstance(cidr, str):  # ip_network would take a number as an address
                raise InvalidParams(f"podCIDR: must be a string, not {cidr!r}")
            try:
                ipaddress.ip_network(cidr)
            except ValueError as e:
                raise InvalidParams(f"podCIDR: {e}") from None
            if self.pod_cidr is not None and self.pods:
                log.warning("%s: pod CIDR changed from %s to %s", self.name, self.pod_cidr, cidr)
            self.pod_cidr = cidr
            self._free_ips.clear()
            self._next_host = 2
        self.node_ip = str(params.get("nodeIP") or self.node_ip)
        return {}

    async def _ingress_sync(self, params: Params) -> IngressSyncResult:
        try:
            self.ingress_table = parse_route_table(params.get("table"))
        except RouteTableError as e:
            raise InvalidParams(str(e)) from None
        return IngressSyncResult(generation=self.ingress_table.generation)

    async def _ingress_stats(self, params: Params) -> IngressStatsResult:
        return IngressStatsResult(routes={})

    async def _sync_pods(self, params: Params) -> SyncPodsResult:
        desired = desired_pods(params)
        sources = self.sources = Sources.from_params(params)
        for uid in [u for u in self.pods if u not in desired]:
            await self._stop(uid)
        for uid, obj in desired.items():
            if (obj.get("metadata") or {}).get("deletionTimestamp"):
                if uid in self.pods:
                    await self._stop(uid)
                else:
                    # Nothing runs for it here (a restart, or never started): confirm at once.
                    await self._notify_pod(gone_status(obj, self.node_ip))
                continue
            pod = self.pods.get(uid)
            if pod is None:
                if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    continue  # finished for good: nothing to start again
                missing = first_missing(obj, sources)
                if missing is not None:
                    await self._hold(obj, missing)  # started by a later sync, once it exists
                    continue
                pod = self._start(obj)
                self.pods[uid] = pod
            else:
                pod.obj = obj
            await self._report(pod)
        return SyncPodsResult(pods=len(self.pods))

    async def _stats(self, params: Params) -> StatsResult:
        wanted = params.get("pods")
        pods = [
            (uid, p)
            for uid, p in self.pods.items()
            if not isinstance(wanted, list) or uid in wanted
        ]
        containers = sum(
            len(p.obj.get("spec", {}).get("containers", [])) for p in self.pods.values()
        )
        return StatsResult(
            node={
                "cpuNanoCores": HOLLOW_CPU_NANO * containers,
                "memoryWorkingSetBytes": HOLLOW_MEMORY * containers,
            },
            pods=[
                {
                    "namespace": str(p.obj["metadata"].get("namespace")),
                    "name": str(p.obj["metadata"].get("name")),
                    "uid": uid,
                    "containers": [
                        {
                            "name": c["name"],
                            "cpuNanoCores": HOLLOW_CPU_NANO,
                            "memoryWorkingSetBytes": HOLLOW_MEMORY,
                        }
                        for c in p.obj.get("spec", {}).get("containers", [])
                    ],
                }
                for uid, p in pods
            ],
        )

    def _find(self, params: Params) -> tuple[_Pod, str]:
        """The pod and container a logs or exec request names, as the real agent checks them."""
        key = f"{params.get('namespace')}/{params.get('name')}"
        uid = params.get("uid")
        pod = next(
            (p for u, p in self.pods.items() if _key(p.obj) == key and (not uid or u == uid)),
            None,
        )
        if pod is None:
            raise RpcError(NOT_FOUND, f"pod {key} is not running on node {self.name}")
        return pod, container_name(pod.obj, params.get("container"))

    async def _logs(self, params: Params) -> LogsResult:
        _pod, container = self._find(params)
        if params.get("previous"):
            raise RpcError(
                NOT_FOUND,
                f'previous terminated container "{container}" in pod "{params.get("name")}" not found',
            )
        ts = bool(params.get("timestamps"))
        prefix = f"{params.get('name')}/{container}"

        def line(i: int) -> str:
            text = f"{prefix} line {i}\n"
            return f"{HOLLOW_LOG_TIME} {text}" if ts else text

        lines = [line(i) for i in range(1, HOLLOW_LOG_LINES + 1)]
        tail = params.get("tailLines")
        if tail is not None:
            lines = lines[len(lines) - int(tail) :] if int(tail) else []
        result = LogsResult(data="".join(lines))
        if params.get("follow"):
            self._streams += 1
            stream = f"logs-{self._streams}"
            result["stream"] = stream
            peer = self._peer
            more = [
                line(i)
                for i in range(HOLLOW_LOG_LINES + 1, HOLLOW_LOG_LINES + 1 + HOLLOW_FOLLOW_LINES)
            ]

            async def follow() -> None:
                with contextlib.suppress(ConnectionError):
                    await asyncio.sleep(0.05)  # let the result go out first
                    for text in more:
                        if peer is not None:
                            await peer.notify("stream", {"stream": stream, "data": text})
                        await asyncio.sleep(0.01)
                    if peer is not None:
                        await peer.notify("stream", {"stream": stream, "data": "", "eof": True})

            task = asyncio.create_task(follow())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return result

    async def _exec(self, params: Params) -> ExecResult | ExecSessionResult:
        sessions = self.sessions
        assert sessions is not None  # set while serving
        argv, sid = exec_command(params, sessions)
        self._find(params)
        if sid is None:
            return _fake_command(argv)
        tty = bool(params.get("tty"))
        shell = HollowShell(argv, tty, int(params.get("cols") or 80), int(params.get("rows") or 24))
        sessions.open(sid, shell, tty=tty)
        return ExecSessionResult(session=sid, stdinClose=True)

    async def _attach(self, params: Params) -> ExecSessionResult:
        sessions = self.sessions
        assert sessions is not None  # set while serving
        sid = attach_session(params, sessions)
        _pod, container = self._find(params)
        tty = bool(params.get("tty"))
        cols, rows = int(params.get("cols") or 80), int(params.get("rows") or 24)
        attached = HollowAttach(f"{params.get('name')}/{container}", tty, cols, rows)
        sessions.open(sid, attached, tty=tty, attach=True)
        return ExecSessionResult(session=sid, stdinClose=True)

    # -- pods ----------------------------------------------------------------

    def _allocate_ip(self, obj: Obj) -> str:
        if (obj.get("spec") or {}).get("hostNetwork"):
            return self.node_ip
        if not self.pod_cidr:
            return ""
        if self._free_ips:
            ip = self._free_ips.pop()
        else:
            net = ipaddress.ip_network(self.pod_cidr)
            if self._next_host >= net.num_addresses - 1:
                log.warning("%s: pod CIDR %s is exhausted", self.name, self.pod_cidr)
                return ""
            ip = str(net.network_address + self._next_host)
            self._next_host += 1
        self._used_ips.add(ip)
        return ip

    def _release_ip(self, ip: str) -> None:
        if ip in self._used_ips:
            self._used_ips.discard(ip)
            self._free_ips.append(ip)

    def _start(self, obj: Obj) -> _Pod:
        started = time.time_ns()
        ip = self._allocate_ip(obj)
        observed = _running(obj, ip, started)
        readiness = _Readiness(ready=self.start_ready is None or self.start_ready(obj))
        running = [cs[0].id for cs in observed.containers.values()]
        return _Pod(
            obj,
            ip,
            observed,
            PodStatusBuilder(start_time=format_rfc3339(ns_to_s(started)), runtime="hollow"),
            readiness,
            {
                cid: readiness
                for cid in running
                if observed.statuses[cid].state == pb.CONTAINER_RUNNING
            },
        )

    async def _hold(self, obj: Obj, missing: str) -> None:
        """A pod whose ConfigMap or Secret is missing waits, as on a real node."""
        spec = obj.get("spec") or {}
        names = [c["name"] for c in (spec.get("initContainers") or spec.get("containers") or [])]
        builder = PodStatusBuilder(start_time=now_rfc3339(), runtime="hollow")
        waiting = {name: ("CreateContainerConfigError", missing) for name in names}
        plan = "start" if spec.get("initContainers") else "done"
        status = builder.build(
            obj, Observed(), node_ip=self.node_ip, init_plan=plan, waiting=waiting
        )
        await self._notify_pod(self._params(obj, status))

    async def _stop(self, uid: str) -> None:
        pod = self.pods.pop(uid)
        self._release_ip(pod.ip)
        # Nothing restarts now: the containers read as terminated, as on a real node.
        spec = {**(pod.obj.get("spec") or {}), "restartPolicy": "Never"}
        status = pod.status.build(
            {**pod.obj, "spec": spec}, _stopped(pod.observed), node_ip=self.node_ip
        )
        await self._notify_pod(self._params(pod.obj, status, terminated=True))

    async def _report(self, pod: _Pod) -> None:
        status = pod.status.build(pod.obj, pod.observed, node_ip=self.node_ip, probes=pod.probes)
        if status == pod.reported:
            return
        pod.reported = status
        await self._notify_pod(self._params(pod.obj, status))

    @staticmethod
    def _params(obj: Obj, status: Obj, terminated: bool = False) -> PodStatusParams:
        meta = obj.get("metadata") or {}
        params = PodStatusParams(
            namespace=str(meta.get("namespace")),
            name=str(meta.get("name")),
            uid=str(meta.get("uid")),
            status=status,
        )
        if terminated:
            params["terminated"] = True
        return params

    async def _notify_pod(self, params: PodStatusParams) -> None:
        peer = self._peer
        if peer is None:
            return
        with contextlib.suppress(ConnectionError):
            await peer.notify("pod_status", params)


# --- standalone ----------------------------------------------------------------


# The command line's options that are HollowAgent's keyword arguments too.
_AGENT_OPTIONS = ("cpu", "memory", "pods", "heartbeat_interval", "pod_cidr", "node_ip")


async def _main(args: argparse.Namespace) -> None:
    options = vars(args)
    agent = HollowAgent(args.name, **{k: options[k] for k in _AGENT_OPTIONS})
    reader, writer = await stdio(os.dup(sys.stdout.fileno()))
    await agent.serve(reader, writer)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python3 -m agent.hollow",
        description="A hollow node agent: speaks the agent protocol on stdin/stdout, runs no containers.",
    )
    parser.add_argument(
        "--name", default=socket.gethostname(), help="node name (default: hostname)"
    )
    parser.add_argument("--cpu", default="4", help="cpu capacity (default 4)")
    parser.add_argument("--memory", default="8Gi", help="memory capacity (default 8Gi)")
    parser.add_argument("--pods", type=int, default=110, help="pod capacity (default 110)")
    parser.add_argument(
        "--heartbeat-interval", type=float, default=10.0, help="seconds (default 10)"
    )
    parser.add_argument("--pod-cidr", help="until the control plane sends one")
    parser.add_argument("--node-ip", help="until the control plane sends one")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    # stdout carries the protocol: logs go to stderr only.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
