"""Liveness, readiness and startup probes: exec, httpGet and tcpSocket.

HTTP and TCP probes run from the agent, which lives in the node's network
namespace, to the pod IP. Defaults follow Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .spec import Obj

log = logging.getLogger(__name__)

ExecFn = Callable[[list[str], int], Awaitable[int]]


@dataclass
class ProbeSpec:
    kind: str  # liveness, readiness, startup
    handler: Obj
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def parse(cls, kind: str, probe: Obj | None) -> ProbeSpec | None:
        if not probe:
            return None
        return cls(
            kind=kind,
            handler=probe,
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(probe.get("periodSeconds") or 10),
            timeout=float(probe.get("timeoutSeconds") or 1),
            success_threshold=int(probe.get("successThreshold") or 1),
            failure_threshold=int(probe.get("failureThreshold") or 3),
        )


def _port(value: object, container: Obj) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    for p in container.get("ports") or []:
        if p.get("name") == value:
            return int(p["containerPort"])
    raise ValueError(f"unknown port {value!r}")


async def http_get(
    host: str, port: int, path: str, headers: list[Obj], scheme: str, limit: float
) -> tuple[bool, str]:
    ctx: ssl.SSLContext | None = None
    if scheme.upper() == "HTTPS":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    async with asyncio.timeout(limit):
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
        try:
            hdrs = {"Host": f"{host}:{port}", "User-Agent": "pilothouse-probe/1.0", "Accept": "*/*"}
            for h in headers:
                hdrs[str(h.get("name"))] = str(h.get("value", ""))
            req = f"GET {path or '/'} HTTP/1.1\r\n"
            req += "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
            req += "Connection: close\r\n\r\n"
            writer.write(req.encode())
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    parts = status_line.decode(errors="replace").split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return False, f"bad HTTP response {status_line[:80]!r}"
    code = int(parts[1])
    return 200 <= code < 400, f"HTTP probe failed with statuscode: {code}"


async def tcp_connect(host: str, port: int, limit: float) -> tuple[bool, str]:
    async with asyncio.timeout(limit):
        _, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True, ""


async def run_once(
    spec: ProbeSpec, container: Obj, pod_ip: str, exec_fn: ExecFn
) -> tuple[bool, str]:
    """One probe attempt: (success, message)."""
    h = spec.handler
    try:
        if "exec" in h:
            cmd = [str(c) for c in (h["exec"].get("command") or [])]
            code = await exec_fn(cmd, max(1, int(spec.timeout)))
            return code == 0, f"command {cmd!r} exited with {code}"
        if "httpGet" in h:
            g = h["httpGet"]
            host = str(g.get("host") or pod_ip)
            port = _port(g.get("port"), container)
            return await http_get(
                host,
                port,
                str(g.get("path") or "/"),
                list(g.get("httpHeaders") or []),
                str(g.get("scheme") or "HTTP"),
                spec.timeout,
            )
        if "tcpSocket" in h:
            t = h["tcpSocket"]
            return await tcp_connect(
                str(t.get("host") or pod_ip), _port(t.get("port"), container), spec.timeout
            )
        if "grpc" in h:
            return False, "grpc probes are not supported"
    except TimeoutError:
        return False, f"{spec.kind} probe timed out after {spec.timeout:g}s"
    except Exception as e:  # an exec into a stopping container, a refused connection...
        return False, f"{spec.kind} probe failed: {e}"
    return False, "probe has no handler"


class ContainerProbes:
    """Runs one running container's probes; the pod worker reads the results."""

    def __init__(
        self,
        container: Obj,
        pod_ip: str,
        exec_fn: ExecFn,
        on_change: Callable[[], None],
        started_at: float | None = None,
    ) -> None:
        self.container = container
        self.pod_ip = pod_ip
        self.exec_fn = exec_fn
        self.on_change = on_change
        self.started_at = started_at if started_at is not None else time.time()
        self.startup = ProbeSpec.parse("startup", container.get("startupProbe"))
        self.liveness = ProbeSpec.parse("liveness", container.get("livenessProbe"))
        self.readiness = ProbeSpec.parse("readiness", container.get("readinessProbe"))
        self.started = self.startup is None
        self.ready = self.readiness is None and self.started
        self.live = True
        self.message = ""
        self._tasks: list[asyncio.Task[None]] = []

    async def prime(self) -> None:
        """One startup and readiness attempt now: a restarted agent adopting a
        running container reports it ready at once instead of blipping."""
        for spec in (self.startup, self.readiness):
            if spec is None or spec.success_threshold > 1:
                continue
            if spec.kind == "readiness" and not self.started:
                continue
            ok, _ = await run_once(spec, self.container, self.pod_ip, self.exec_fn)
            if ok:
                self._record(spec, ok, 1, 0, "")

    def start(self) -> None:
        for spec in (self.startup, self.liveness, self.readiness):
            if spec is not None:
                self._tasks.append(asyncio.create_task(self._loop(spec)))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    async def _loop(self, spec: ProbeSpec) -> None:
        delay = self.started_at + spec.initial_delay - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        successes = failures = 0
        while True:
            if spec.kind != "startup" and not self.started:
                await asyncio.sleep(min(spec.period, 1.0))
                continue
            ok, msg = await run_once(spec, self.container, self.pod_ip, self.exec_fn)
            if ok:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
                log.info("%s: %s", self.container.get("name"), msg)
            self._record(spec, ok, successes, failures, msg)
            if spec.kind == "startup" and self.started:
                return
            await asyncio.sleep(spec.period)

    def _record(self, spec: ProbeSpec, ok: bool, successes: int, failures: int, msg: str) -> None:
        before = (self.started, self.ready, self.live)
        if spec.kind == "startup":
            if ok and successes >= spec.success_threshold:
                self.started = True
                if self.readiness is None:
                    self.ready = True
            elif failures >= spec.failure_threshold:
                self.live = False
                self.message = f"Startup probe failed: {msg}"
        elif spec.kind == "liveness":
            if failures >= spec.failure_threshold:
                self.live = False
                self.message = f"Liveness probe failed: {msg}"
        elif spec.kind == "readiness":
            if ok and successes >= spec.success_threshold:
                self.ready = True
            elif failures >= spec.failure_threshold:
                self.ready = False
        if (self.started, self.ready, self.live) != before:
            self.on_change()
