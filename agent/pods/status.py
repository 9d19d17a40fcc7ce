"""A pod's status as the kubelet reports it, built from what the runtime holds.

Pure: no runtime calls. The pod worker builds it from what containerd has for
the pod; the hollow agent from the containers it pretends to run. Both report
through `PodStatusBuilder`, so a hollow pod's status has a real one's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from agent.cri import api_pb2 as pb
from agent.protocol import PodStatusParams
from agent.protocol.primitives import format_rfc3339, now_rfc3339

from . import spec as S
from .spec import Obj


def ns_to_s(ns: int) -> float:
    return ns / 1e9


@dataclass
class Observed:
    """What the runtime holds for a pod, gathered once per pass."""

    sandbox: pb.PodSandbox | None = None  # the ready one, newest
    sandboxes: list[pb.PodSandbox] = field(default_factory=list)
    pod_ip: str = ""
    # container name -> containers, newest attempt first
    containers: dict[str, list[pb.Container]] = field(default_factory=dict)
    statuses: dict[str, pb.ContainerStatus] = field(default_factory=dict)  # by container id


class Probed(Protocol):
    """What the probes say of a running container (ContainerProbes)."""

    @property
    def ready(self) -> bool: ...

    @property
    def started(self) -> bool: ...


def wants_restart(pod: Obj, status: pb.ContainerStatus, init: bool = False) -> bool:
    """Whether restartPolicy runs an exited container again."""
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if init:  # init containers rerun only when they fail
        return policy != "Never" and status.exit_code != 0
    return policy == "Always" or (policy == "OnFailure" and status.exit_code != 0)


@dataclass
class PodStatusBuilder:
    """Builds one pod's status on every pass, and keeps what a status carries
    from pass to pass: the pod's start time, when each condition last changed,
    and the pod's last IP (a finished pod still reports it)."""

    start_time: str
    runtime: str = "containerd"  # the scheme of container IDs
    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)
    last_ip: str = ""

    def build(
        self,
        pod: Obj,
        obs: Observed,
        *,
        node_ip: str,
        init_plan: str = "done",
        waiting: Mapping[str, tuple[str, str]] | None = None,
        in_backoff: Mapping[str, float] | None = None,
        probes: Mapping[str, Probed] | None = None,
        backoff_delay: Callable[[str], float] | None = None,
    ) -> Obj:
        """The status. `init_plan` is where the init containers are (done, wait,
        failed, start); `waiting` holds a reason and message by container name
        for what could not start, `in_backoff` the containers waiting to
        restart, `probes` what the probes say by container id."""
        ctx = _Context(
            pod,
            obs,
            self.runtime,
            waiting or {},
            in_backoff or {},
            probes or {},
            backoff_delay or (lambda _name: 0.0),
        )
        spec = pod.get("spec") or {}
        init_containers = list(spec.get("initContainers") or [])
        plan = init_plan if init_containers else "done"
        init_statuses = [
            ctx.container_status(c, init=True, initializing=True)[0] for c in init_containers
        ]
        statuses, hints = [], []
        for c in spec.get("containers") or []:
            cs, hint = ctx.container_status(c, initializing=plan != "done")
            statuses.append(cs)
            hints.append(hint)
        if plan == "failed":
            phase = "Failed"
        elif plan != "done":
            phase = "Pending"
        elif hints and all(h.startswith("done") for h in hints):
            phase = "Failed" if "done-failed" in hints else "Succeeded"
        elif "pending" in hints or (
            obs.sandbox is None and not any(h.startswith("done") for h in hints)
        ):
            phase = "Pending"
        else:
            phase = "Running"
        unready = [s["name"] for s in statuses if not s["ready"]]
        ready = not unready and phase == "Running"
        msg = f"containers with unready status: [{' '.join(unready)}]" if unready else ""
        status: Obj = {
            "phase": phase,
            "conditions": [
                self._condition("PodScheduled", True),
                self._condition(
                    "Initialized",
                    plan == "done",
                    "ContainersNotInitialized",
                    "containers with incomplete status: ["
                    + " ".join(s["name"] for s in init_statuses if not s["ready"])
                    + "]",
                ),
                self._condition("ContainersReady", ready, "ContainersNotReady", msg),
                self._condition("Ready", ready, "ContainersNotReady", msg),
            ],
            "hostIP": node_ip,
            "startTime": self.start_time,
            "containerStatuses": statuses,
            "qosClass": S.qos_class(pod),
        }
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        if node_ip:
            status["hostIPs"] = [{"ip": node_ip}]
        ip = obs.pod_ip or (node_ip if spec.get("hostNetwork") else "")
        if obs.sandbox is not None and ip:
            self.last_ip = ip
        elif phase in ("Succeeded", "Failed"):
            ip = self.last_ip
        else:
            ip = ""
        if ip:
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        return status

    def _condition(self, type_: str, status: bool, reason: str = "", message: str = "") -> Obj:
        value = "True" if status else "False"
        prev = self.transitions.get(type_)
        if prev is None or prev[0] != value:
            self.transitions[type_] = (value, now_rfc3339())
        cond: Obj = {
            "type": type_,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": self.transitions[type_][1],
        }
        if reason and not status:
            cond["reason"] = reason
        if message and not status:
            cond["message"] = message
        return cond


