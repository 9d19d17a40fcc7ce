"""The async API client that the CLI and the console share.

It talks to a pilothouse (or any Kubernetes) API server over a unix socket
(`unix:///path/api.sock`, or a bare path) or HTTPS with a bearer token. Errors
come back as `ApiError`, carrying the server's Status.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import aiohttp
import orjson

from control.errors import ApiError
from control.kubeconfig import client_ssl_context
from control.objects.kinds import POD, ResourceType
from control.wire import IMAGE_IMPORT_PATH, INGRESS_STATS_PATH

if TYPE_CHECKING:
    from control import execclient

JSON = "application/json"
METRICS = "/apis/metrics.k8s.io/v1beta1"
_UPLOAD_CHUNK = 256 * 1024
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


class ClusterUnreachable(Exception):
    """The API server did not answer at all."""


class RequestOptions(TypedDict, total=False):
    """A request's query, body (sent as JSON) and content type (JSON by default)."""

    params: dict[str, str] | None
    body: Any
    content_type: str


class LogOptions(TypedDict, total=False):
    """Which of a container's log to read."""

    container: str | None
    tail_lines: int | None
    since_seconds: int | None
    timestamps: bool


def _log_params(
    options: LogOptions, *, follow: bool = False, previous: bool = False
) -> dict[str, str]:
    """`GET pods/{name}/log`'s query."""
    params: dict[str, str] = {}
    if options.get("container"):
        params["container"] = str(options["container"])
    if follow:
        params["follow"] = "true"
    if previous:
        params["previous"] = "true"
    if (tail_lines := options.get("tail_lines")) is not None:
        params["tailLines"] = str(tail_lines)
    if (since_seconds := options.get("since_seconds")) is not None:
        params["sinceSeconds"] = str(since_seconds)
    if options.get("timestamps"):
        params["timestamps"] = "true"
    return params


