"""`pilothouse image import` end to end: the CLI, the API server, a node link,
and the real agent importing into a real containerd (private, in a test
netns); then a pod runs the imported image with imagePullPolicy Never."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.images import BUSYBOX, ImageSpec, busybox_layer, oci_archive
from console.cli import main as cli
from console.cli.arguments import UsageError
from control.client import Client
from control.objects.kinds import NODE, POD
from tests.cluster import condition
from tests.polling import eventually

from .node import Node, linked_plane, run, wait_running

pytestmark = pytest.mark.e2e

IMAGE = "docker.io/pilothouse/imported:test"


def _images(node: Node) -> set[str]:
    out = run(["ctr", "-n", "k8s.io", "--address", str(node.socket), "images", "list", "-q"])
    return set(out.stdout.split())


def _pod(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": "node-1",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "c",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", "echo from the imported image; sleep 3600"],
                }
            ],
        },
    }


async def test_import_then_run_a_pod_from_the_image(
    node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "imported.tar"
    archive.write_bytes(oci_archive(ImageSpec(IMAGE, cmd=BUSYBOX.cmd), busybox_layer()))
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not an image archive\n" * 10_000)
    before = _images(node)
    assert IMAGE not in before
    plane = linked_plane(node, tmp_path)
    await plane.start()
    try:
        async with Client(str(plane.socket_path)) as client:

            async def ready() -> bool:
                n = (await client.list(NODE))["items"]
                c = condition(n[0], "Ready") if n else None
                return bool(c and c.get("status") == "True")

            await eventually(ready, "node-1 Ready", within=60)

            # A bad file: the CLI refuses it; sent anyway, the agent refuses it.
            args = cli.parse_args(["image", "import", "--server", client.server, str(bad)])
            with pytest.raises(UsageError, match="not a tar archive"):
                await args.func(args)
            events = [e async for e in client.import_image(bad)]
            assert {"node": "node-1", "phase": "failed", "error": "not a tar archive"} in events
            assert _images(node) == before

            args = cli.parse_args(["image", "import", "--server", client.server, str(archive)])
            started = time.monotonic()
            assert await args.func(args) == 0
            took = time.monotonic() - started
            out, _ = capsys.readouterr()
            assert f"node-1: imported {IMAGE}" in out.splitlines()
            assert _images(node) - before == {IMAGE}
            size = archive.stat().st_size / 2**20
            print(f"imported {size:.1f} MiB into 1 node in {took:.2f}s", file=sys.stderr)
            # The agent's temp files are gone.
            assert not any((tmp_path / "agent-state" / "image-imports").iterdir())

            await client.create(POD, _pod("imported", IMAGE))

            await wait_running(client, "imported", "the pod on the imported image Running")

            async def logged() -> str | None:
                text = await client.logs("imported")
                return text or None

            assert await eventually(logged, "its log", within=20) == ("from the imported image\n")
            await client.delete(POD, "imported", "default")

            async def gone() -> bool:
                return not (await client.list(POD, "default"))["items"]

            await eventually(gone, "the pod deleted", within=60)
    finally:
        await plane.stop()
        await node.remove_all_sandboxes()
        run(
            ["ctr", "-n", "k8s.io", "--address", str(node.socket), "images", "rm", IMAGE],
            check=False,
        )
