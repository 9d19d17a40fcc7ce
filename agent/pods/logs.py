"""Container logs from the CRI log files.

Each line is "<RFC3339Nano> stdout|stderr F|P <msg>"; P marks a partial line
that the next record continues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.protocol.primitives import parse_rfc3339


@dataclass
class LogLine:
    time: str
    stream: str
    text: str

    def render(self, timestamps: bool) -> str:
        return f"{self.time} {self.text}\n" if timestamps else self.text + "\n"


class LogParser:
    """Joins partial records; feed it bytes, get whole lines."""

    def __init__(self) -> None:
        self._buf = b""
        self._partial: dict[str, list[str]] = {}

    def feed(self, data: bytes) -> list[LogLine]:
        self._buf += data
        *records, self._buf = self._buf.split(b"\n")
        out: list[LogLine] = []
        for rec in records:
            line = self._record(rec.decode("utf-8", errors="replace"))
            if line is not None:
                out.append(line)
        return out

    def _record(self, rec: str) -> LogLine | None:
        parts = rec.split(" ", 3)
        if len(parts) < 3:
            return None
        ts, stream, tag = parts[0], parts[1], parts[2]
        msg = parts[3] if len(parts) > 3 else ""
        if tag == "P":
            self._partial.setdefault(stream, []).append(msg)
            return None
        text = "".join(self._partial.pop(stream, [])) + msg
        return LogLine(ts, stream, text)


def read_lines(path: Path) -> tuple[list[LogLine], int]:
    """All whole lines in a log file, and the offset they end at."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1
    return LogParser().feed(data[:end]), end


def select(
    lines: list[LogLine],
    tail: int | None = None,
    since: datetime | None = None,
) -> list[LogLine]:
    if since is not None:
        kept = []
        for ln in lines:
            try:
                if parse_rfc3339(ln.time) >= since:
                    kept.append(ln)
            except ValueError:
                kept.append(ln)
        lines = kept
    if tail is not None and tail >= 0:
        lines = lines[-tail:] if tail else []
    return lines


async def follow(
    path: Path,
    offset: int,
    emit: Callable[[str], Awaitable[None]],
    still_running: Callable[[], Awaitable[bool]],
    timestamps: bool = False,
    poll: float = 0.2,
) -> None:
    """Emits new lines from offset on, until the container stops and the file
    is drained."""
    parser = LogParser()
    idle_checks = 0
    while True:
        try:
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read(1 << 20)
        except FileNotFoundError:
            data = b""
        if data:
            offset += len(data)
            lines = parser.feed(data)
            if lines:
                await emit("".join(ln.render(timestamps) for ln in lines))
            idle_checks = 0
            continue
        idle_checks += 1
        if idle_checks % 5 == 0 and not await still_running():
            return
        await asyncio.sleep(poll)
