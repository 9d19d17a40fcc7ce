"""The control plane hosted on its own thread and loop, reached over its socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

from console.tui.hosted import HostedControlPlane, socket_answers
from control.client import Client
from control.config import load_config
from control.objects import kinds


def test_hosted_plane_serves_another_loop_and_stops(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[api]\nlisten = ""\n')
    hosted = HostedControlPlane(load_config(None, data_dir=tmp_path))
    socket = hosted.start()
    try:
        assert socket_answers(socket)

        async def use() -> list[str]:
            async with Client(str(socket)) as client:
                listed = await client.list(kinds.NAMESPACE)
            return [n["metadata"]["name"] for n in listed["items"]]

        assert "default" in asyncio.run(use())
    finally:
        hosted.stop()
    assert not socket_answers(socket)


def test_socket_answers_is_false_without_a_server(tmp_path: Path) -> None:
    assert not socket_answers(tmp_path / "nothing.sock")
