"""All pods on the node: one worker each, fed by the level-triggered `sync_pods`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.cri import api_pb2 as pb
from agent.cri.client import CRIClient, CRIError
from agent.protocol import (
    INTERNAL_ERROR,
    NOT_FOUND,
    ExecSessionResult,
    RpcError,
)

from . import logs as L
from . import spec as S
from .ctrexec import CtrExec, ctr_argv, ctr_path
from .params import attach_session, container_name, exec_command
from .pull import ImagePuller
from .sessions import Sessions
from .sources import Sources
from .spec import Obj
from .status import gone_status
from .stream import ExecSession, StreamError
from .worker import PodWorker

log = logging.getLogger(__name__)

Send = Callable[[str, Obj], Awaitable[None]]  # (notification method, params)


class PodManager:
    def __init__(
        self,
        cri: CRIClient,
        node: S.NodeConfig,
        send: Send,
        *,
        backoff_base: float = 10.0,
        backoff_max: float = 300.0,
        sync_interval: float = 1.0,
        offline_registry: bool = False,
    ) -> None:
        self.cri = cri
        self.node = node
        self.send = send
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sync_interval = sync_interval
        self.puller = ImagePuller(cri, backoff_base, backoff_max, offline=offline_registry)
        self.workers: dict[str, PodWorker] = {}
        self.statuses: dict[str, Obj] = {}  # uid -> last pod_status params sent
        self._adopted = False
        self._streams = itertools.count(1)
        self._follows: set[asyncio.Task[None]] = set()
        self.sessions = Sessions(send)
        self.sources = Sources()

    # ---- sync ----

    async def sync_pods(self, desired: dict[str, Obj], sources: Sources | None = None) -> int:
        """Run the pods of `desired` (by uid, see params.desired_pods), and only
        them; `sources` holds the ConfigMaps and Secrets they read."""
        if sources is not None:
            self.sources = sources
        if not self._adopted:
            await self._adopt_orphans(desired)
            self._adopted = True
        for uid, old in list(self.workers.items()):
            if uid not in desired:
                old.terminate()
        for uid, pod in desired.items():
            deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
            existing = self.workers.get(uid)
            if existing is not None:
                existing.update(pod)
                continue
            if deleting and not await self.cri.list_pod_sandboxes({S.POD_UID: uid}):
                await self._notify(dict(gone_status(pod, self.node.node_ip)), True)
                continue
            w = self._spawn(pod)
            if deleting:
                w.terminate()
        return sum(1 for w in self.workers.values() if not w.terminating)

    def _spawn(self, pod: Obj) -> PodWorker:
        uid = str(pod["metadata"]["uid"])
        w = PodWorker(
            self.cri,
            self.node,
            pod,
            self._notify,
            puller=self.puller,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            sync_interval=self.sync_interval,
            host=self,
        )
        self.workers[uid] = w
        w.start()
        assert w.task is not None
        w.task.add_done_callback(functools.partial(self._reap, uid, w))
        return w

    def _reap(self, uid: str, w: PodWorker, _task: object = None) -> None:
        if self.workers.get(uid) is w:
            del self.workers[uid]

    async def sweep_orphans(self) -> None:
        """Stop sandboxes no worker owns, once the first sync has adopted what
        ran before. A previous agent still alive beside this one (on a node
        cut off for a while) may start one after that adoption."""
        if self._adopted:
            await self._adopt_orphans({})

    async def _adopt_orphans(self, desired: dict[str, Obj]) -> None:
        """Sandboxes of pods this node should no longer run are stopped."""
        for sb in await self.cri.list_pod_sandboxes({S.MANAGED: "true"}):
            uid = sb.labels.get(S.POD_UID, "")
            if not uid or uid in desired or uid in self.workers:
                continue
            grace = int(sb.annotations.get(S.GRACE_PERIOD, S.DEFAULT_GRACE) or 0)
            pod: Obj = {
                "metadata": {
                    "uid": uid,
                    "name": sb.labels.get(S.POD_NAME, sb.metadata.name),
                    "namespace": sb.labels.get(S.POD_NAMESPACE, sb.metadata.namespace),
                },
                "spec": {"terminationGracePeriodSeconds": grace, "containers": []},
            }
            log.info("stopping orphaned pod %s (%s)", S.pod_key(pod), uid)
            self._spawn(pod).terminate()

    async def _notify(self, params: Obj, terminated: bool) -> None:
        if terminated:
            params = {**params, "terminated": True}
            self.statuses.pop(params["uid"], None)
        else:
            self.statuses[params["uid"]] = params
        try:
            await self.send("pod_status", params)
        except ConnectionError:
            log.debug("pod_status for %s not sent: no connection", params.get("name"))

    async def record(self, params: Obj) -> None:
        """A worker's `pod_event`."""
        with contextlib.suppress(ConnectionError):
            await self.send("pod_event", params)

    async def resend(self) -> None:
        """Sends every pod's last status again (after a new connection)."""
        for params in list(self.statuses.values()):
            with contextlib.suppress(ConnectionError):
                await self.send("pod_status", params)

    async def shutdown(self) -> None:
        """Stops the workers but leaves every container running (for adoption)."""
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        for t in tasks:
            t.cancel()
        for t in list(self._follows):
            t.cancel()
        await asyncio.gather(*tasks, *self._follows, return_exceptions=True)
        await self.sessions.close_all()

    # ---- lookups ----

    def find(self, namespace: str, name: str, uid: str | None = None) -> PodWorker:
        for w in self.workers.values():
            meta = w.pod["metadata"]
            if (
                meta.get("namespace", "default") == namespace
                and meta.get("name") == name
                and (not uid or w.uid == uid)
            ):
                return w
        raise RpcError(
            NOT_FOUND, f'pod "{name}" not found in namespace "{namespace}" on {self.node.name}'
        )

    async def _containers(self, w: PodWorker, name: str) -> list[pb.Container]:
        cs = await self.cri.list_containers({S.POD_UID: w.uid, S.CONTAINER_NAME: name})
        return sorted(cs, key=lambda c: (-c.metadata.attempt, -c.created_at))

    # ---- logs ----

    async def logs(self, params: Obj) -> Obj:
        w = self.find(str(params["namespace"]), str(params["name"]), params.get("uid"))
        name = container_name(w.pod, params.get("container"))
        cs = await self._containers(w, name)
        index = 1 if params.get("previous") else 0
        if len(cs) <= index:
            what = "previous terminated container" if index else "container"
            raise RpcError(NOT_FOUND, f'{what} "{name}" in pod "{params["name"]}" not found')
        st = await self.cri.container_status(cs[index].id)
        path = Path(st.log_path)
        lines, offset = L.read_lines(path)
        since = None
        if params.get("sinceSeconds") is not None:
            since = datetime.now(UTC) - timedelta(seconds=int(params["sinceSeconds"]))
        tail = params.get("tailLines")
        timestamps = bool(params.get("timestamps"))
        picked = L.select(lines, int(tail) if tail is not None else None, since)
        data = "".join(ln.render(timestamps) for ln in picked)
        result: Obj = {"data": data}
        if params.get("follow") and not index:
            stream = f"logs-{next(self._streams)}"
            result["stream"] = stream
            cid = cs[0].id
            task = asyncio.create_task(self._follow(stream, path, offset, cid, timestamps))
            self._follows.add(task)
            task.add_done_callback(self._follows.discard)
        return result

    async def _follow(self, stream: str, path: Path, offset: int, cid: str, ts: bool) -> None:
        async def emit(data: str) -> None:
            await self.send("stream", {"stream": stream, "data": data})

        async def running() -> bool:
            try:
                return (await self.cri.container_status(cid)).state == pb.CONTAINER_RUNNING
            except CRIError:
                return False

        try:
            await asyncio.sleep(0.05)  # let the result go out first
            await L.follow(path, offset, emit, running, ts)
        except ConnectionError:
            return
        with contextlib.suppress(ConnectionError):
            await self.send("stream", {"stream": stream, "data": "", "eof": True})

    # ---- exec ----

    async def _running_container(self, params: Obj) -> str:
        """The id of the running container an exec or attach names."""
        w = self.find(str(params["namespace"]), str(params["name"]), params.get("uid"))
        name = container_name(w.pod, params.get("container"))
        cs = await self._containers(w, name)
        if not cs or cs[0].state != pb.CONTAINER_RUNNING:
            raise RpcError(NOT_FOUND, f"container {name} is not running")
        return str(cs[0].id)

    async def exec(self, params: Obj) -> Obj:
        argv, session = exec_command(params, self.sessions)
        cid = await self._running_container(params)
        try:
            if session is not None:
                return dict(await self._exec_session(session, cid, argv, params))
            timeout = int(params.get("timeoutSeconds") or 0)
            r = await self.cri.exec_sync(cid, argv, timeout)
        except CRIError as e:
            raise RpcError(NOT_FOUND if e.not_found else INTERNAL_ERROR, e.details) from None
        return {
            "exitCode": r.exit_code,
            "stdout": r.stdout.decode("utf-8", errors="replace"),
            "stderr": r.stderr.decode("utf-8", errors="replace"),
        }

    async def _exec_session(
        self, sid: str, cid: str, argv: list[str], params: Obj
    ) -> ExecSessionResult:
        """An interactive session; its input and output then flow as `exec_io`
        notifications (see Sessions). Through containerd's streaming server,
        but for stdin without a terminal, which must be able to end on its
        own: that runs under `ctr` (see agent.pods.ctrexec) when it is here."""
        tty, stdin = bool(params.get("tty")), bool(params.get("stdin"))
        ctr = ctr_path() if stdin and not tty else None
        if ctr is not None:
            try:
                backend = await CtrExec.start(ctr_argv(ctr, self.cri.socket, cid, argv))
            except OSError as e:
                raise RpcError(INTERNAL_ERROR, f"exec: {e}") from None
            self.sessions.open(sid, backend, tty=False)
            return ExecSessionResult(session=sid, stdinClose=True)
        url = await self.cri.exec_url(cid, argv, tty=tty, stdin=stdin)
        return await self._stream_session(sid, url, params, "exec")

    async def attach(self, params: Obj) -> Obj:
        """An interactive session on the container's main process, through
        containerd's streaming server (CRI Attach): the output it writes from
        now on, and its stdin when the container has one."""
        sid = attach_session(params, self.sessions)
        cid = await self._running_container(params)
        try:
            url = await self.cri.attach_url(
                cid, tty=bool(params.get("tty")), stdin=bool(params.get("stdin"))
            )
        except CRIError as e:
            raise RpcError(NOT_FOUND if e.not_found else INTERNAL_ERROR, e.details) from None
        await self._stream_session(sid, url, params, "attach")
        # An attach's stdin ending detaches it (the container's stdin stays
        # open, as with stdinOnce false): that needs nothing of the runtime.
        return dict(ExecSessionResult(session=sid, stdinClose=True))

    async def _stream_session(
        self, sid: str, url: str, params: Obj, what: str
    ) -> ExecSessionResult:
        """A session on the streaming server at `url` (an exec's or an attach's)."""
        tty = bool(params.get("tty"))
        try:
            stream = await ExecSession.connect(url)
        except (OSError, TimeoutError, StreamError) as e:
            raise RpcError(INTERNAL_ERROR, f"{what}: {e}") from None
        try:
            if tty and params.get("cols") and params.get("rows"):
                await stream.resize(int(params["cols"]), int(params["rows"]))
        except OSError as e:
            await stream.close()
            raise RpcError(INTERNAL_ERROR, f"{what}: {e}") from None
        self.sessions.open(sid, stream, tty=tty, attach=what == "attach")
        return ExecSessionResult(session=sid, stdinClose=stream.can_close_stdin)

    # ---- stats ----

    async def pod_stats(self, uids: list[str] | None = None) -> list[Obj]:
        stats = await self.cri.list_container_stats({S.MANAGED: "true"})
        by_uid: dict[str, list[Obj]] = {}
        for s in stats:
            labels = s.attributes.labels
            uid = labels.get(S.POD_UID, "")
            if uids and uid not in uids:
                continue
            by_uid.setdefault(uid, []).append(
                {
                    "name": labels.get(S.CONTAINER_NAME, s.attributes.metadata.name),
                    "cpuNanoCores": s.cpu.usage_nano_cores.value,
                    "cpuCoreNanoSeconds": s.cpu.usage_core_nano_seconds.value,
                    "memoryWorkingSetBytes": s.memory.working_set_bytes.value,
                }
            )
        out = []
        for uid, containers in by_uid.items():
            w = self.workers.get(uid)
            if w is None:
                continue
            meta = w.pod["metadata"]
            out.append(
                {
                    "namespace": meta.get("namespace", "default"),
                    "name": meta.get("name", ""),
                    "uid": uid,
                    "containers": containers,
                }
            )
        return out
