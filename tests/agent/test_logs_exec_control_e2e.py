"""Pod logs, exec and metrics end to end: the CLI's client, the API server, a
node link, and the real agent driving a real containerd (private, in a test
netns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.client import Client
from control.objects.kinds import POD
from tests.polling import eventually

from .node import Node, linked_plane, wait_running

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


async def test_logs_exec_and_top_through_the_api(node: Node, tmp_path: Path) -> None:
    plane = linked_plane(node, tmp_path)
    await plane.start()
    try:
        async with Client(str(plane.socket_path)) as client:
            script = "echo one; echo two; echo err >&2; while true; do sleep 0.2; done"
            await client.create(
                POD,
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "talker", "namespace": "default"},
                    "spec": {
                        "nodeName": "node-1",
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {
                                "name": "c",
                                "image": "pilothouse/busybox",
                                "command": ["sh", "-c", script],
                            }
                        ],
                    },
                },
            )

            await wait_running(client, "talker", "talker Running")

            async def logged() -> str | None:
                text = await client.logs("talker")
                return text if text.count("\n") >= 3 else None

            text = await eventually(logged, "three log lines", within=20)
            assert sorted(text.splitlines()) == ["err", "one", "two"]
            assert (await client.logs("talker", tail_lines=1)).count("\n") == 1
            stamped = await client.logs("talker", timestamps=True, tail_lines=1)
            assert stamped[:4].isdigit() and "T" in stamped.split()[0]

            result = await client.exec("talker", ["sh", "-c", "echo out; echo bad >&2; exit 3"])
            assert result == {"stdout": "out\n", "stderr": "bad\n", "exitCode": 3}

            # An interactive shell on a terminal, through the exec WebSocket.
            async with client.exec_stream("talker", ["sh"], stdin=True, tty=True) as conn:
                await conn.resize(100, 30)
                await conn.write(b"echo $((6*7)); stty size; exit 3\n")
                shell = b"".join([data async for _fd, data in conn.output()])
            lines = shell.decode().splitlines()
            assert "42" in lines and "30 100" in lines, shell
            assert conn.exit_code == 3
            assert conn.status is not None and conn.status["reason"] == "NonZeroExitCode"
            # Piped stdin without a terminal: containerd 1.6 speaks only v4, so
            # the agent runs it under `ctr task exec`, which closes the command's
            # stdin when v5 says that stdin ended.
            async with client.exec_stream("talker", ["cat"], stdin=True) as conn:
                assert conn.protocol == "v5.channel.k8s.io"
                await conn.write(b"piped\n")
                assert await conn.close_stdin()
                piped = b"".join([data async for _fd, data in conn.output()])
            assert piped == b"piped\n"
            assert conn.exit_code == 0
            link = plane.node_links.links["node-1"]
            await eventually(lambda: not link._exec_sessions, "sessions released", within=10)

            async def no_cat() -> bool:
                ps = (await client.exec("talker", ["ps", "-o", "args"]))["stdout"]
                return "cat" not in ps.split()

            # Its stdin closed, cat ended.
            await eventually(no_cat, "the hung-up cat to exit", within=10)

            chunks = client.follow_logs("talker")
            lines = [await anext(chunks) for _ in range(3)]
            assert sorted(lines) == ["err\n", "one\n", "two\n"]
            await chunks.aclose()  # leaving while the container still runs

            metrics = await client.pod_metrics("default")
            assert [m["metadata"]["name"] for m in metrics["items"]] == ["talker"]
            nodes = await client.node_metrics()
            assert [m["metadata"]["name"] for m in nodes["items"]] == ["node-1"]

            await client.delete(POD, "talker", "default")

            async def gone() -> bool:
                listed = await client.list(POD, "default")
                return not listed["items"]

            await eventually(gone, "talker deleted", within=60)
    finally:
        await plane.stop()
        await node.remove_all_sandboxes()
