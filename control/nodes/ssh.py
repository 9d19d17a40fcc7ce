"""The SSH transport: asyncssh to a node, then the agent command over the session.

Host keys are always checked against the configured known_hosts file; a
missing or mismatched key fails with a message naming the host and the file.
Client keys come from `ssh.identity_files` and, with `ssh.use_agent`, from the
ssh-agent at $SSH_AUTH_SOCK. Keepalives detect a dead link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from control.config import Config, NodeConfig, SshConfig
from control.nodes.asyncsshlib import asyncssh
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
