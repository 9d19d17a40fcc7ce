"""The SSH transport: asyncssh to a node, then the agent command over the session.

Host keys are always checked against the configured known_hosts file; a
missing or mismatched key fails with a message naming the host and the file.
Client keys come from `ssh.identity_files` and, with `ssh.use_agent`, from the
ssh-agent at $SSH_AUTH_SOCK. Keepalives detect a dead link.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from control.config import Config, NodeConfig, SshConfig
from control.nodes.transport import Channel, TransportError

log = logging.getLogger(__name__)
# asyncssh logs every connection step at INFO; keep its warnings only, unless configured.
if logging.getLogger("asyncssh").level == logging.NOTSET:
    logging.getLogger("asyncssh").setLevel(logging.WARNING)

KEEPALIVE_COUNT_MAX = 3


class HostKeyError(TransportError):
    """The node's host key is not in known_hosts, or does not match it."""


class AuthError(TransportError):
    """The node refused every client key."""


def host_key_problem(known_hosts: Path, host: str, port: int) -> str:
    """Why the host key was not trusted, for the operator, with the fix."""
    name = host if port == 22 else f"[{host}]:{port}"
    try:
        entries = asyncssh.read_known_hosts(str(known_hosts))
        trusted = entries.match(host, "", port)[0]
    except (OSError, ValueError, asyncssh.KeyImportError):
        trusted = []
    scan = shlex.join(["ssh-keyscan", *(["-p", str(port)] if port != 22 else []), host])
    if trusted:
        return (
            f"host key mismatch for {name}: the key it offers differs from the one in "
            f"{known_hosts}. If the node was reinstalled, remove its line there and add the "
            f"new key (check it first: {scan})"
        )
    return f"host key for {name} is not in {known_hosts}; add it after checking it: {scan}"


class SshTransport:
    """Opens a Channel to one node's agent over SSH (a new connection each time)."""

    def __init__(
        self,
        node: NodeConfig,
        ssh: SshConfig,
        *,
        command: Sequence[str] | None = None,
        extra_options: dict[str, Any] | None = None,
    ) -> None:
        self.node = node
        self.ssh = ssh
        self.user = node.user or ssh.user
        self.command = tuple(command or ssh.agent_command)
        self.extra_options = extra_options or {}

    def describe(self) -> str:
        port = "" if self.node.port == 22 else f" -p {self.node.port}"
        return f"ssh{port} {self.user}@{self.node.host}"

    async def connect(self) -> asyncssh.SSHClientConnection:
        """An authenticated connection; raises TransportError with the reason."""
        cfg, host, port = self.ssh, self.node.host, self.node.port
        if not cfg.known_hosts.is_file():
            raise HostKeyError(
                f"{self.node.name}: known_hosts file {cfg.known_hosts} does not exist; "
                "host keys are always checked (`pilothouse up` writes it for local clusters)"
            )
        keys: list[Any] = []
        for path in cfg.identity_files:
            try:
                keys.append(asyncssh.read_private_key(str(path)))
            except (OSError, asyncssh.KeyImportError) as e:
                raise AuthError(f"{self.node.name}: cannot read identity file {path}: {e}") from e
        agent: asyncssh.SSHAgentClient | None = None
        options: dict[str, Any] = {}
        if keys:
            if cfg.use_agent and os.environ.get("SSH_AUTH_SOCK"):
                try:
                    agent = await asyncssh.connect_agent()
                    keys.extend(await agent.get_keys())
                except (OSError, asyncssh.Error) as e:
                    log.warning("%s: ssh-agent unavailable: %s", self.node.name, e)
            options["client_keys"] = keys
        # asyncssh would consult $SSH_AUTH_SOCK on its own, even next to client_keys.
        if keys or not cfg.use_agent:
            options["agent_path"] = None
        try:
            conn = await asyncssh.connect(
                host,
                port,
                username=self.user,
                known_hosts=str(cfg.known_hosts),
                keepalive_interval=cfg.keepalive_interval,
                keepalive_count_max=KEEPALIVE_COUNT_MAX,
                connect_timeout=cfg.connect_timeout,
                login_timeout=cfg.connect_timeout,
                **options,
                **self.extra_options,
            )
        except asyncssh.HostKeyNotVerifiable as e:
            raise HostKeyError(
                f"{self.node.name}: {host_key_problem(cfg.known_hosts, host, port)}"
            ) from e
        except asyncssh.PermissionDenied as e:
            where = ", ".join(str(p) for p in cfg.identity_files) or "default keys"
            via = " and the ssh-agent" if cfg.use_agent else ""
            raise AuthError(
                f"{self.node.name}: {self.user}@{host}:{port} refused our keys ({where}{via})"
            ) from e
        except (OSError, asyncssh.Error, TimeoutError) as e:
            reason = str(e) or type(e).__name__
            raise TransportError(
                f"{self.node.name}: cannot connect to {host}:{port}: {reason}"
            ) from e
        finally:
            if agent is not None:
                # Agent keys sign through this client; keep it until the login is done.
                agent.close()
        return conn

    async def open(self) -> Channel:
        conn = await self.connect()
        try:
            process = await conn.create_process(shlex.join(self.command), encoding=None)
        except (OSError, asyncssh.Error) as e:
            conn.close()
            raise TransportError(
                f"{self.node.name}: cannot start the agent ({shlex.join(self.command)}): {e}"
            ) from e
        name = self.node.name
        stderr = process.stderr

        async def relay_stderr() -> None:
            with contextlib.suppress(asyncssh.Error, OSError):
                while line := await stderr.readline():
                    log.info("%s: agent: %s", name, line.decode(errors="replace").rstrip())

        relay = asyncio.create_task(relay_stderr(), name=f"ssh stderr {name}")

        async def close() -> None:
            with contextlib.suppress(asyncssh.Error, OSError):
                process.stdin.write_eof()
            with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
                await asyncio.wait_for(process.wait_closed(), 2.0)
            process.close()
            conn.close()
            with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
                await asyncio.wait_for(conn.wait_closed(), 2.0)
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay

        return Channel(process.stdout, process.stdin, close, self.describe())


