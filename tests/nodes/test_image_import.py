"""`pilothouse image import` on hollow nodes: the CLI, the client, the API
endpoint, the node links and the agent protocol, with hollow agents that
check each archive and record the image names it carries."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent.protocol import IMAGE_CHUNK_BYTES
from console.cli import main as cli
from console.cli.arguments import UsageError
from control.errors import ApiError
from tests.cluster import DEFAULT_TIMEOUT, HollowCluster
from tests.polling import eventually
from tests.unit.test_image_import import NAME, write_oci, write_tar


@pytest.fixture(autouse=True)
def image_dirs(hollow_cluster: HollowCluster, tmp_path: Path) -> dict[str, Path]:
    """Each hollow agent receives uploads in its own directory, to check it is left empty."""
    dirs = {}
    for name, agent in hollow_cluster.agents.items():
        agent.image_dir = dirs[name] = tmp_path / f"images-{name}"
    return dirs


async def _cli(
    capsys: pytest.CaptureFixture[str], cluster: HollowCluster, *argv: str
) -> tuple[int, str, str]:
    args = cli.parse_args(["image", "import", "--server", cluster.socket, *argv])
    code = await args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def _empty(dirs: dict[str, Path]) -> bool:
    return all(not d.exists() or not any(d.iterdir()) for d in dirs.values())


async def test_import_onto_every_ready_node(
    hollow_cluster: HollowCluster,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    image_dirs: dict[str, Path],
) -> None:
    # Three chunks: the upload crosses chunk boundaries and the digest still matches.
    archive = write_oci(tmp_path / "img.tar", size=2 * IMAGE_CHUNK_BYTES + 100)
    code, out, err = await _cli(capsys, hollow_cluster, str(archive))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"importing {NAME} (1.5 MiB) into node-1, node-2, node-3")
    for node in ("node-1", "node-2", "node-3"):
        assert f"{node}: sent 100% of 1.5 MiB" in lines
        assert f"{node}: imported {NAME}" in lines
        assert hollow_cluster.agents[node].images == [NAME]
    assert err == ""
    assert _empty(image_dirs)


async def test_import_onto_named_nodes_only(
    hollow_cluster: HollowCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    archive = write_oci(tmp_path / "img.tar")
    code, out, _ = await _cli(capsys, hollow_cluster, str(archive), "--node", "node-2")
    assert code == 0
    assert f"node-2: imported {NAME}" in out.splitlines()
    assert [a.images for a in hollow_cluster.agents.values()] == [[], [NAME], []]


async def test_a_docker_archive_is_sent_too(hollow_cluster: HollowCluster, tmp_path: Path) -> None:
    manifest = b'[{"Config": "c.json", "RepoTags": ["docker.io/library/app:1"], "Layers": []}]'
    archive = write_tar(tmp_path / "docker.tar", {"manifest.json": manifest})
    async with hollow_cluster.client() as client:
        events = [e async for e in client.import_image(archive, ["node-1"])]
    assert events[0] == {"phase": "started", "nodes": ["node-1"], "size": archive.stat().st_size}
    assert {"node": "node-1", "phase": "imported", "images": ["docker.io/library/app:1"]} in events
    assert events[-1] == {"phase": "finished", "imported": ["node-1"], "failed": []}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "no such file"),
        (b"plain text, not a tar\n" * 50, "not a tar archive"),
        ({"README": b"hello"}, "no index.json or manifest.json"),
    ],
)
async def test_a_bad_file_is_refused_before_anything_is_sent(
    hollow_cluster: HollowCluster, tmp_path: Path, content: Any, why: str
) -> None:
    path = tmp_path / "bad.tar"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        write_tar(path, content)
    args = cli.parse_args(["image", "import", "--server", hollow_cluster.socket, str(path)])
    with pytest.raises(UsageError, match=why) as e:
        await args.func(args)
    assert str(e.value).startswith(f"{path}: ")
    assert all(a.images == [] for a in hollow_cluster.agents.values())


async def test_the_agents_check_the_archive_too(
    hollow_cluster: HollowCluster, tmp_path: Path, image_dirs: dict[str, Path]
) -> None:
    """A client that skips the CLI's check: every node refuses it, naming why."""
    path = tmp_path / "bad.tar"
    path.write_bytes(b"garbage" * 200_000)
    async with hollow_cluster.client() as client:
        events = [e async for e in client.import_image(path)]
    failed = {e["node"]: e["error"] for e in events if e.get("phase") == "failed"}
    assert failed == {f"node-{i}": "not a tar archive" for i in (1, 2, 3)}
    assert events[-1]["failed"] == ["node-1", "node-2", "node-3"]
    assert all(a.images == [] for a in hollow_cluster.agents.values())
    assert _empty(image_dirs)


async def test_a_node_that_is_not_connected_fails_alone(
    hollow_cluster: HollowCluster,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    image_dirs: dict[str, Path],
) -> None:
    await hollow_cluster.disconnect("node-3")
    archive = write_oci(tmp_path / "img.tar")
    args = cli.parse_args(
        [
            "image",
            "import",
            "--server",
            hollow_cluster.socket,
            str(archive),
            "--node",
            "node-1",
            "--node",
            "node-3",
        ]
    )
    with pytest.raises(UsageError, match="the import failed on 1 of 2 nodes: node-3"):
        await args.func(args)
    out, err = capsys.readouterr()
    assert f"node-1: imported {NAME}" in out
    assert err.startswith("node-3: error: not connected (")
    assert hollow_cluster.agents["node-1"].images == [NAME]
    assert hollow_cluster.agents["node-3"].images == []
    assert _empty(image_dirs)


async def test_unknown_nodes_and_missing_nodes(
    hollow_cluster: HollowCluster, tmp_path: Path
) -> None:
    archive = write_oci(tmp_path / "img.tar")
    async with hollow_cluster.client() as client:
        with pytest.raises(ApiError) as e:
            [ev async for ev in client.import_image(archive, ["node-9"])]
        assert e.value.code == 404 and "node-9" in e.value.message
        for agent in hollow_cluster.agents.values():
            agent.node_ready = False
            await agent.send_heartbeat()

        async def none_ready() -> bool:
            for name in hollow_cluster.agents:
                node = await hollow_cluster.node(name) or {}
                conds = (node.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                    return False
            return True

        await eventually(none_ready, "every node NotReady", within=DEFAULT_TIMEOUT)
        with pytest.raises(ApiError) as e:
            [ev async for ev in client.import_image(archive)]
        assert e.value.code == 400 and "no Ready node" in e.value.message


async def test_the_cli_prints_one_line_errors(
    hollow_cluster: HollowCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through main's error handling: one line, no traceback, exit 1."""
    missing = tmp_path / "missing.tar"
    args = cli.parse_args(["image", "import", "--server", hollow_cluster.socket, str(missing)])
    code = await asyncio.to_thread(cli.run, args.func, args)
    _, err = capsys.readouterr()
    assert code == 1 and err == f"error: {missing}: no such file\n"