class Client:
    def __init__(
        self,
        server: str,
        *,
        ca_pem: bytes | None = None,
        token: str | None = None,
        insecure: bool = False,
    ) -> None:
        self.server = server
        self._headers = {"Accept": JSON}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if server.startswith(("unix://", "/")):
            self._socket: str | None = server.removeprefix("unix://")
            self._base = "http://localhost"
            self._ssl: ssl.SSLContext | bool = False
        else:
            self._socket = None
            self._base = server.rstrip("/")
            self._ssl = client_ssl_context(ca_pem, insecure=insecure)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector
            if self._socket is not None:
                connector = aiohttp.UnixConnector(path=self._socket, limit=64)
            else:
                connector = aiohttp.TCPConnector(ssl=self._ssl, limit=64)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                json_serialize=lambda o: orjson.dumps(o).decode(),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- raw requests --------------------------------------------------------

    async def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> Any:
        """One request's decoded answer; an error status raises."""
        return _decode(*await self.request_raw(method, path, **options))

    async def request_raw(
        self, method: str, path: str, **options: Unpack[RequestOptions]
    ) -> tuple[int, bytes]:
        """The status and undecoded body of one request."""
        body = options.get("body")
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": options.get("content_type", JSON)} if data is not None else None
        try:
            async with self._sess().request(
                method, self._base + path, params=options.get("params"), data=data, headers=headers
            ) as resp:
                return resp.status, await resp.read()
        except aiohttp.ClientConnectionError as e:
            raise ClusterUnreachable(f"cannot reach the API server at {self.server}: {e}") from e

    async def _object(
        self, method: str, path: str, **options: Unpack[RequestOptions]
    ) -> dict[str, Any]:
        """`request`, for the answers that are a JSON object (all but a log's)."""
        result: dict[str, Any] = await self.request(method, path, **options)
        return result

    # -- typed helpers -------------------------------------------------------

    @staticmethod
    def path(
        rt: ResourceType, namespace: str | None, name: str | None = None, sub: str = ""
    ) -> str:
        p = rt.base_path(namespace if rt.namespaced else None)
        if name:
            p += f"/{name}"
            if sub:
                p += f"/{sub}"
        return p

    async def get(
        self, rt: ResourceType, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        return await self._object("GET", self.path(rt, namespace, name))

    async def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        params = _selector_params(label_selector, field_selector)
        if limit:
            params["limit"] = str(limit)
        if continue_token:
            params["continue"] = continue_token
        return await self._object("GET", self.path(rt, namespace), params=params)

    async def create(
        self, rt: ResourceType, obj: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        ns = namespace or (obj.get("metadata") or {}).get("namespace") or "default"
        return await self._object("POST", self.path(rt, ns), body=obj)

    async def replace(
        self, rt: ResourceType, obj: dict[str, Any], *, sub: str = ""
    ) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        path = self.path(rt, meta.get("namespace") or "default", meta["name"], sub)
        return await self._object("PUT", path, body=obj)

    async def patch(
        self,
        rt: ResourceType,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        sub: str = "",
    ) -> dict[str, Any]:
        return await self._object(
            "PATCH",
            self.path(rt, namespace, name, sub),
            body=patch,
            content_type=PATCH_TYPES[patch_type],
        )

    async def delete(
        self, rt: ResourceType, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        return await self._object("DELETE", self.path(rt, namespace, name))

    async def scale(
        self, rt: ResourceType, name: str, replicas: int, namespace: str | None = None
    ) -> dict[str, Any]:
        return await self.patch(rt, name, {"spec": {"replicas": replicas}}, namespace, sub="scale")

    async def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield (type, object) pairs. An ERROR event raises ApiError (410 when too old)."""
        params = _selector_params(label_selector, field_selector)
        params["watch"] = "1"
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        if timeout_seconds:
            params["timeoutSeconds"] = str(timeout_seconds)
        try:
            async with self._sess().get(
                self._base + self.path(rt, namespace), params=params
            ) as resp:
                if resp.status >= 400:
                    _decode(resp.status, await resp.read())
                async for line in resp.content:
                    if not line.strip():
                        continue
                    event = orjson.loads(line)
                    if event.get("type") == "ERROR":
                        obj = event.get("object") or {}
                        raise ApiError.from_status(obj, int(obj.get("code") or 500))
                    yield event["type"], event["object"]
        except aiohttp.ClientPayloadError:
            # The server cut the stream (a watch whose client fell behind): it
            # ends here, and the caller watches again from its last resourceVersion.
            return
        except aiohttp.ClientConnectionError as e:
            raise ClusterUnreachable(f"cannot reach the API server at {self.server}: {e}") from e

    # -- pods on their nodes ---------------------------------------------------

    async def logs(
        self,
        name: str,
        namespace: str = "default",
        *,
        previous: bool = False,
        **options: Unpack[LogOptions],
    ) -> str:
        """A container's log as text (`GET pods/{name}/log`)."""
        params = _log_params(options, previous=previous)
        status, raw = await self.request_raw(
            "GET", self.path(POD, namespace, name, "log"), params=params
        )
        if status >= 400:
            _decode(status, raw)
        return raw.decode("utf-8", errors="replace")

    async def follow_logs(
        self, name: str, namespace: str = "default", **options: Unpack[LogOptions]
    ) -> AsyncGenerator[str, None]:
        """A container's log, then its new lines as they come, until the
        container ends (`GET pods/{name}/log?follow=true`)."""
        params = _log_params(options, follow=True)
        try:
            async with self._sess().get(
                self._base + self.path(POD, namespace, name, "log"), params=params
            ) as resp:
                if resp.status >= 400:
                    _decode(resp.status, await resp.read())
                async for line in resp.content:
                    yield line.decode("utf-8", errors="replace")
        except aiohttp.ClientConnectionError as e:
            raise ClusterUnreachable(f"cannot reach the API server at {self.server}: {e}") from e

    async def exec(
        self,
        name: str,
        command: builtins.list[str],
        namespace: str = "default",
        *,
        container: str | None = None,
        timeout_seconds: int = 0,
    ) -> dict[str, Any]:
        """Run a command in a pod's container to completion: {stdout, stderr,
        exitCode}. `POST pods/{name}/exec` is a pilothouse extension."""
        body: dict[str, Any] = {"command": command}
        if container:
            body["container"] = container
        if timeout_seconds:
            body["timeoutSeconds"] = timeout_seconds
        return await self._object("POST", self.path(POD, namespace, name, "exec"), body=body)

    @contextlib.asynccontextmanager
    async def exec_stream(
        self,
        name: str,
        command: builtins.list[str],
        namespace: str = "default",
        *,
        container: str | None = None,
        stdin: bool = False,
        tty: bool = False,
    ) -> AsyncIterator[execclient.ExecConnection]:
        """An interactive exec: Kubernetes' `pods/{name}/exec` WebSocket."""
        params = [("command", c) for c in command]
        params += [("stdin", str(stdin).lower()), ("stdout", "true"), ("tty", str(tty).lower())]
        params.append(("stderr", str(not tty).lower()))
        if container:
            params.append(("container", container))
        url = self._base + self.path(POD, namespace, name, "exec")
        # Here, not at the top: only exec needs the stream protocol, and every
        # CLI command imports this module.
        from control import execclient

        try:
            async with execclient.connect(self._sess(), url, params) as conn:
                yield conn
        except aiohttp.ClientConnectionError as e:
            raise ClusterUnreachable(f"cannot reach the API server at {self.server}: {e}") from e

    async def node_metrics(self) -> dict[str, Any]:
        """NodeMetricsList from metrics.k8s.io/v1beta1."""
        return await self._object("GET", f"{METRICS}/nodes")

    async def pod_metrics(self, namespace: str | None = "default") -> dict[str, Any]:
        """PodMetricsList from metrics.k8s.io/v1beta1; all namespaces when None."""
        path = f"{METRICS}/namespaces/{namespace}/pods" if namespace else f"{METRICS}/pods"
        return await self._object("GET", path)

    async def ingress_stats(self) -> dict[str, Any]:
        """The ingress proxies' traffic per route name, merged over the ingress
        nodes that answered: {"nodes": [...], "routes": {name: RouteStatsWire}}.
        A pilothouse extension."""
        return await self._object("GET", INGRESS_STATS_PATH)

    # -- images ----------------------------------------------------------------

    async def import_image(
        self, archive: Path, nodes: Sequence[str] = ()
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Upload an image archive to the nodes (all Ready ones when none are
        named) and yield the server's progress events as they come (see
        control.api.images). A pilothouse extension."""
        f = await asyncio.to_thread(archive.open, "rb")
        size = await asyncio.to_thread(os.fstat, f.fileno())

        async def body() -> AsyncIterator[bytes]:
            # A generator rather than the file itself: aiohttp stops sending a
            # file body once the server starts its answer, as this one does.
            while data := await asyncio.to_thread(f.read, _UPLOAD_CHUNK):
                yield data

        try:
            async with self._sess().post(
                self._base + IMAGE_IMPORT_PATH,
                params=[("node", n) for n in nodes],
                data=body(),
                headers={
                    "Content-Type": "application/x-tar",
                    "Content-Length": str(size.st_size),
                },
            ) as resp:
                if resp.status >= 400:
                    _decode(resp.status, await resp.read())
                async for line in resp.content:
                    if line.strip():
                        yield orjson.loads(line)
        except aiohttp.ClientConnectionError as e:
            raise ClusterUnreachable(f"cannot reach the API server at {self.server}: {e}") from e
        except aiohttp.ClientPayloadError as e:
            raise ClusterUnreachable(f"the API server at {self.server} broke off: {e}") from e
        finally:
            f.close()


def _selector_params(label: str | None, field: str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if label:
        params["labelSelector"] = label
    if field:
        params["fieldSelector"] = field
    return params


def _decode(status: int, raw: bytes) -> Any:
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        body = None
    if status >= 400:
        if isinstance(body, dict) and body.get("kind") == "Status":
            raise ApiError.from_status(body, status)
        text = raw.decode(errors="replace").strip()[:200]
        raise ApiError(status, "Unknown", f"HTTP {status}: {text}")
    if body is None:
        raise ApiError(status, "InvalidResponse", "the server sent a body that is not JSON")
    return body