def ssh_transports(config: Config) -> dict[str, SshTransport]:
    """One SSH transport per configured node."""
    return {n.name: SshTransport(n, config.ssh) for n in config.nodes}


# --- `pilothouse node check` ------------------------------------------------------

PAUSE_IMAGE = "docker.io/pilothouse/pause:latest"
DEFAULT_CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
CNI_PLUGINS = ("bridge", "host-local", "loopback")

# Runs on the node with its python3: reports, as one JSON line, what the agent needs.
# argv: module, socket (or ""), pause image, CNI dir, CNI plugin names...
_PROBE = r"""
import importlib.util, json, os, sys
mod, sock, pause, cni_dir = sys.argv[1:5]
plugins = sys.argv[5:]
sock = sock or os.environ.get("PILOTHOUSE_CONTAINERD_SOCKET") or "/run/containerd/containerd.sock"
out = {"python": sys.version.split()[0], "socket": sock}
out["agent"] = True
for m in dict.fromkeys([mod, "agent"]):
    try:
        found = importlib.util.find_spec(m)
    except Exception:
        found = None
    if found is None:
        out["agent"] = False
        out["agent_missing"] = m
out["socket_ok"] = os.path.exists(sock)
out["cni_missing"] = [p for p in plugins if not os.access(os.path.join(cni_dir, p), os.X_OK)]

def fields(buf):
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        if key & 7 == 0:
            v, i = varint(buf, i)
        elif key & 7 == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            return
        yield key >> 3, v

def varint(buf, i):
    r = s = 0
    while True:
        b = buf[i]
        i += 1
        r |= (b & 127) << s
        s += 7
        if b < 128:
            return r, i

def ld(n, b):
    return bytes([n << 3 | 2, len(b)]) + b

try:
    import grpc
except ImportError as e:
    out["grpc_error"] = str(e)
else:
    if out["socket_ok"]:
        ch = grpc.insecure_channel("unix://" + sock)
        call = lambda m: ch.unary_unary(m, request_serializer=None, response_deserializer=None)
        try:
            r = call("/runtime.v1.RuntimeService/Version")(ld(1, b"v1"), timeout=5)
            v = {n: x.decode() for n, x in fields(r) if isinstance(x, bytes)}
            out["cri"] = "%s %s (CRI %s)" % (v.get(2, "?"), v.get(3, "?"), v.get(4, "?"))
        except Exception as e:
            out["cri_error"] = str(getattr(e, "details", lambda: e)())
        try:
            r = call("/runtime.v1.ImageService/ImageStatus")(ld(1, ld(1, pause.encode())), timeout=5)
            out["pause"] = any(n == 1 and x for n, x in fields(r))
        except Exception as e:
            out["pause_error"] = str(getattr(e, "details", lambda: e)())
print(json.dumps(out))
"""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _agent_module(command: Sequence[str]) -> str:
    args = list(command)
    if "-m" in args and args.index("-m") + 1 < len(args):
        return args[args.index("-m") + 1]
    return "agent"


