"""The exec WebSocket's subprotocol choice (control.api.execws): kubectl
offers v5.channel.k8s.io alone, so v5 is refused only to a command that reads
stdin the runtime cannot close."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.protocol import ExecExit
from control.api import execws
from control.wire import V5


class _Session:
    """A command that writes one line and exits 0, on a runtime that cannot close stdin."""

    def __init__(self) -> None:
        self.exit: ExecExit | None = None
        self.can_close_stdin = False
        self.closed = False

    async def output(self) -> AsyncGenerator[tuple[int, bytes], None]:
        yield 1, b"out\n"
        self.exit = ExecExit(exitCode=0)

    async def write(self, data: bytes) -> None:
        pass

    async def resize(self, cols: int, rows: int) -> None:
        pass

    async def close_stdin(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


async def _handler(request: web.Request) -> web.StreamResponse:
    session = _Session()
    stdin = request.query.get("stdin") == "true"
    opts = execws.ExecOptions(["x"], None, stdin, True, True, False)
    response = await execws.serve(request, session, opts, "test")
    assert session.closed
    return response


@pytest.mark.parametrize(("stdin", "chosen"), [("false", V5), ("true", "v4.channel.k8s.io")])
async def test_v5_unless_stdin_cannot_close(stdin: str, chosen: str) -> None:
    app = web.Application()
    app.router.add_get("/exec", _handler)
    async with TestClient(TestServer(app)) as client:
        ws = await client.ws_connect(f"/exec?stdin={stdin}", protocols=(V5, "v4.channel.k8s.io"))
        assert ws.protocol == chosen
        got = [msg.data async for msg in ws if msg.type == aiohttp.WSMsgType.BINARY]
        assert got[0] == b"\x01out\n"
        assert got[-1].startswith(b"\x03") and b"Success" in got[-1]
