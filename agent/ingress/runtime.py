"""HAProxy's runtime API: one command per connection on the stats socket (a unix
socket), as `socat` would send it."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ServerState = Literal["ready", "maint", "drain"]

RUNTIME_TIMEOUT = 5.0


class HAProxyRuntimeError(RuntimeError):
    """The socket could not be reached, or HAProxy refused a command (its answer)."""


@dataclass(frozen=True, slots=True)
class StatRow:
    """One line of `show stat`: a frontend, a backend or a server."""

    proxy: str  # pxname
    name: str  # svname: FRONTEND, BACKEND or the server's name
    status: str
    requests: int  # req_tot (stot where HAProxy leaves it empty)
    rate: int  # requests (sessions for servers) over the last second
    http_5xx: int
    weight: int


class RuntimeAPI:
    def __init__(self, socket_path: Path, timeout: float = RUNTIME_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    async def command(self, line: str) -> str:
        """HAProxy's whole answer to one command."""
        if "\n" in line or ";" in line:
            raise ValueError(f"runtime command: one command per call, got {line!r}")
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
                try:
                    writer.write(line.encode() + b"\n")
                    await writer.drain()
                    answer = await reader.read()
                finally:
                    writer.close()
        except (OSError, TimeoutError) as e:
            raise HAProxyRuntimeError(f"{self.socket_path}: {line!r}: {e}") from None
        return answer.decode(errors="replace")

    async def _quiet(self, line: str) -> None:
        """A command that answers nothing when it works."""
        answer = (await self.command(line)).strip()
        if answer:
            raise HAProxyRuntimeError(f"{line!r}: {answer}")

    async def show_info(self) -> dict[str, str]:
        answer = await self.command("show info")
        pairs = (row.split(":", 1) for row in answer.splitlines() if ":" in row)
        return {key.strip(): value.strip() for key, value in pairs}

    async def worker_pid(self) -> int:
        """The pid of the worker that answers (it changes with every reload)."""
        pid = (await self.show_info()).get("Pid", "")
        if not pid.isdigit():
            raise HAProxyRuntimeError("show info: no Pid")
        return int(pid)

    async def show_stat(self) -> list[StatRow]:
        answer = await self.command("show stat")
        if not answer.startswith("# "):
            raise HAProxyRuntimeError(f"show stat: {answer.strip()}")
        rows = csv.DictReader(io.StringIO(answer[2:]))
        return [
            StatRow(
                proxy=row["pxname"],
                name=row["svname"],
                status=row.get("status", ""),
                requests=_int(row.get("req_tot")) or _int(row.get("stot")),
                rate=_int(row.get("req_rate")) or _int(row.get("rate")),
                http_5xx=_int(row.get("hrsp_5xx")),
                weight=_int(row.get("weight")),
            )
            for row in rows
        ]

    async def set_server_addr(self, backend: str, server: str, ip: str, port: int) -> None:
        line = f"set server {backend}/{server} addr {ip} port {port}"
        answer = (await self.command(line)).strip()
        if answer and "changed" not in answer and "no need" not in answer:
            raise HAProxyRuntimeError(f"{line!r}: {answer}")

    async def set_server_state(self, backend: str, server: str, state: ServerState) -> None:
        await self._quiet(f"set server {backend}/{server} state {state}")

    async def set_weight(self, backend: str, server: str, weight: int) -> None:
        await self._quiet(f"set weight {backend}/{server} {weight}")


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0