async def check_node(
    transport: SshTransport,
    *,
    containerd_socket: str = "",
    pause_image: str = PAUSE_IMAGE,
    cni_dir: str = "/usr/lib/cni",
) -> list[CheckResult]:
    """What the node lacks to run the agent; each failed item carries a one-line fix."""
    results: list[CheckResult] = []
    try:
        conn = await transport.connect()
    except TransportError as e:
        fix = "fix the SSH access first (host, port, known_hosts, authorized_keys)"
        if isinstance(e, HostKeyError):
            fix = "check the node's host key and add it to known_hosts"
        elif isinstance(e, AuthError):
            fix = f"add our public key to ~{transport.user}/.ssh/authorized_keys on the node"
        return [CheckResult("ssh", False, str(e), fix)]
    results.append(
        CheckResult("ssh", True, f"{transport.describe()}: connected, host key verified")
    )
    python = transport.command[0]
    try:
        args = [
            python,
            "-c",
            _PROBE,
            _agent_module(transport.command),
            containerd_socket,
            pause_image,
            cni_dir,
            *CNI_PLUGINS,
        ]
        r = await asyncio.wait_for(conn.run(shlex.join(args)), 30)
    finally:
        conn.close()
    if r.exit_status == 127 or (r.exit_status and not r.stdout):
        err = str(r.stderr or "").strip().splitlines()
        results.append(
            CheckResult(
                "python3",
                False,
                f"{python}: {err[-1] if err else f'exit {r.exit_status}'}",
                "apt-get install python3 python3-grpcio python3-protobuf",
            )
        )
        return results
    try:
        info: dict[str, Any] = json.loads(str(r.stdout).strip().splitlines()[-1])
    except (ValueError, IndexError):
        results.append(CheckResult("python3", False, f"unexpected output: {r.stdout!r}"))
        return results
    results.append(CheckResult("python3", True, f"{python}: Python {info['python']}"))
    mod = _agent_module(transport.command)
    results.append(
        CheckResult(
            "agent",
            bool(info.get("agent")),
            f"module {mod}"
            + ("" if info.get("agent") else f": {info.get('agent_missing', mod)} not found"),
            "install pilothouse on the node (pip install pilothouse), or put agent/ on its PYTHONPATH",
        )
    )
    if "grpc_error" in info:
        results.append(
            CheckResult(
                "grpcio",
                False,
                info["grpc_error"],
                "apt-get install python3-grpcio python3-protobuf",
            )
        )
    sock = info.get("socket", "")
    results.append(
        CheckResult(
            "containerd",
            bool(info.get("socket_ok")),
            f"socket {sock}" + ("" if info.get("socket_ok") else " missing"),
            "apt-get install containerd runc && systemctl enable --now containerd",
        )
    )
    if info.get("socket_ok") and "grpc_error" not in info:
        results.append(
            CheckResult(
                "cri",
                "cri" in info,
                info.get("cri") or f"CRI runtime.v1 unavailable: {info.get('cri_error', '?')}",
                'remove "cri" from disabled_plugins in /etc/containerd/config.toml; '
                "restart containerd",
            )
        )
        results.append(
            CheckResult(
                "pause image",
                bool(info.get("pause")),
                pause_image
                + ("" if info.get("pause") else " not in containerd's k8s.io namespace"),
                f"import it: python3 -m agent.images /tmp/ph-images --import-to {sock}",
            )
        )
    missing = info.get("cni_missing") or []
    results.append(
        CheckResult(
            "cni plugins",
            not missing,
            f"{cni_dir}: "
            + (f"missing {', '.join(missing)}" if missing else ", ".join(CNI_PLUGINS)),
            "apt-get install containernetworking-plugins",
        )
    )
    return results
