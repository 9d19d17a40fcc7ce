"""The ingress proxy: one HAProxy (master-worker) serving the route table.

A new table is rendered (agent.ingress.haproxyconfig) and, when only endpoints
changed, applied through the runtime API; otherwise the candidate configuration
is checked with `haproxy -c`, renamed over the live one and HAProxy reloaded
gracefully (SIGUSR2 to the master: the new worker takes the listening sockets
over, the old one finishes its requests). A refused candidate leaves the old
configuration serving. HAProxy is restarted when it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from agent.network.nft import run_command

from .accesslog import AccessLog, LatencyWindow
from .haproxyconfig import FILE_KINDS, SOCKET_NAME, Plan, Settings, SlotState, render
from .routetable import RouteTable
from .runtime import HAProxyRuntimeError, RuntimeAPI
from .selfsigned import self_signed_pem

log = logging.getLogger(__name__)

READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
MAX_RESTART_DELAY = 30.0
# sun_path holds 108 bytes with the terminating NUL.
MAX_SOCKET_PATH = 107


class IngressError(RuntimeError):
    """HAProxy refused a configuration (the message is its check's; the old one
    keeps serving), or could not be started or reloaded."""


@dataclass(frozen=True, slots=True)
class RouteStats:
    requests: int  # since HAProxy (re)started
    requests_per_second: int  # over the last second
    http_5xx: int
    p99_ms: float | None = None  # over the access log's window; None: no request then


class IngressProxy:
    """`runtime_dir` holds the configuration, the stats socket,
    certificates and HAProxy's log; it must be private to this proxy."""

    def __init__(
        self, runtime_dir: Path, *, bind_address: str = "0.0.0.0", haproxy: str = "haproxy"
    ) -> None:
        socket_path = runtime_dir / SOCKET_NAME
        if len(str(socket_path)) > MAX_SOCKET_PATH:
            raise ValueError(f"runtime_dir: too long for a unix socket path: {runtime_dir}")
        self.runtime_dir = runtime_dir
        self.haproxy = haproxy
        self.config_path = runtime_dir / "haproxy.cfg"
        self.candidate_path = runtime_dir / "haproxy.cfg.candidate"
        self.pid_path = runtime_dir / "haproxy.pid"
        self.log_path = runtime_dir / "haproxy.log"
        self.runtime = RuntimeAPI(socket_path)
        self.latency = LatencyWindow()
        self.access_log = AccessLog(self.latency)
        self._settings = Settings(
            runtime_dir=runtime_dir,
            bind_address=bind_address,
            default_certificate=runtime_dir / "default.pem",
            log_fd=self.access_log.write_fd,
        )
        self.generation: int | None = None  # of the table HAProxy serves
        self.plan: Plan | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The master's pid while HAProxy runs (it stays the same across reloads)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def bind_address(self) -> str:
        return self._settings.bind_address

    @bind_address.setter
    def bind_address(self, address: str) -> None:
        """Takes effect with the next sync (a reload: the new worker binds it)."""
        self._settings = replace(self._settings, bind_address=address)

    async def sync(self, table: RouteTable) -> None:
        """Serves `table` once this returns; IngressError when HAProxy refuses it."""
        async with self._lock:
            if self._closed:
                raise IngressError("the ingress proxy is closed")
            plan = render(table, self._settings, self.plan)
            if not await self._update_in_place(plan):
                await self._install(plan)
                if self._running():
                    await self._reload()
                else:
                    await self._start()
                await asyncio.to_thread(_prune, self.runtime_dir, plan)
            self.plan = plan
            self.generation = table.generation
            self.latency.retain(plan.backends)

    async def stats(self) -> dict[str, RouteStats]:
        """Per route name, from `show stat` (a route in two frontends: summed);
        HAProxyRuntimeError when HAProxy does not answer."""
        backends = self.plan.backends if self.plan else {}
        by_route: dict[str, list[str]] = {}
        for backend, name in backends.items():
            by_route.setdefault(name, []).append(backend)
        out: dict[str, RouteStats] = {}
        for row in await self.runtime.show_stat():
            route = backends.get(row.proxy)
            if route is None or row.name != "BACKEND":
                continue
            seen = out.get(route, RouteStats(0, 0, 0))
            out[route] = RouteStats(
                requests=seen.requests + row.requests,
                requests_per_second=seen.requests_per_second + row.rate,
                http_5xx=seen.http_5xx + row.http_5xx,
                p99_ms=self.latency.percentile(by_route[route]),
            )
        return out

    async def close(self) -> None:
        """Stops HAProxy (its workers end with the master)."""
        async with self._lock:
            self._closed = True
            if self._supervisor is not None:
                self._supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._supervisor
            proc = self._proc
            if proc is not None and proc.returncode is None:
                proc.terminate()
                try:
                    async with asyncio.timeout(STOP_TIMEOUT):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            if self._log is not None:
                self._log.close()
            await self.access_log.close()

    # --- changes ----------------------------------------------------------------

    async def _update_in_place(self, plan: Plan) -> bool:
        """Applies an endpoint-only change through the runtime API; False when a
        reload is needed (a structural change, or the runtime API failed)."""
        old = self.plan
        if old is None or not self._running() or plan.structure != old.structure:
            return False
        if plan.config != old.config:
            try:
                for key, state in plan.slots.items():
                    await self._set_slot(key, old.slots[key], state)
            except HAProxyRuntimeError as e:
                log.warning("ingress: runtime API failed, reloading instead: %s", e)
                return False
            # For a restart; HAProxy reads it only then, and its structure was checked.
            await asyncio.to_thread(_write_atomic, self.config_path, plan.config)
        return True

    async def _set_slot(self, key: tuple[str, str], old: SlotState, new: SlotState) -> None:
        backend, server = key
        if new == old:
            return
        if not new.enabled:
            if old.enabled:
                await self.runtime.set_server_state(backend, server, "maint")
            return
        if (new.ip, new.port) != (old.ip, old.port):
            await self.runtime.set_server_addr(backend, server, new.ip, new.port)
        if new.weight != old.weight:
            await self.runtime.set_weight(backend, server, new.weight)
        if not old.enabled:
            await self.runtime.set_server_state(backend, server, "ready")

    async def _install(self, plan: Plan) -> None:
        """Writes the candidate and its files, checks it, and renames it over the
        live configuration; IngressError with HAProxy's message if refused."""
        await asyncio.to_thread(self._write_files, plan)
        code, out, err = await run_command([self.haproxy, "-c", "-f", str(self.candidate_path)])
        if code != 0:
            lines = (err or out).splitlines()
            message = "\n".join([line for line in lines if "ALERT" in line] or lines[-10:])
            raise IngressError(f"haproxy refused the configuration: {message}")
        os.replace(self.candidate_path, self.config_path)

    def _write_files(self, plan: Plan) -> None:
        default = self._settings.default_certificate
        if default is not None and not default.exists():
            _write_atomic(default, self_signed_pem())
        for path, content in plan.files.items():
            if not path.exists():
                _write_atomic(path, content)
        _write_atomic(self.candidate_path, plan.config)

    # --- the process --------------------------------------------------------------

    def _running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def _start(self) -> None:
        if self._proc is None:
            await self._stop_stale()
        if self._log is None:
            self._log = self.log_path.open("ab")
        await self.access_log.open()
        argv = [self.haproxy, "-W", "-db", "-f", str(self.config_path), "-p", str(self.pid_path)]
        self._proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            pass_fds=(self.access_log.write_fd,),
        )
        log.info("ingress: haproxy started, pid %d", self._proc.pid)
        await self._wait_worker(None)
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise())

    async def _stop_stale(self) -> None:
        """Stops the HAProxy a previous agent left running on our configuration
        (its pid file names it), which holds the ports."""
        pid = await asyncio.to_thread(_left_running, self.pid_path, self.config_path)
        if pid is None:
            return
        log.warning("ingress: stopping the haproxy a previous agent left, pid %d", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(int(STOP_TIMEOUT / 0.1)):
                await asyncio.sleep(0.1)
                os.kill(pid, 0)
            os.kill(pid, signal.SIGKILL)

    async def _reload(self) -> None:
        assert self._proc is not None
        try:
            old = await self.runtime.worker_pid()
        except HAProxyRuntimeError as e:
            raise IngressError(f"haproxy does not answer, cannot reload: {e}") from None
        self._proc.send_signal(signal.SIGUSR2)
        await self._wait_worker(old)

    async def _wait_worker(self, old: int | None) -> None:
        """Until a worker other than `old` answers on the stats socket."""
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                while True:
                    if not self._running():
                        raise IngressError(f"haproxy exited: {self._log_tail()}")
                    with contextlib.suppress(HAProxyRuntimeError):
                        if await self.runtime.worker_pid() != old:
                            return
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise IngressError(f"haproxy did not get ready: {self._log_tail()}") from None

    async def _supervise(self) -> None:
        """Restarts HAProxy when it dies, with the live configuration."""
        delay = 1.0
        while True:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            log.warning("ingress: haproxy exited (%s), restarting in %.0fs", code, delay)
            await asyncio.sleep(delay)
            async with self._lock:
                if self._closed:
                    return
                if self._running():  # a sync started it meanwhile
                    continue
                try:
                    await self._start()
                    delay = 1.0
                except IngressError as e:
                    log.error("ingress: %s", e)
                    delay = min(delay * 2, MAX_RESTART_DELAY)

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-10:])


def _left_running(pid_path: Path, config_path: Path) -> int | None:
    """The pid in the pid file if that process is a HAProxy on `config_path`."""
    try:
        pid = int(pid_path.read_text().split()[0])
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    return pid if str(config_path).encode() in argv else None


def _prune(runtime_dir: Path, plan: Plan) -> None:
    """Removes the certificate and crt-list files the live configuration no
    longer names."""
    for kind in FILE_KINDS:
        for path in (runtime_dir / kind).glob("*"):
            if path not in plan.files:
                path.unlink(missing_ok=True)


def _write_atomic(path: Path, text: str) -> None:
    """Writes a file readable by its owner only (certificates hold keys)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
