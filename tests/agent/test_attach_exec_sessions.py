"""The agent's interactive sessions, with fakes for containerd: attach
through the streaming server's URL (CRI Attach), exec with stdin and no tty
under `ctr` (agent.pods.ctrexec), whose stdin can end on its own."""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from agent.cri import api_pb2 as pb
from agent.cri.client import CRIClient
from agent.pods import manager as M
from agent.pods import spec as S
from agent.pods.ctrexec import CtrExec, ctr_argv
from agent.protocol import InvalidParams
from agent.protocol.execio import exec_exit_code
from tests.polling import eventually

Obj = dict[str, Any]
UID = "uid-1"
POD: Obj = {
    "metadata": {"name": "web", "namespace": "default", "uid": UID},
    "spec": {"containers": [{"name": "main", "image": "busybox", "stdin": True, "tty": True}]},
}


async def _drain(backend: CtrExec) -> list[tuple[int, bytes]]:
    out = []
    while (msg := await asyncio.wait_for(backend.recv(), 10)) is not None:
        out.append(msg)
    return out


def test_ctr_argv_keeps_the_commands_flags() -> None:
    argv = ctr_argv("/usr/bin/ctr", "unix:///run/c.sock", "cid1", ["tar", "-xmf", "-"])
    assert argv[:5] == ["/usr/bin/ctr", "--address", "/run/c.sock", "--namespace", "k8s.io"]
    assert argv[5:7] == ["task", "exec"]
    assert argv[7] == "--exec-id" and argv[8].startswith("ph-exec-")
    assert argv[9:] == ["--", "cid1", "tar", "-xmf", "-"]
    assert ctr_argv("ctr", "/s", "c", ["x"])[8] != argv[8]  # a new exec id each time


async def test_ctr_exec_stdin_ends_and_the_exit_code_comes_last() -> None:
    script = (
        "import sys; data = sys.stdin.buffer.read(); sys.stdout.buffer.write(data[::-1]); "
        "sys.stdout.flush(); sys.stderr.write('done'); sys.exit(3)"
    )
    backend = await CtrExec.start([sys.executable, "-c", script])
    await backend.send(0, b"abc")
    await backend.send(1, b"not stdin: dropped")
    await backend.send(0, b"def")
    assert await backend.close_stdin()
    out = await _drain(backend)
    assert b"".join(d for ch, d in out if ch == 1) == b"fedcba"
    assert b"".join(d for ch, d in out if ch == 2) == b"done"
    assert out[-1][0] == 3 and exec_exit_code(out[-1][1]) == 3
    await backend.close()


async def test_ctr_exec_hang_up_ends_the_command() -> None:
    backend = await CtrExec.start([sys.executable, "-c", "import time; time.sleep(60)"])
    await asyncio.wait_for(backend.close(), 10)
    assert backend.proc.returncode is not None
    await backend.send(0, b"after the end: dropped")


class _FakeCRI:
    """The CRI calls an exec or attach session makes."""

    def __init__(self, url: str) -> None:
        self.socket = "/run/fake.sock"
        self.url = url
        self.calls: list[tuple[str, Obj]] = []

    async def list_containers(self, labels: dict[str, str]) -> list[pb.Container]:
        return [pb.Container(id="cid1", state=pb.CONTAINER_RUNNING)]

    async def attach_url(self, container_id: str, tty: bool, stdin: bool) -> str:
        self.calls.append(("attach", {"id": container_id, "tty": tty, "stdin": stdin}))
        return self.url

    async def exec_url(self, container_id: str, cmd: list[str], tty: bool, stdin: bool) -> str:
        self.calls.append(("exec", {"id": container_id, "cmd": cmd, "tty": tty, "stdin": stdin}))
        return self.url


