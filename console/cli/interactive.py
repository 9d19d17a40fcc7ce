"""`pilothouse exec -i/-t`: a local terminal (or pipe) joined to a command in a
container over the exec WebSocket.

With a tty the local terminal goes raw (keys, ^C included, go to the remote
side, which echoes them), its size follows SIGWINCH, and it is restored
however the session ends. Without one, stdin is copied until it ends, and
stdout and stderr stay apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import stat
import sys
import termios
import tty as ttymode
from collections.abc import Iterator

from control.client import Client
from control.execclient import ExecConnection

_READ = 32 * 1024


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """The terminal on `fd` in raw mode, restored on the way out."""
    saved = termios.tcgetattr(fd)
    try:
        ttymode.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def _read(fd: int) -> bytes:
    """One read from `fd` without blocking the loop (regular files just read)."""
    if stat.S_ISREG(os.fstat(fd).st_mode):
        return os.read(fd, _READ)
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
    try:
        return os.read(fd, _READ)
    except OSError as e:
        if e.errno == errno.EIO:  # the terminal went away
            return b""
        raise


async def _copy_stdin(conn: ExecConnection, fd: int) -> None:
    while data := await _read(fd):
        await conn.write(data)
    await conn.close_stdin()  # where the server cannot, the command keeps its stdin


def terminal_size(fd: int) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.columns, size.lines


async def run(
    client: Client,
    pod: str,
    namespace: str,
    command: list[str],
    *,
    container: str | None = None,
    stdin: bool = False,
    tty: bool = False,
    in_fd: int = 0,
    out_fd: int = 1,
    err_fd: int = 2,
) -> int:
    """Run the session; the command's exit code (1 with a message on stderr
    when the exec failed without one)."""
    if tty and not os.isatty(in_fd if stdin else out_fd):
        sys.stderr.write("Unable to use a TTY - input is not a terminal\n")
        tty = False
    async with client.exec_stream(
        pod, command, namespace, container=container, stdin=stdin, tty=tty
    ) as conn:
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        term_fd = in_fd if stdin else out_fd

        def resize() -> None:
            size = terminal_size(term_fd)
            if size is not None:
                task = loop.create_task(conn.resize(*size))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        with contextlib.ExitStack() as stack:
            if tty:
                if stdin:
                    stack.enter_context(raw_terminal(in_fd))
                resize()
                loop.add_signal_handler(signal.SIGWINCH, resize)
                stack.callback(loop.remove_signal_handler, signal.SIGWINCH)
            if stdin:
                pump = loop.create_task(_copy_stdin(conn, in_fd))
                tasks.add(pump)
            try:
                async for fd, data in conn.output():
                    _write_all(out_fd if fd == 1 else err_fd, data)
            finally:
                for task in list(tasks):
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    code = conn.exit_code
    if code is None:
        sys.stderr.write(f"error: {conn.error}\n")
        return 1
    return code
