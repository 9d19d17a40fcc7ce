"""Running commands (argv lists only) and managing the daemons a local cluster starts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# How `up` and `down` report each step (one line each).
Progress = Callable[[str], None]


class LocalClusterError(Exception):
    """`up` or `down` cannot go on; the message says what failed and what to do."""


class CommandError(LocalClusterError):
    def __init__(self, argv: Sequence[str], code: int, output: str) -> None:
        self.argv = list(argv)
        self.code = code
        self.output = output.strip()
        super().__init__(f"{' '.join(argv)}: exit {code}: {self.output or '(no output)'}")


async def capture(
    argv: Sequence[str], *, within: float = 60.0, env: Mapping[str, str] | None = None
) -> tuple[int, str, str]:
    """Run `argv` with no input; its exit code, stdout and stderr. One still
    running after `within` seconds is killed: LocalClusterError."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise LocalClusterError(f"{' '.join(argv)}: timed out after {within:.0f}s") from None
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def run(argv: Sequence[str], *, check: bool = True, within: float = 60.0) -> str:
    """Run `argv`; return stdout. With `check`, a non-zero exit raises CommandError."""
    code, out, err = await capture(argv, within=within)
    if check and code != 0:
        raise CommandError(argv, code, err or out)
    return out


def start_daemon(argv: Sequence[str], log: Path, pid_file: Path) -> int:
    """Start `argv` detached (own session, output to `log`); write and return its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    # Not waited on here: the daemon outlives this process. Drop the handle quietly.
    proc.returncode = 0
    write_pid(pid_file, proc.pid)
    _wait_exec(proc.pid)
    return proc.pid


def _wait_exec(pid: int, within: float = 5.0) -> None:
    """Until the new program's command line is readable. Popen returns once exec
    is past its point of no return, but for a moment after that (long, on a
    loaded machine) /proc/PID/cmdline is empty, and `alive` would take the
    daemon for gone."""
    deadline = time.monotonic() + within
    while not cmdline(pid) and not is_zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.002)


def write_pid(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid}\n")


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def proc_state(pid: int) -> str:
    """The kernel's state letter for `pid` (R, S, D, Z, ...), or "gone"."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return "gone"


def is_zombie(pid: int) -> bool:
    return proc_state(pid) in ("Z", "X", "gone")


def alive(pid: int, marker: str) -> bool:
    """True when `pid` runs and its command line mentions `marker` (guards pid reuse)."""
    if is_zombie(pid):
        return False
    return any(marker in a for a in cmdline(pid))


def exit_status(pid: int) -> str:
    """How our child `pid` ended ("exit 1", "signal 9"), reaping it; "" if unknown."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        return ""
    if done == 0:
        return ""
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.waitstatus_to_exitcode(status)}"


def reap(pid: int) -> None:
    """Collect `pid` if it is our child (it is when this process started it)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


async def stop_pid(pid: int, marker: str, grace: float = 10.0) -> bool:
    """SIGTERM `pid` (if it still is the process we started), then SIGKILL after `grace` seconds."""
    if not alive(pid, marker):
        reap(pid)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap(pid)
        if is_zombie(pid):
            return True
        await asyncio.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        reap(pid)
        if is_zombie(pid):
            break
        await asyncio.sleep(0.05)
    return True


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None


def _pids() -> list[int]:
    return [int(e.name) for e in os.scandir("/proc") if e.name.isdigit()]


def pids_in_netns(inode: int) -> list[int]:
    """Every process whose network namespace is the one with this nsfs inode."""
    pids: list[int] = []
    for pid in _pids():
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}/ns/net").st_ino == inode:
                pids.append(pid)
    return pids


def processes_named(comm: str) -> list[int]:
    """Every live process whose command name (/proc/PID/comm) is `comm`."""
    pids: list[int] = []
    for pid in _pids():
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == comm and not is_zombie(pid):
                pids.append(pid)
    return pids


async def kill_all(pids: Sequence[int], grace: float = 5.0) -> None:
    """SIGTERM these pids, then SIGKILL what is left after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            for pid in pids:
                reap(pid)
            if all(is_zombie(p) for p in pids):
                return
            await asyncio.sleep(0.05)
