"""One pod's worker: kubelet-like and level-triggered.

Each pass looks at what containerd has for the pod (found by the pod-uid
label, so a restarted agent adopts what runs), starts what is missing
(sandbox, then containers in order), applies restartPolicy with
CrashLoopBackOff, and reports a status when it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from agent.cri import api_pb2 as pb
from agent.cri.client import CRIClient, CRIError
from agent.protocol.podsources import pod_source_refs
from agent.protocol.primitives import format_rfc3339

from . import spec as S
from .backoff import Backoff
from .envvars import container_env
from .probes import ContainerProbes, ProbeSpec, run_once
from .pull import ImagePuller
from .sources import MissingSource, Sources
from .spec import Obj
from .status import Observed, PodStatusBuilder, ns_to_s, wants_restart
from .volumes import WRITTEN as VOLUME_KINDS
from .volumes import pod_dirs, write_volumes

log = logging.getLogger(__name__)

Notify = Callable[[Obj, bool], Awaitable[None]]  # (status params, terminated)
CONFIG_ERROR = "CreateContainerConfigError"


class PodHost(Protocol):
    """What a worker reads from the pod manager that runs it."""

    @property
    def sources(self) -> Sources:
        """The ConfigMaps and Secrets the last `sync_pods` brought."""

    async def record(self, params: Obj) -> None:
        """Sends a `pod_event` (PodEventParams)."""


# Container states whose ContainerStatus stays the same until the state changes.
_SETTLED = (pb.CONTAINER_RUNNING, pb.CONTAINER_EXITED)


class PodWorker:
    def __init__(
        self,
        cri: CRIClient,
        node: S.NodeConfig,
        pod: Obj,
        notify: Notify,
        *,
        puller: ImagePuller | None = None,
        backoff_base: float = 10.0,
        backoff_max: float = 300.0,
        sync_interval: float = 1.0,
        host: PodHost | None = None,
    ) -> None:
        self.cri = cri
        self.node = node
        self.pod = pod
        self.uid = str(pod["metadata"]["uid"])
        self.notify = notify
        self.sync_interval = sync_interval
        self.backoff = Backoff(backoff_base, backoff_max)
        self.puller = puller or ImagePuller(cri, backoff_base, backoff_max)
        self.wake = asyncio.Event()
        self.terminating = False
        self.done = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.probes: dict[str, ContainerProbes] = {}  # by container id
        self.waiting: dict[str, tuple[str, str]] = {}  # container name -> (reason, message)
        self.in_backoff: dict[str, float] = {}  # container name -> seconds left
        self.sandbox_config: pb.PodSandboxConfig | None = None
        self.reported: Obj | None = None
        self._ip_cache = ("", "")  # (sandbox id, pod IP)
        # ContainerStatus by id. A status does not change while the container stays
        # in the state it was read in (running, exited), so passes reuse it.
        self._status_cache: dict[str, pb.ContainerStatus] = {}
        self.created = time.time()
        self.status = PodStatusBuilder(start_time=format_rfc3339(self.created))
        self.timings: dict[str, float] = {}  # last sandbox/container start durations
        self.obs = Observed()
        self.host = host
        self._recorded: set[tuple[str, str]] = set()  # events sent, sent once
        self._volumes_written: tuple[object, ...] | None = None  # what they show
        self.config_error = ""  # why the volumes cannot be written
        self._event_tasks: set[asyncio.Task[None]] = set()

    # ---- control ----

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"pod {S.pod_key(self.pod)}")

    def update(self, pod: Obj) -> None:
        self.pod = pod
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.terminating = True
        self.wake.set()

    def terminate(self, pod: Obj | None = None) -> None:
        if pod is not None:
            self.pod = pod
        self.terminating = True
        self.wake.set()

    @property
    def sources(self) -> Sources:
        return self.host.sources if self.host is not None else Sources()

    @property
    def spec(self) -> Obj:
        return self.pod.get("spec") or {}

    @property
    def containers(self) -> list[Obj]:
        return list(self.spec.get("containers") or [])

    async def run(self) -> None:
        try:
            while not self.terminating:
                next_in = self.sync_interval
                try:
                    next_in = await self.sync()
                except CRIError as e:
                    log.warning("%s: %s", S.pod_key(self.pod), e)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s: sync failed", S.pod_key(self.pod))
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.05, next_in)):
                        await self.wake.wait()
            await self.kill()
        finally:
            await self._stop_probes(set())
            self.done.set()

    # ---- one pass ----

    async def observe(self) -> Observed:
        labels = {S.POD_UID: self.uid}
        sandboxes, containers = await asyncio.gather(
            self.cri.list_pod_sandboxes(labels), self.cri.list_containers(labels)
        )
        obs = Observed(sandboxes=sorted(sandboxes, key=lambda s: -s.created_at))
        ready = [s for s in obs.sandboxes if s.state == pb.SANDBOX_READY]
        if ready:
            obs.sandbox = ready[0]
            if self._ip_cache[0] != ready[0].id:  # a sandbox keeps its IP
                st = await self.cri.pod_sandbox_status(ready[0].id)
                self._ip_cache = (ready[0].id, st.network.ip)
            obs.pod_ip = self._ip_cache[1]
        for c in sorted(containers, key=lambda c: (-c.metadata.attempt, -c.created_at)):
            obs.containers.setdefault(c.metadata.name, []).append(c)
        wanted = [cs[i] for cs in obs.containers.values() for i in range(min(2, len(cs)))]
        cache = self._status_cache
        ids: list[str] = []
        for c in wanted:
            cached = cache.get(c.id)
            if cached is not None and cached.state == c.state and c.state in _SETTLED:
                obs.statuses[c.id] = cached
            else:
                ids.append(c.id)
        results = await asyncio.gather(
            *(self.cri.container_status(i) for i in ids), return_exceptions=True
        )
        for cid, r in zip(ids, results, strict=True):
            if isinstance(r, pb.ContainerStatus):
                obs.statuses[cid] = r
        self._status_cache = dict(obs.statuses)
        return obs

    async def sync(self) -> float:
        """One level-triggered pass; returns seconds until the next is due."""
        obs = await self.observe()
        if obs.sandboxes and self.reported is None:
            first = min(sb.created_at for sb in obs.sandboxes)
            self.status.start_time = format_rfc3339(min(self.created, ns_to_s(first)))
        acted, next_in = await self.act(obs)
        if acted:
            obs = await self.observe()
        self.obs = obs
        await self._sync_probes(obs)
        await self.report(obs)
        return next_in

    @property
    def init_containers(self) -> list[Obj]:
        return list(self.spec.get("initContainers") or [])

    def _wants_restart(self, status: pb.ContainerStatus, init: bool = False) -> bool:
        return wants_restart(self.pod, status, init)

    def init_plan(self, obs: Observed) -> tuple[str, tuple[Obj, int, bool] | None, float]:
        """Init containers run one at a time, in order, each to success.
        Returns (done|wait|failed|start, what to start, back-off left)."""
        for c in self.init_containers:
            cs = obs.containers.get(c["name"]) or []
            latest = cs[0] if cs else None
            if latest is None:
                return "start", (c, 0, False), 0.0
            if latest.state == pb.CONTAINER_RUNNING:
                return "wait", None, 0.0
            if latest.state == pb.CONTAINER_CREATED:
                return "start", (c, latest.metadata.attempt, False), 0.0
            st = obs.statuses.get(latest.id)
            if st is None:
                return "wait", None, 0.0
            if self._interrupted(st):
                return "start", (c, latest.metadata.attempt, False), 0.0
            if st.exit_code == 0:
                continue
            if not self._wants_restart(st, init=True):
                return "failed", None, 0.0
            left = self.backoff.remaining(c["name"], ns_to_s(st.finished_at))
            if left > 0:
                return "wait", None, left
            return "start", (c, latest.metadata.attempt + 1, True), 0.0
        return "done", None, 0.0

    def _pending_init(self, obs: Observed) -> str:
        """The first init container that has not yet succeeded."""
        for c in self.init_containers:
            cs = obs.containers.get(c["name"]) or []
            st = obs.statuses.get(cs[0].id) if cs else None
            if st is None or st.state != pb.CONTAINER_EXITED or st.exit_code != 0:
                return str(c["name"])
        return ""

    async def act(self, obs: Observed) -> tuple[bool, float]:
        acted = False
        next_in = self.sync_interval
        wanted = {c["name"] for c in self.containers + self.init_containers}
        # Containers that are not in the spec go.
        for name, cs in obs.containers.items():
            if name not in wanted:
                for old in cs:
                    await self._remove_container(old.id, running=old.state == pb.CONTAINER_RUNNING)
                acted = True
        # Liveness and startup failures kill the container; restart logic follows.
        for cid, pr in list(self.probes.items()):
            if not pr.live:
                log.info("%s: %s, killing %s", S.pod_key(self.pod), pr.message, cid[:12])
                name = str(pr.container.get("name", ""))
                await self._stop_gracefully(cid, name, S.grace_period(self.pod), pr.pod_ip)
                await self._stop_probes({cid}, only=True)
                acted = True
        if acted:
            obs = await self.observe()
        if obs.sandbox is not None:
            self._sync_volumes(obs.pod_ip)  # they follow ConfigMap and Secret changes
        # What each container needs: (container, attempt) to (re)start.
        to_start: list[tuple[Obj, int, bool]] = []  # (container, attempt, is_restart)
        self.in_backoff.clear()
        plan, item, left = self.init_plan(obs)
        if left > 0:
            self.in_backoff[self._pending_init(obs)] = left
            next_in = min(next_in, left)
        if item is not None:
            cs = obs.containers.get(item[0]["name"]) or []
            if cs and cs[0].state == pb.CONTAINER_CREATED:
                if await self._resume(item[0], cs[0], obs):
                    return True, next_in
            elif cs and item[1] == cs[0].metadata.attempt:  # an interrupted start
                await self._remove_container(cs[0].id, running=False)
            to_start.append(item)
        for c in self.containers if plan == "done" else []:
            name = c["name"]
            cs = obs.containers.get(name) or []
            latest = cs[0] if cs else None
            if latest is None:
                to_start.append((c, 0, False))
                continue
            in_sandbox = obs.sandbox is not None and latest.pod_sandbox_id == obs.sandbox.id
            if latest.state == pb.CONTAINER_RUNNING and in_sandbox:
                continue
            if latest.state == pb.CONTAINER_CREATED:
                acted = True
                if not await self._resume(c, latest, obs):
                    to_start.append((c, latest.metadata.attempt, False))  # redo it
                continue
            status = obs.statuses.get(latest.id)
            if status is not None and self._interrupted(status):
                await self._remove_container(latest.id, running=False)
                to_start.append((c, latest.metadata.attempt, False))
                acted = True
                continue
            if latest.state == pb.CONTAINER_RUNNING or status is None:
                # Running in a dead sandbox: restart it in a new one.
                to_start.append((c, latest.metadata.attempt + 1, True))
                continue
            if not self._wants_restart(status):
                continue
            left = self.backoff.remaining(name, ns_to_s(status.finished_at))
            if left > 0:
                self.in_backoff[name] = left
                next_in = min(next_in, left)
                continue
            to_start.append((c, latest.metadata.attempt + 1, True))
        if not to_start:
            await self._gc(obs)
            if obs.sandbox is not None and self._finished(obs, plan):
                # A finished pod frees its sandbox (and IP); its containers stay for logs.
                await self.cri.stop_pod_sandbox(obs.sandbox.id)
                acted = True
            return acted, next_in
        # The images are checked (or pulled) while the sandbox starts.
        images = asyncio.gather(
            *(self._ensure_image(c) for c, _, _ in to_start), return_exceptions=True
        )
        try:
            sandbox_id = await self._ensure_sandbox(obs)
        except BaseException:
            images.cancel()
            await asyncio.gather(images, return_exceptions=True)
            raise
        sandbox_waiting = dict(self.waiting) if sandbox_id is None else {}
        have_images = await images
        if sandbox_id is None:
            self.waiting.update(sandbox_waiting)  # the sandbox's reason wins over a pull's
            return acted, next_in
        for r in have_images:
            if isinstance(r, BaseException):
                raise r
        pod_ip = obs.pod_ip
        if obs.sandbox is None or obs.sandbox.id != sandbox_id:
            pod_ip = (await self.cri.pod_sandbox_status(sandbox_id)).network.ip
            self._ip_cache = (sandbox_id, pod_ip)
            acted = True
        if not self._sync_volumes(pod_ip):
            for want, _, _ in to_start:
                self._config_error(want["name"], self.config_error)
            return acted, next_in
        for (want, attempt, is_restart), have_image in zip(to_start, have_images, strict=True):
            if have_image and await self._start_container(
                want, attempt, is_restart, sandbox_id, pod_ip
            ):
                acted = True
        await self._gc(obs)
        return True, next_in

    async def _ensure_sandbox(self, obs: Observed) -> str | None:
        if obs.sandbox is not None:
            if self.sandbox_config is None:
                self.sandbox_config = S.sandbox_config(
                    self.pod, self.node, obs.sandbox.metadata.attempt
                )
            return obs.sandbox.id
        # None ready: clear away dead ones, then start a new one.
        attempt = max((s.metadata.attempt + 1 for s in obs.sandboxes), default=0)
        for s in obs.sandboxes:
            with contextlib.suppress(CRIError):
                await self.cri.stop_pod_sandbox(s.id)
        cfg = S.sandbox_config(self.pod, self.node, attempt)
        Path(cfg.log_directory).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - tiny
        t0 = time.monotonic()
        try:
            sandbox_id = await self.cri.run_pod_sandbox(cfg)
        except CRIError as e:
            for c in self.containers:
                self.waiting[c["name"]] = ("ContainerCreating", f"sandbox: {e.details}")
            log.warning("%s: RunPodSandbox: %s", S.pod_key(self.pod), e.details)
            return None
        self.timings["sandbox"] = time.monotonic() - t0
        log.info(
            "%s: sandbox %s started in %.3fs",
            S.pod_key(self.pod),
            sandbox_id[:12],
            self.timings["sandbox"],
        )
        self.sandbox_config = cfg
        for s in obs.sandboxes:
            with contextlib.suppress(CRIError):
                await self.cri.remove_pod_sandbox(s.id)
        return sandbox_id

    async def _ensure_image(self, c: Obj) -> bool:
        image = S.normalize_image(str(c.get("image") or ""))
        policy = ImagePuller.policy(image, c.get("imagePullPolicy"))
        r = await self.puller.ensure(image, policy)
        if not r.ok:
            self.waiting[c["name"]] = (r.reason, r.message)
        return r.ok

    async def _start_container(
        self, c: Obj, attempt: int, is_restart: bool, sandbox_id: str, pod_ip: str
    ) -> bool:
        """Creates and starts container `c`; its image must be here (_ensure_image)."""
        name = c["name"]
        image = S.normalize_image(str(c.get("image") or ""))
        assert self.sandbox_config is not None
        try:
            environment = container_env(c, self.pod, pod_ip, self.node, self.sources)
            cfg = S.container_config(
                c, self.pod, image, attempt, pod_ip, self.node, envs=environment.env
            )
        except (MissingSource, ValueError, KeyError, TypeError) as e:
            self._config_error(name, str(e))
            return False
        for reason, message in environment.events:
            self._event("Warning", reason, message)
        (Path(self.sandbox_config.log_directory) / name).mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        try:
            cid = await self.cri.create_container(sandbox_id, cfg, self.sandbox_config)
        except CRIError as e:
            self.waiting[name] = ("CreateContainerError", e.details)
            return False
        try:
            await self.cri.start_container(cid)
        except CRIError as e:
            self.waiting[name] = ("RunContainerError", e.details)
            self.backoff.next(name)
            return True
        self.timings["container"] = time.monotonic() - t0
        await self._started(c, cid, pod_ip)
        if is_restart:
            self.backoff.next(name)
        log.info(
            "%s: container %s (attempt %d) started in %.3fs",
            S.pod_key(self.pod),
            name,
            attempt,
            self.timings["container"],
        )
        return True

    async def _started(self, c: Obj, cid: str, pod_ip: str) -> None:
        """Container `c` has just been started as `cid`: its postStart hook runs."""
        self.waiting.pop(c["name"], None)
        post_start = ((c.get("lifecycle") or {}).get("postStart")) or {}
        if post_start and not await self._hook(cid, c, post_start, pod_ip, "PostStart"):
            await self.cri.stop_container(cid, S.grace_period(self.pod))

    async def _resume(self, c: Obj, created: pb.Container, obs: Observed) -> bool:
        """A container created and never started: an agent stopped between the
        two, and its StartContainer may still be under way in the runtime (or
        cancelled: see `_interrupted`). In the pod's sandbox it is started, or
        left to finish starting; True then. Else it is removed (False), to be
        created again."""
        if obs.sandbox is not None and created.pod_sandbox_id == obs.sandbox.id:
            try:
                await self.cri.start_container(created.id)
            except CRIError as e:
                log.info("%s: %s not started: %s", S.pod_key(self.pod), c["name"], e.details)
            else:
                log.info("%s: container %s started (resumed)", S.pod_key(self.pod), c["name"])
                await self._started(c, created.id, obs.pod_ip)
            return True
        await self._remove_container(created.id, running=False)
        return False

    def _interrupted(self, status: pb.ContainerStatus) -> bool:
        """An earlier agent's container whose start never ran: the agent was
        stopped with its StartContainer under way, which the runtime then
        cancelled. Its attempt is made again, and is no restart."""
        return (
            status.state == pb.CONTAINER_EXITED
            and not status.started_at
            and status.created_at < self.created * 1e9
        )

    # ---- configuration: volumes, errors, events ----

    def _sync_volumes(self, pod_ip: str) -> bool:
        """Writes the pod's configMap, secret, downwardAPI and projected volumes
        when what they show changed; False (see config_error) when it cannot."""
        meta, spec = self.pod.get("metadata") or {}, self.spec
        if not any(k in v for v in spec.get("volumes") or [] for k in VOLUME_KINDS):
            return True
        refs = [r for r, _ in pod_source_refs(self.pod)]
        shown = (
            self.sources.version(refs),
            meta.get("labels"),
            meta.get("annotations"),
            pod_ip,
            repr(spec.get("volumes")),
        )
        if shown == self._volumes_written:
            return True
        try:
            changed = write_volumes(self.pod, pod_ip, self.node, self.sources)
        except (MissingSource, OSError, ValueError) as e:
            self.config_error = str(e)
            self._volumes_written = None
            return False
        if changed and self._volumes_written is not None:
            log.info("%s: volumes %s updated", S.pod_key(self.pod), ", ".join(changed))
        self.config_error = ""
        self._volumes_written = shown
        return True

    def _config_error(self, name: str, message: str) -> None:
        """A container that cannot be configured waits, as the kubelet's does."""
        self.waiting[name] = (CONFIG_ERROR, message)
        self._event("Warning", "Failed", f"Error: {message}")

    def _event(self, type_: str, reason: str, message: str) -> None:
        """Records an Event about the pod, once per reason and message."""
        if self.host is None or (reason, message) in self._recorded:
            return
        self._recorded.add((reason, message))
        params: Obj = {**self._identity(), "type": type_, "reason": reason, "message": message}
        task = asyncio.create_task(self.host.record(params))
        self._event_tasks.add(task)
        task.add_done_callback(self._event_tasks.discard)

    async def _remove_container(self, cid: str, running: bool) -> None:
        with contextlib.suppress(CRIError):
            if running:
                await self.cri.stop_container(cid, S.grace_period(self.pod))
            await self.cri.remove_container(cid)
        await self._stop_probes({cid}, only=True)

    async def _gc(self, obs: Observed) -> None:
        """Keep the current and the previous container of each name; drop older ones."""
        for cs in obs.containers.values():
            for c in cs[2:]:
                if c.state != pb.CONTAINER_RUNNING:
                    with contextlib.suppress(CRIError):
                        await self.cri.remove_container(c.id)
                    # The runtime leaves log files behind; the kubelet deletes them too.
                    log_file = (
                        self.node.log_dir(self.pod) / c.metadata.name / f"{c.metadata.attempt}.log"
                    )
                    log_file.unlink(missing_ok=True)

    # ---- lifecycle hooks ----

    async def _hook(self, cid: str, c: Obj, hook: Obj, pod_ip: str, kind: str) -> bool:
        """Runs an exec, httpGet or sleep hook; False (and a log line) when it fails."""
        if "sleep" in hook:
            # Kubernetes' sleep action: a preStop delay that needs no sleep in the image.
            await asyncio.sleep(max(0, int((hook["sleep"] or {}).get("seconds") or 0)))
            return True
        spec = ProbeSpec(kind=kind, handler=hook, timeout=float(S.grace_period(self.pod) or 30))

        async def exec_fn(cmd: list[str], limit: int) -> int:
            return (await self.cri.exec_sync(cid, cmd, limit)).exit_code

        ok, msg = await run_once(spec, c, pod_ip, exec_fn)
        if not ok:
            log.warning(
                "%s: %s hook of %s failed: %s", S.pod_key(self.pod), kind, c.get("name"), msg
            )
        return ok

    async def _stop_gracefully(self, cid: str, name: str, grace: int, pod_ip: str) -> None:
        """preStop hook (inside the grace period), then StopContainer with what is left."""
        spec_c = next((c for c in self.containers if c["name"] == name), None)
        pre_stop = ((spec_c or {}).get("lifecycle") or {}).get("preStop")
        t0 = time.monotonic()
        if spec_c is not None and pre_stop:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace or 1):
                    await self._hook(cid, spec_c, pre_stop, pod_ip, "PreStop")
        left = max(2, int(grace - (time.monotonic() - t0))) if grace else 0
        await self.cri.stop_container(cid, left)

    # ---- probes ----

    async def _sync_probes(self, obs: Observed) -> None:
        running: set[str] = set()
        by_name = {c["name"]: c for c in self.containers}
        for name, cs in obs.containers.items():
            latest = cs[0]
            if latest.state != pb.CONTAINER_RUNNING or name not in by_name:
                continue
            running.add(latest.id)
            if latest.id in self.probes:
                continue
            st = obs.statuses.get(latest.id)
            started = ns_to_s(st.started_at) if st and st.started_at else time.time()
            cid = latest.id

            async def exec_fn(cmd: list[str], limit: int, cid: str = cid) -> int:
                return (await self.cri.exec_sync(cid, cmd, limit)).exit_code

            pr = ContainerProbes(by_name[name], obs.pod_ip, exec_fn, self.wake.set, started)
            if started < self.created:  # adopted from an earlier agent
                await pr.prime()
            pr.start()
            self.probes[cid] = pr
        await self._stop_probes(running)

    async def _stop_probes(self, ids: set[str], only: bool = False) -> None:
        """Stops probes of containers not in ids (or, with only, of those in ids)."""
        for cid in list(self.probes):
            if (cid in ids) == only:
                await self.probes.pop(cid).stop()

    # ---- status ----

    def build_status(self, obs: Observed) -> Obj:
        return self.status.build(
            self.pod,
            obs,
            node_ip=self.node.node_ip,
            init_plan=self.init_plan(obs)[0] if self.init_containers else "done",
            waiting=self.waiting,
            in_backoff=self.in_backoff,
            probes=self.probes,
            backoff_delay=self.backoff.delay,
        )

    def _finished(self, obs: Observed, plan: str) -> bool:
        """Nothing runs and nothing will run again."""
        if plan == "failed":
            return True
        if plan != "done" or not self.containers:
            return False
        for c in self.containers:
            cs = obs.containers.get(c["name"]) or []
            st = obs.statuses.get(cs[0].id) if cs else None
            if st is None or st.state != pb.CONTAINER_EXITED or self._wants_restart(st):
                return False
        return True

    def _identity(self) -> Obj:
        """The pod as pod_status and pod_event name it."""
        meta = self.pod["metadata"]
        return {
            "namespace": str(meta.get("namespace", "default")),
            "name": str(meta.get("name", "")),
            "uid": self.uid,
        }

    async def report(self, obs: Observed, terminated: bool = False) -> None:
        status = self.build_status(obs)
        if status == self.reported and not terminated:
            return
        self.reported = status
        params: Obj = {**self._identity(), "status": status}
        await self.notify(params, terminated)

    # ---- termination ----

    async def kill(self) -> None:
        """Graceful stop: every container gets the grace period, then the sandbox goes."""
        grace = S.grace_period(self.pod)
        await self._stop_probes(set())
        try:
            obs = await self.observe()
            running = [
                c for cs in obs.containers.values() for c in cs if c.state == pb.CONTAINER_RUNNING
            ]
            results = await asyncio.gather(
                *(self._stop_gracefully(c.id, c.metadata.name, grace, obs.pod_ip) for c in running),
                return_exceptions=True,
            )
            for r in results:
                if isinstance(r, Exception):
                    log.warning("%s: stop: %s", S.pod_key(self.pod), r)
            final = await self.observe()
            for s in final.sandboxes:
                with contextlib.suppress(CRIError):
                    await self.cri.stop_pod_sandbox(s.id)
                with contextlib.suppress(CRIError):
                    await self.cri.remove_pod_sandbox(s.id)
        except CRIError as e:
            log.warning("%s: kill: %s", S.pod_key(self.pod), e)
            final = self.obs
        shutil.rmtree(self.node.log_dir(self.pod), ignore_errors=True)
        for d in pod_dirs(self.node, self.uid):
            shutil.rmtree(d, ignore_errors=True)
        final.sandbox = None
        final.pod_ip = ""
        self.in_backoff.clear()
        self.waiting.clear()
        # Nothing restarts now: statuses read as terminated.
        self.pod.setdefault("spec", {})["restartPolicy"] = "Never"
        await self.report(final, terminated=True)
