"""Pods on their nodes: logs, exec and attach, proxied to the node agent that runs the pod."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiohttp import web

from agent.protocol import (
    INVALID_PARAMS,
    NOT_FOUND,
    NOT_SUPPORTED,
    AttachParams,
    ExecParams,
    LogsParams,
    RpcError,
)
from control import errors
from control.api import execws
from control.api.agents import AgentLink, NodeAgents
from control.api.auth import ROLE, forbidden
from control.api.bodies import decode, read_body
from control.api.query import TRUE, int_param
from control.api.registry import Registry
from control.api.responses import json_response
from control.api.roles import resource_decision
from control.api.routing import Target
from control.errors import ApiError
from control.objects.kinds import POD

log = logging.getLogger(__name__)

TEXT = "text/plain"


class PodProxy:
    def __init__(self, registry: Registry, nodes: NodeAgents | None) -> None:
        """Without `nodes`, logs and exec answer 503."""
        self.registry = registry
        self.nodes = nodes

    async def _pod_link(self, ns: str, name: str) -> tuple[dict[str, Any], AgentLink, str]:
        """The pod, the link to its node and the node's name; 400 when the pod
        is not bound to a node or there is no link to it."""
        pod = (await self.registry.get(POD, ns, name)).obj
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            raise errors.bad_request(f"pod {name} does not have a host assigned")
        if self.nodes is None:
            raise ApiError(503, "ServiceUnavailable", "this API server has no node links")
        link = self.nodes.link(node)
        if link is None:
            raise errors.bad_request(f"node {node} of pod {name} has no link to its agent")
        return pod, link, node

    async def log(self, request: web.Request, target: Target) -> web.StreamResponse:
        """`GET pods/{name}/log` with Kubernetes' query parameters; text/plain.
        With follow, chunks are written as they come until the container ends
        or the client goes away."""
        ns, name = _pod(target)
        q = request.query
        pod, link, node = await self._pod_link(ns, name)
        params = LogsParams(namespace=ns, name=name)
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            params["uid"] = uid
        params["container"] = _pick_container(pod, q.get("container"), init=True)
        if q.get("tailLines") not in (None, ""):
            params["tailLines"] = int_param(q, "tailLines", 0)
        if q.get("sinceSeconds") not in (None, ""):
            since = int_param(q, "sinceSeconds", 0)
            if since < 1:
                raise errors.bad_request("sinceSeconds: must be greater than 0")
            params["sinceSeconds"] = since
        if q.get("timestamps") in TRUE:
            params["timestamps"] = True
        if q.get("previous") in TRUE:
            params["previous"] = True
        if q.get("follow") not in TRUE or params.get("previous"):
            try:
                result = await link.logs(params)
            except (RpcError, ConnectionError, TimeoutError) as e:
                raise _agent_error(e, node) from e
            return web.Response(text=result.get("data", ""), content_type=TEXT, charset="utf-8")
        chunks = link.follow_logs(params)
        try:
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                first = ""
            except (RpcError, ConnectionError, TimeoutError) as e:
                raise _agent_error(e, node) from e
            resp = web.StreamResponse(
                headers={"Content-Type": f"{TEXT}; charset=utf-8", "Cache-Control": "no-cache"}
            )
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            if first:
                await resp.write(first.encode())
            try:
                async for chunk in chunks:
                    await resp.write(chunk.encode())
            except (RpcError, ConnectionError, TimeoutError) as e:
                if isinstance(e, ConnectionResetError):
                    raise
                log.info("log stream of %s/%s from node %s ended: %s", ns, name, node, e)
            with contextlib.suppress(ConnectionResetError):
                await resp.write_eof()
            return resp
        finally:
            await chunks.aclose()

    async def exec(self, request: web.Request, target: Target) -> web.StreamResponse:
        """`POST pods/{name}/exec`, a pilothouse extension: Kubernetes streams
        exec over a WebSocket; this runs one command to completion. The body
        is {"command": [...], "container": "...", "timeoutSeconds": N}; the
        answer is {"stdout": ..., "stderr": ..., "exitCode": N}."""
        ns, name = _pod(target)
        content_type, raw = await read_body(request)
        if not raw and "command" in request.query:
            # Kubernetes' own exec, without the WebSocket upgrade it needs.
            await self.registry.get(POD, ns, name)
            raise errors.bad_request(
                "Upgrade request required: exec with query parameters runs over a WebSocket "
                '(v4.channel.k8s.io); or POST a JSON body {"command": [...]} to run one command'
            )
        if not raw:
            raise errors.bad_request("the request has no body")
        body = decode(content_type, raw)
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be an object with a command")
        command = body.get("command")
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(c, str) for c in command)
        ):
            raise errors.bad_request("command: a non-empty array of strings is required")
        container = body.get("container")
        if container is not None and not isinstance(container, str):
            raise errors.bad_request("container: must be a string")
        timeout = body.get("timeoutSeconds", 0)
        if not isinstance(timeout, int) or timeout < 0:
            raise errors.bad_request("timeoutSeconds: must be an integer >= 0")
        pod, link, node = await self._pod_link(ns, name)
        params = ExecParams(
            namespace=ns, name=name, command=command, container=_pick_container(pod, container)
        )
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            params["uid"] = uid
        if timeout:
            params["timeoutSeconds"] = timeout
        try:
            # The agent enforces timeoutSeconds; the request waits a little longer.
            result = await link.exec(params, timeout=(timeout + 10) if timeout else None)
        except (RpcError, ConnectionError, TimeoutError) as e:
            raise _agent_error(e, node) from e
        return json_response(
            {
                "stdout": result.get("stdout", ""),
                "stderr": result.get("stderr", ""),
                "exitCode": int(result.get("exitCode", 0)),
            }
        )

    async def exec_stream(self, request: web.Request, target: Target) -> web.StreamResponse:
        """Kubernetes' exec: `GET`/`POST pods/{name}/exec?command=..` upgraded
        to a WebSocket (see control.api.execws). Admin only: a shell can change
        anything the pod can reach. An error before the upgrade is a Status,
        also summed up in headers (WebSocket clients rarely read the body)."""
        return await self._stream(request, target, "exec")

    async def attach_stream(self, request: web.Request, target: Target) -> web.StreamResponse:
        """Kubernetes' attach: `GET`/`POST pods/{name}/attach?stdin=..&tty=..`
        upgraded to a WebSocket, on the container's main process. Admin only,
        as exec is."""
        return await self._stream(request, target, "attach")

    async def upgrade_required(self, request: web.Request, target: Target) -> web.StreamResponse:
        """An attach without the WebSocket upgrade it needs."""
        await self.registry.get(POD, *_pod(target))
        raise errors.bad_request(
            "Upgrade request required: attach runs over a WebSocket (v4.channel.k8s.io)"
        )

    async def _stream(self, request: web.Request, target: Target, sub: str) -> web.StreamResponse:
        ns, name = _pod(target)
        try:
            session, opts, what = await self._open_stream(request, ns, name, sub)
        except ApiError as e:
            return execws.refuse(e)
        return await execws.serve(request, session, opts, what)

    async def _open_stream(
        self, request: web.Request, ns: str, name: str, sub: str
    ) -> tuple[execws.ExecStream, execws.ExecOptions, str]:
        if not resource_decision(request.get(ROLE) or "", "create", "", "pods", sub)[0]:
            raise forbidden(request, "create", Target(POD, ns, name, sub))
        exec_opts = execws.exec_options(request) if sub == "exec" else None
        pod, link, node = await self._pod_link(ns, name)
        uid = (pod.get("metadata") or {}).get("uid")
        try:
            if exec_opts is not None:
                opts = exec_opts
                params = ExecParams(
                    namespace=ns,
                    name=name,
                    command=opts.command,
                    container=_pick_container(pod, opts.container),
                    stdin=opts.stdin,
                    tty=opts.tty,
                )
                if uid:
                    params["uid"] = uid
                session = await link.exec_session(params)
            else:
                picked = _pick_container(pod, request.query.get("container") or None)
                spec = next(c for c in pod["spec"]["containers"] if c.get("name") == picked)
                opts = execws.attach_options(request, spec)
                attach = AttachParams(
                    namespace=ns, name=name, container=picked, stdin=opts.stdin, tty=opts.tty
                )
                if uid:
                    attach["uid"] = uid
                session = await link.attach_session(attach)
        except (RpcError, ConnectionError, TimeoutError) as e:
            raise _agent_error(e, node) from e
        return session, opts, f"{sub} of pod {ns}/{name} on node {node}"


def _pod(target: Target) -> tuple[str, str]:
    return target.namespace or "default", str(target.name)


def _pick_container(pod: dict[str, Any], name: str | None, *, init: bool = False) -> str:
    """The container a log or exec request means, checked as Kubernetes does."""
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    pod_name = (pod.get("metadata") or {}).get("name")
    if name:
        known = names + ([c.get("name") for c in spec.get("initContainers") or []] if init else [])
        if name not in known:
            raise errors.bad_request(f"container {name} is not valid for pod {pod_name}")
        return name
    if len(names) == 1:
        return str(names[0])
    raise errors.bad_request(
        f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(map(str, names))}]"
    )


def _agent_error(e: Exception, node: str) -> ApiError:
    """An agent's answer, or its absence, as an API error."""
    if isinstance(e, RpcError):
        if e.code in (NOT_FOUND, INVALID_PARAMS, NOT_SUPPORTED):
            return errors.bad_request(e.message)
        return ApiError(500, "InternalError", f"node {node}: {e.message}")
    if isinstance(e, TimeoutError):
        return ApiError(504, "Timeout", f"node {node} did not answer in time")
    return errors.bad_request(f"node {node} is not reachable: {e}")
