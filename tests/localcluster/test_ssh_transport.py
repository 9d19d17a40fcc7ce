"""The SSH transport against an in-process asyncssh server on 127.0.0.1.

The server runs the requested command (split back with shlex) as a child
process, so these tests cover quoting, the agent protocol over the session,
host key checking and reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from agent.protocol import Peer, hello
from control.config import NodeConfig, SshConfig
from control.nodes.ssh import AuthError, HostKeyError, SshTransport
from control.nodes.transport import TransportError

HOLLOW = (sys.executable, "-m", "agent.hollow", "--name", "node a")


_sessions: set[asyncssh.SSHServerProcess[bytes]] = set()
_children: set[asyncio.subprocess.Process] = set()


async def _run_command(process: asyncssh.SSHServerProcess[bytes]) -> None:
    """Run the session's command, wired to the SSH channel."""
    _sessions.add(process)
    try:
        await _run(process)
    finally:
        _sessions.discard(process)


async def _run(process: asyncssh.SSHServerProcess[bytes]) -> None:
    argv = shlex.split(process.command or "")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _children.add(proc)
    await process.redirect(stdin=proc.stdin, stdout=proc.stdout, stderr=proc.stderr)
    try:
        code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    process.exit(code)
    with contextlib.suppress(Exception):
        await process.wait_closed()


@dataclass
class SshServer:
    host_key: asyncssh.SSHKey
    client_key_path: Path
    known_hosts: Path
    port: int = 0
    server: asyncssh.SSHAcceptor | None = None

    async def start(self) -> None:
        client_pub = asyncssh.read_public_key(str(self.client_key_path) + ".pub")
        self.server = await asyncssh.listen(
            "127.0.0.1",
            self.port,
            server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(
                client_pub.export_public_key().decode()
            ),
            process_factory=_run_command,
            encoding=None,
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            # Drop live sessions too, as a real restart would.
            for process in list(_sessions):
                process.get_extra_info("connection").close()
            # The session commands are this test's children: end them by handle.
            for child in list(_children):
                if child.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        child.kill()
                    await child.wait()
                _children.discard(child)
            await self.server.wait_closed()
            self.server = None

    def transport(self, command: Sequence[str] = HOLLOW, **ssh: object) -> SshTransport:
        node = NodeConfig(name="node-a", host="127.0.0.1", port=self.port)
        options: dict[str, object] = {
            "known_hosts": self.known_hosts,
            "identity_files": (self.client_key_path,),
            "use_agent": False,
            "keepalive_interval": 5.0,
            "connect_timeout": 5.0,
            **ssh,
        }
        cfg = SshConfig(**options)  # type: ignore[arg-type]
        return SshTransport(node, cfg, command=command)


def _write_known_hosts(path: Path, port: int, key: asyncssh.SSHKey) -> None:
    path.write_text(f"[127.0.0.1]:{port} {key.export_public_key().decode().strip()}\n")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SshServer]:
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key.write_private_key(str(tmp_path / "id_ed25519"))
    (tmp_path / "id_ed25519").chmod(0o600)
    client_key.write_public_key(str(tmp_path / "id_ed25519.pub"))
    srv = SshServer(
        host_key=asyncssh.generate_private_key("ssh-ed25519"),
        client_key_path=tmp_path / "id_ed25519",
        known_hosts=tmp_path / "known_hosts",
    )
    await srv.start()
    _write_known_hosts(srv.known_hosts, srv.port, srv.host_key)
    try:
        yield srv
    finally:
        await srv.stop()


async def _hello_over(transport: SshTransport) -> str:
    channel = await transport.open()
    peer = Peer(channel.reader, channel.writer, name="test")
    reader = asyncio.create_task(peer.run())
    try:
        info = await asyncio.wait_for(hello(peer, "node a"), 10)
        return info["hostname"]
    finally:
        await channel.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def test_echo_over_ssh_quotes_the_command(server: SshServer) -> None:
    # Each argument survives the remote shell line intact, spaces and quotes included.
    args = ["it's", "a b", "$HOME", ";", "x"]
    command = [sys.executable, "-c", "import sys; print(sys.argv[1:])", *args]
    channel = await server.transport(command).open()
    try:
        out = await asyncio.wait_for(channel.reader.read(-1), 10)
    finally:
        await channel.close()
    assert out.decode().strip() == repr(args)


async def test_hollow_agent_speaks_the_protocol_over_ssh(server: SshServer) -> None:
    transport = server.transport()
    assert transport.describe() == f"ssh -p {server.port} root@127.0.0.1"
    assert await _hello_over(transport)


async def test_unknown_host_key_fails_clearly(server: SshServer, tmp_path: Path) -> None:
    server.known_hosts.write_text("")
    with pytest.raises(HostKeyError) as e:
        await server.transport().open()
    msg = str(e.value)
    assert f"[127.0.0.1]:{server.port}" in msg
    assert str(server.known_hosts) in msg
    assert "not in" in msg


async def test_changed_host_key_fails_clearly(server: SshServer) -> None:
    _write_known_hosts(
        server.known_hosts, server.port, asyncssh.generate_private_key("ssh-ed25519")
    )
    with pytest.raises(HostKeyError) as e:
        await server.transport().open()
    msg = str(e.value)
    assert "mismatch" in msg
    assert f"[127.0.0.1]:{server.port}" in msg
    assert str(server.known_hosts) in msg


async def test_missing_known_hosts_is_an_error_not_a_bypass(server: SshServer) -> None:
    server.known_hosts.unlink()
    with pytest.raises(HostKeyError, match="does not exist"):
        await server.transport().open()


async def test_wrong_client_key_is_refused(server: SshServer, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    other.write_private_key(str(tmp_path / "other"))
    transport = server.transport(identity_files=(tmp_path / "other",))
    with pytest.raises(AuthError, match="refused our keys"):
        await transport.open()


async def test_connection_refused_is_a_transport_error(server: SshServer) -> None:
    transport = server.transport()
    await server.stop()
    with pytest.raises(TransportError, match="cannot connect"):
        await transport.open()


async def test_reconnects_after_the_server_restarts(server: SshServer) -> None:
    transport = server.transport()
    assert await _hello_over(transport)
    channel = await transport.open()
    await server.stop()
    # The open channel ends when the server goes away.
    assert await asyncio.wait_for(channel.reader.read(-1), 10) == b""
    await channel.close()
    with pytest.raises(TransportError):
        await transport.open()
    await server.start()  # same port, same host key
    assert await _hello_over(transport)


@pytest.fixture
def ssh_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An ssh-agent of our own (by pid), as $SSH_AUTH_SOCK."""
    if not (shutil.which("ssh-agent") and shutil.which("ssh-add")):
        pytest.skip("needs openssh-client")
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.02)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        proc.terminate()
        proc.wait(5)


async def test_keys_from_the_ssh_agent(server: SshServer, ssh_agent: Path, tmp_path: Path) -> None:
    await asyncio.to_thread(
        subprocess.run,
        ["ssh-add", str(server.client_key_path)],
        check=True,
        capture_output=True,
        env={**os.environ, "SSH_AUTH_SOCK": str(ssh_agent)},
    )
    # Only a wrong identity file, but the agent holds the right key.
    other = asyncssh.generate_private_key("ssh-ed25519")
    other.write_private_key(str(tmp_path / "other"))
    transport = server.transport(identity_files=(tmp_path / "other",), use_agent=True)
    assert await _hello_over(transport)
    # With use_agent off, the agent's key is not offered.
    transport = server.transport(identity_files=(tmp_path / "other",), use_agent=False)
    with pytest.raises(AuthError):
        await transport.open()