async def _streaming_server(paths: list[str]) -> asyncio.Server:
    """Answers the upgrade (v4), writes one stdout line and Success, closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        paths.append(head.split(b" ")[1].decode())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
        )
        for payload in (b"\x01attached\n", b'\x03{"status":"Success"}'):
            writer.write(bytes([0x82, len(payload)]) + payload)
        writer.write(b"\x88\x00")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _manager(tmp_path: Path, url: str) -> tuple[M.PodManager, _FakeCRI, list[Obj]]:
    sent: list[Obj] = []

    async def send(method: str, params: Obj) -> None:
        assert method == "exec_io"
        sent.append(params)

    cri = _FakeCRI(url)
    node = S.NodeConfig(name="n1", state_dir=tmp_path, cgroup_parent="/t")
    manager = M.PodManager(cast(CRIClient, cri), node, send)
    manager.workers[UID] = cast(Any, SimpleNamespace(pod=POD, uid=UID))
    return manager, cri, sent


async def _ended(sent: list[Obj], session: str) -> list[Obj]:
    async def ended() -> bool:
        return any(p["session"] == session and "exit" in p for p in sent)

    await eventually(ended, f"session {session} to end", within=10)
    return [p for p in sent if p["session"] == session]


async def test_attach_asks_cri_for_the_main_process(tmp_path: Path) -> None:
    paths: list[str] = []
    server = await _streaming_server(paths)
    port = server.sockets[0].getsockname()[1]
    try:
        manager, cri, sent = await _manager(tmp_path, f"http://127.0.0.1:{port}/attach/tok")
        params = {"namespace": "default", "name": "web", "session": "a1", "stdin": True}
        result = await manager.attach({**params, "tty": True, "cols": 80, "rows": 24})
        # The end of its stdin detaches (no runtime help needed, no EOT sent).
        assert result == {"session": "a1", "stdinClose": True}
        got = await _ended(sent, "a1")
        assert base64.b64decode(got[0]["data"]) == b"attached\n" and got[0]["fd"] == 1
        assert got[-1]["exit"] == {"exitCode": 0}
        assert cri.calls == [("attach", {"id": "cid1", "tty": True, "stdin": True})]
        assert paths == ["/attach/tok"]
        with pytest.raises(InvalidParams, match="session"):
            await manager.attach({"namespace": "default", "name": "web"})
    finally:
        server.close()
        await server.wait_closed()
    await manager.sessions.close_all()


async def test_exec_with_stdin_and_no_tty_runs_under_ctr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake ctr records its arguments and copies stdin; the `eof` of
    exec_io ends its stdin, so the command ends with its exit code."""
    args = tmp_path / "args"
    ctr = tmp_path / "ctr"
    ctr.write_text(f'#!/bin/sh\necho "$@" > {args}\nexec cat\n')
    ctr.chmod(0o755)
    monkeypatch.setattr(M, "ctr_path", lambda: str(ctr))
    manager, cri, sent = await _manager(tmp_path, "http://127.0.0.1:1/unused")
    params = {"namespace": "default", "name": "web", "command": ["tar", "-xf", "-"]}
    result = await manager.exec({**params, "session": "e1", "stdin": True})
    assert result == {"session": "e1", "stdinClose": True}
    await manager.sessions.on_io({"session": "e1", "data": base64.b64encode(b"tarball").decode()})
    await manager.sessions.on_io({"session": "e1", "eof": True})
    got = await _ended(sent, "e1")
    assert b"".join(base64.b64decode(p["data"]) for p in got if "data" in p) == b"tarball"
    assert got[-1]["exit"] == {"exitCode": 0}
    assert args.read_text().split()[-5:] == ["--", "cid1", "tar", "-xf", "-"]
    assert cri.calls == []  # not through the streaming server
    # A tty, or no stdin, goes through the streaming server as before.
    with pytest.raises(M.RpcError):
        await manager.exec({**params, "session": "e2", "stdin": True, "tty": True})
    assert [c[0] for c in cri.calls] == ["exec"] and cri.calls[0][1]["tty"] is True
    await manager.sessions.close_all()


async def test_the_sweep_stops_sandboxes_no_worker_owns(tmp_path: Path) -> None:
    # A sandbox a previous agent started after this one adopted what it found
    # (a node cut off for a while runs both for a moment) is stopped by the
    # sweep each heartbeat makes; a sandbox a worker owns is left alone.
    manager, _cri, _sent = await _manager(tmp_path, "http://127.0.0.1:1/unused")
    sandboxes = [
        pb.PodSandbox(id="s1", labels={S.MANAGED: "true", S.POD_UID: UID}),
        pb.PodSandbox(id="s2", labels={S.MANAGED: "true", S.POD_UID: "orphan"}),
    ]

    async def list_pod_sandboxes(labels: dict[str, str]) -> list[pb.PodSandbox]:
        return sandboxes

    stopped: list[str] = []
    manager.cri = cast(Any, SimpleNamespace(list_pod_sandboxes=list_pod_sandboxes))
    manager._spawn = lambda pod: SimpleNamespace(  # type: ignore[method-assign]
        terminate=lambda: stopped.append(pod["metadata"]["uid"])
    )
    await manager.sweep_orphans()
    assert stopped == []  # before the first sync has adopted, nothing is swept
    manager._adopted = True
    await manager.sweep_orphans()
    assert stopped == ["orphan"]
