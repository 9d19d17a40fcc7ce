"""Interactive exec through `ctr task exec`, for a session whose stdin must
end on its own without a terminal.

containerd 1.6's streaming server speaks v4.channel.k8s.io only, which has
no way to close a command's stdin short of hanging up, and a command that
reads stdin to its end (`tar -x` under `kubectl cp`, `cat`) would then wait
forever. `ctr` passes its own stdin through a FIFO and closes that FIFO when
its stdin ends, so the command sees end of file; it runs the command with the
container's own process spec (user, environment, working directory), as CRI
Exec does, and exits with the command's exit code.

A session Backend (see agent.pods.sessions): channel messages in and out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import signal

from agent.protocol.execio import (
    CHANNEL_ERROR,
    CHANNEL_STDERR,
    CHANNEL_STDIN,
    CHANNEL_STDOUT,
    EXEC_CHUNK_BYTES,
    exec_status,
)

NAMESPACE = "k8s.io"  # CRI's containerd namespace
_HANGUP_GRACE = 2.0  # seconds between ctr's SIGTERM (forwarded) and SIGKILL


def ctr_path() -> str | None:
    return shutil.which("ctr")


def ctr_argv(ctr: str, socket: str, container_id: str, argv: list[str]) -> list[str]:
    """`ctr task exec` of `argv` in the container; `--` keeps argv's flags its own."""
    exec_id = f"ph-exec-{secrets.token_hex(6)}"
    return [
        ctr,
        "--address",
        socket.removeprefix("unix://"),
        "--namespace",
        NAMESPACE,
        "task",
        "exec",
        "--exec-id",
        exec_id,
        "--",
        container_id,
        *argv,
    ]


class CtrExec:
    """One command run by `ctr task exec` with piped stdin, stdout and stderr."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self._out: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._pump = asyncio.create_task(self._relay(), name="ctr exec output")

    @classmethod
    async def start(cls, argv: list[str]) -> CtrExec:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # the agent's signals are not the command's
        )
        return cls(proc)

    async def _relay(self) -> None:
        async def read(stream: asyncio.StreamReader | None, channel: int) -> None:
            while stream is not None and (data := await stream.read(EXEC_CHUNK_BYTES)):
                self._out.put_nowait((channel, data))

        try:
            await asyncio.gather(
                read(self.proc.stdout, CHANNEL_STDOUT), read(self.proc.stderr, CHANNEL_STDERR)
            )
            code = await self.proc.wait()
            self._out.put_nowait((CHANNEL_ERROR, json.dumps(exec_status(code)).encode()))
        finally:
            self._out.put_nowait(None)

    async def send(self, channel: int, data: bytes) -> None:
        stdin = self.proc.stdin
        if channel != CHANNEL_STDIN or stdin is None or stdin.is_closing():
            return
        stdin.write(data)
        await stdin.drain()

    async def resize(self, cols: int, rows: int) -> None:
        """No terminal: nothing to size."""

    async def close_stdin(self) -> bool:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        return True

    async def recv(self) -> tuple[int, bytes] | None:
        return await self._out.get()

    async def close(self) -> None:
        """Hang up: ctr forwards SIGTERM to the command; SIGKILL if it lingers."""
        await self.close_stdin()
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), _HANGUP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        if not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