@dataclass
class _Context:
    """What one build reads."""

    pod: Obj
    obs: Observed
    runtime: str
    waiting: Mapping[str, tuple[str, str]]
    in_backoff: Mapping[str, float]
    probes: Mapping[str, Probed]
    backoff_delay: Callable[[str], float]

    def terminated(self, st: pb.ContainerStatus) -> Obj:
        reason = st.reason or ("Completed" if st.exit_code == 0 else "Error")
        out: Obj = {
            "exitCode": st.exit_code,
            "reason": reason,
            "startedAt": format_rfc3339(ns_to_s(st.started_at)) if st.started_at else None,
            "finishedAt": format_rfc3339(ns_to_s(st.finished_at)) if st.finished_at else None,
            "containerID": f"{self.runtime}://{st.id}",
        }
        if st.message:
            out["message"] = st.message
        return out

    def container_status(
        self, c: Obj, init: bool = False, initializing: bool = False
    ) -> tuple[Obj, str]:
        """(containerStatus, phase hint: running|done-ok|done-failed|pending)."""
        obs = self.obs
        name = c["name"]
        cs = obs.containers.get(name) or []
        latest = cs[0] if cs else None
        st = obs.statuses.get(latest.id) if latest else None
        prev = obs.statuses.get(cs[1].id) if len(cs) > 1 else None
        out: Obj = {
            "name": name,
            "image": c.get("image", ""),
            "imageID": "",
            "restartCount": latest.metadata.attempt if latest else 0,
            "ready": False,
            "started": False,
            "state": {},
            "lastState": {},
        }
        if latest is not None:
            out["containerID"] = f"{self.runtime}://{latest.id}"
            out["imageID"] = latest.image_ref or S.normalize_image(str(c.get("image") or ""))
        hint = "pending"
        waiting = self.waiting.get(name)
        if latest is not None and latest.state == pb.CONTAINER_RUNNING and st is not None:
            pr = self.probes.get(latest.id)
            out["state"] = {"running": {"startedAt": format_rfc3339(ns_to_s(st.started_at))}}
            out["ready"] = bool(pr.ready) if pr else False
            out["started"] = bool(pr.started) if pr else True
            if prev is not None and prev.state == pb.CONTAINER_EXITED:
                out["lastState"] = {"terminated": self.terminated(prev)}
            hint = "running"
        elif latest is not None and latest.state == pb.CONTAINER_EXITED and st is not None:
            term = self.terminated(st)
            restarts = wants_restart(self.pod, st, init)
            if name in self.in_backoff or (waiting and restarts):
                delay = int(self.backoff_delay(name))
                meta = self.pod["metadata"]
                out["state"] = {
                    "waiting": {
                        "reason": waiting[0] if waiting else "CrashLoopBackOff",
                        "message": waiting[1]
                        if waiting
                        else f"back-off {delay}s restarting failed container={name} "
                        f"pod={meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})",
                    }
                }
                out["lastState"] = {"terminated": term}
                hint = "running"
            elif restarts:
                out["state"] = {"waiting": {"reason": "ContainerCreating"}}
                out["lastState"] = {"terminated": term}
                hint = "running"
            else:
                out["state"] = {"terminated": term}
                if prev is not None and prev.state == pb.CONTAINER_EXITED:
                    out["lastState"] = {"terminated": self.terminated(prev)}
                hint = "done-ok" if st.exit_code == 0 else "done-failed"
                out["ready"] = init and st.exit_code == 0
        else:
            default = "PodInitializing" if initializing else "ContainerCreating"
            reason, message = waiting or (default, "")
            out["state"] = {
                "waiting": {"reason": reason, **({"message": message} if message else {})}
            }
            hint = "pending" if latest is None else "running"
        return out, hint


def gone_status(pod: Obj, node_ip: str) -> PodStatusParams:
    """The `pod_status` params that confirm that a pod this node runs nothing
    for (a deleted pod it never started, or lost track of) is terminated."""
    meta = pod.get("metadata") or {}
    now = now_rfc3339()
    return {
        "namespace": str(meta.get("namespace", "default")),
        "name": str(meta.get("name", "")),
        "uid": str(meta.get("uid", "")),
        "terminated": True,
        "status": {
            "phase": "Succeeded",
            "hostIP": node_ip,
            "conditions": [
                {"type": t, "status": "False" if t in ("Ready", "ContainersReady") else "True", "lastTransitionTime": now}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [
                {
                    "name": c.get("name", ""),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now}},
                }
                for c in (pod.get("spec") or {}).get("containers") or []
            ],
        },
    }  # fmt: skip
