"""`pilothouse exec -i/-t` as a user runs it: a subprocess on a pseudo-terminal
(or a pipe), against hollow nodes."""

from __future__ import annotations

import asyncio
import signal
import sys
import termios
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster import HollowCluster, hollow_pod
from tests.terminal import Terminal

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[HollowCluster]:
    async with hollow_pod(tmp_path) as c:
        yield c


async def _cli(cluster: HollowCluster, *argv: str, **kw: object) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "console", "--server", cluster.socket, *argv, cwd=REPO, **kw
    )  # type: ignore[arg-type]


async def test_exec_it_on_a_terminal(cluster: HollowCluster) -> None:
    term = Terminal(100, 30)
    proc: asyncio.subprocess.Process | None = None
    try:
        before = termios.tcgetattr(term.slave)
        proc = await _cli(
            cluster,
            "exec",
            "-it",
            "web",
            "--",
            "sh",
            stdin=term.slave,
            stdout=term.slave,
            stderr=term.slave,
        )
        term.type("echo ready\r")
        await term.until(b"ready\r\nready\r\n")  # the remote echo, then the output
        # Raw mode: the local terminal does not echo or cook what is typed.
        lflag = termios.tcgetattr(term.slave)[3]
        assert not lflag & (termios.ECHO | termios.ICANON)
        term.type("stty size\r")
        await term.until(b"30 100\r\n")  # the first size went with the session
        term.resize(120, 40)
        proc.send_signal(signal.SIGWINCH)
        for attempt in range(50):  # the resize races with the lines typed after it
            start = len(term.output)
            term.type(f"stty size\recho end-{attempt}\r")
            await term.until(f"echo end-{attempt}\r\nend-{attempt}\r\n".encode())
            if b"stty size\r\n40 120\r\n" in term.output[start:]:
                break
        else:
            raise AssertionError(f"the new size never arrived: {term.output!r}")
        term.type("exit 3\r")
        async with asyncio.timeout(20):
            assert await proc.wait() == 3
        assert termios.tcgetattr(term.slave) == before  # restored
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        term.close()


async def _run(
    cluster: HollowCluster, *argv: str, stdin: bytes = b""
) -> tuple[int | None, bytes, bytes]:
    """The CLI with stdin from a pipe (or nothing) and its output captured."""
    proc = await _cli(
        cluster,
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            out, err = await proc.communicate(stdin or None)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out, err


async def test_exec_i_with_piped_stdin(cluster: HollowCluster) -> None:
    piped = await _run(cluster, "exec", "-i", "web", "--", "cat", stdin=b"hi\nthere\n")
    assert piped == (0, b"hi\nthere\n", b"")


async def test_exec_errors_and_exit_codes_without_a_terminal(cluster: HollowCluster) -> None:
    # -t without a terminal falls back, as kubectl does.
    code, out, err = await _run(cluster, "exec", "-t", "web", "--", "nosuch")
    assert (code, out) == (127, b"")
    assert err == b"Unable to use a TTY - input is not a terminal\nnosuch: not found\n"
    code, out, err = await _run(cluster, "exec", "-i", "nope", "--", "sh")
    assert code == 1 and b"Error from server (NotFound)" in err and b"nope" in err
