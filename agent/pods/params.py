"""What the pod requests of the protocol ask for, checked the same way by the
agent and the hollow agent: the desired pods of `sync_pods`, the container of
`logs`, `exec` and `attach`, the command and session of `exec`, the session
of `attach`."""

from __future__ import annotations

from agent.protocol import NOT_FOUND, InvalidParams, NotSupported, Params, RpcError

from .sessions import Sessions
from .spec import Obj


def desired_pods(params: Params) -> dict[str, Obj]:
    """`sync_pods`' pods by uid, each shaped as the API serves pods."""
    pods = params.get("pods")
    if not isinstance(pods, list):
        raise InvalidParams("pods: expected an array of pods")
    desired: dict[str, Obj] = {}
    for i, pod in enumerate(pods):
        problem = _pod_problem(pod)
        if problem:
            raise InvalidParams(f"pods[{i}]: {problem}")
        desired[pod["metadata"]["uid"]] = pod
    return desired


def _pod_problem(pod: object) -> str | None:
    """What makes `pod` no pod the API would serve, in the fields every pod
    worker reads; None when it is one."""
    if not isinstance(pod, dict):
        return "expected an object"
    meta, spec = pod.get("metadata"), pod.get("spec")
    if not isinstance(meta, dict) or not meta.get("uid") or not isinstance(meta["uid"], str):
        return "every pod needs metadata.uid"
    if not all(isinstance(meta.get(f), str) for f in ("name", "namespace")):
        return "metadata.name and metadata.namespace must be strings"
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not isinstance(containers, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name"), str) for c in containers
    ):
        return "spec.containers must be an array of objects with a name"
    return None


def container_name(pod: Obj, wanted: object) -> str:
    """The container a `logs` or `exec` request names, or else the pod's only one."""
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    pod_name = (pod.get("metadata") or {}).get("name")
    if wanted:
        if wanted not in names:
            raise RpcError(NOT_FOUND, f"container {wanted} is not valid for pod {pod_name}")
        return str(wanted)
    if len(names) == 1:
        return str(names[0])
    raise InvalidParams(
        f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(names)}]"
    )


def exec_command(params: Params, sessions: Sessions) -> tuple[list[str], str | None]:
    """An `exec`'s command, and its session id: None when it runs to completion."""
    command = params.get("command")
    if not isinstance(command, list) or not command:
        raise InvalidParams("command: a non-empty array is required")
    session = params.get("session")
    if session is not None:
        session = sessions.check_new(session)
    elif params.get("tty") or params.get("stdin"):
        raise NotSupported("stdin and tty need an interactive session")
    return [str(c) for c in command], session


def attach_session(params: Params, sessions: Sessions) -> str:
    """An `attach`'s session id: an attach is always an interactive session."""
    if params.get("session") is None:
        raise InvalidParams("session: an attach needs an interactive session id")
    return sessions.check_new(params.get("session"))
