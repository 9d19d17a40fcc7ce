"""Image import's pieces without containerd: chunk encoding, archive checks,
the agent's receiver (temp files, offsets, digests, errors), and the control
side's chunking and fan-out over real protocol peers."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.images import ImageReceiver, ImageSpec, oci_archive
from agent.protocol import (
    IMAGE_CHUNK_BYTES,
    INVALID_PARAMS,
    MAX_MESSAGE_BYTES,
    NOT_FOUND,
    ImageArchiveError,
    Peer,
    RpcError,
    encode,
    image_archive_names,
    image_chunk,
    image_chunk_data,
)
from control.api.imagepush import push_image, read_chunks

NAME = "docker.io/pilothouse/imported:test"


def layer(size: int = 1000) -> bytes:
    """An uncompressed layer tar holding `size` bytes of noise."""
    buf = io.BytesIO()
    data = random.Random(size).randbytes(size)
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("noise")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_oci(path: Path, name: str = NAME, size: int = 1000) -> Path:
    path.write_bytes(oci_archive(ImageSpec(name), layer(size)))
    return path


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# -- chunks and archives ----------------------------------------------------------


def test_a_full_chunk_fits_well_inside_one_message() -> None:
    params = image_chunk("t", 0, b"\xff" * IMAGE_CHUNK_BYTES)
    assert len(params["data"]) == 1024 * 1024  # base64 of 768 KiB
    message = encode({"jsonrpc": "2.0", "id": 1, "method": "image_import_chunk", "params": params})
    assert len(message) < MAX_MESSAGE_BYTES // 8
    assert image_chunk_data(dict(params)) == b"\xff" * IMAGE_CHUNK_BYTES


def test_chunks_over_the_limit_or_not_base64_are_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        image_chunk("t", 0, b"x" * (IMAGE_CHUNK_BYTES + 1))
    with pytest.raises(RpcError, match="not base64") as e:
        image_chunk_data({"data": "not base64!"})
    assert e.value.code == INVALID_PARAMS
    too_big = image_chunk("t", 0, b"x" * IMAGE_CHUNK_BYTES)["data"] + "eHh4"
    with pytest.raises(RpcError, match="at most"):
        image_chunk_data({"data": too_big})


def test_archive_names_of_oci_and_docker_archives(tmp_path: Path) -> None:
    assert image_archive_names(write_oci(tmp_path / "oci.tar")) == ("oci", [NAME])
    manifest = [{"Config": "c.json", "RepoTags": ["busybox:1", "x/y:2"], "Layers": []}]
    docker = write_tar(tmp_path / "docker.tar", {"manifest.json": json.dumps(manifest).encode()})
    assert image_archive_names(docker) == ("docker", ["busybox:1", "x/y:2"])
    unnamed = write_tar(tmp_path / "unnamed.tar", {"./index.json": b'{"manifests": [{}]}'})
    assert image_archive_names(unnamed) == ("oci", [])


@pytest.mark.parametrize(
    ("files", "why"),
    [
        (None, "not a tar archive"),
        ({"hello.txt": b"hi"}, "no index.json or manifest.json"),
        ({"index.json": b"{nope"}, "index.json is not valid JSON"),
    ],
)
def test_archive_check_says_what_is_wrong(
    tmp_path: Path, files: dict[str, bytes] | None, why: str
) -> None:
    path = tmp_path / "bad.tar"
    if files is None:
        path.write_bytes(b"this is not a tar file at all\n" * 40)
    else:
        write_tar(path, files)
    with pytest.raises(ImageArchiveError, match=why):
        image_archive_names(path)


async def test_read_chunks_regroups_reads_into_full_chunks() -> None:
    data = random.Random(1).randbytes(IMAGE_CHUNK_BYTES * 2 + 12345)
    stream = io.BytesIO(data)
    sizes = iter([7, 100_000, 1, 500_000] * 100)

    async def read(n: int) -> bytes:
        return stream.read(min(n, next(sizes)))

    chunks = [c async for c in read_chunks(read)]
    assert [len(c) for c in chunks] == [IMAGE_CHUNK_BYTES, IMAGE_CHUNK_BYTES, 12345]
    assert b"".join(chunks) == data


# -- the agent's receiver ---------------------------------------------------------


class Recorder:
    def __init__(self, fail: str = "") -> None:
        self.fail = fail
        self.seen: list[bytes] = []

    def __call__(self, archive: Path) -> list[str]:
        self.seen.append(archive.read_bytes())
        if self.fail:
            raise RuntimeError(self.fail)
        return image_archive_names(archive)[1]


async def send_all(r: ImageReceiver, transfer: str, data: bytes) -> None:
    await r.begin({"transfer": transfer, "size": len(data)})
    for offset in range(0, len(data), IMAGE_CHUNK_BYTES):
        await r.chunk(
            dict(image_chunk(transfer, offset, data[offset : offset + IMAGE_CHUNK_BYTES]))
        )


async def test_receiver_imports_and_removes_its_temp_file(tmp_path: Path) -> None:
    data = write_oci(tmp_path / "a.tar", size=2 * IMAGE_CHUNK_BYTES).read_bytes()
    importer = Recorder()
    r = ImageReceiver(importer, tmp_path / "tmp")
    await send_all(r, "t1", data)
    assert len(list((tmp_path / "tmp").iterdir())) == 1
    digest = hashlib.sha256(data).hexdigest()
    result = await r.commit({"transfer": "t1", "size": len(data), "sha256": digest})
    assert result == {"images": [NAME]}
    assert importer.seen == [data]
    assert list((tmp_path / "tmp").iterdir()) == [] and r.transfers == {}


@pytest.mark.parametrize(
    ("case", "code", "why"),
    [
        ("short", INVALID_PARAMS, "received"),
        ("digest", INVALID_PARAMS, "sha256 does not match"),
        ("not-a-tar", INVALID_PARAMS, "not a tar archive"),
        ("refused", -32603, "containerd refused it: ctr: unexpected media type"),
        ("unnamed", -32603, "no named image"),
    ],
)
async def test_receiver_refuses_bad_uploads_and_cleans_up(
    tmp_path: Path, case: str, code: int, why: str
) -> None:
    data = write_oci(tmp_path / "a.tar").read_bytes()
    if case == "not-a-tar":
        data = b"garbage " * 1000
    elif case == "unnamed":
        data = write_tar(tmp_path / "u.tar", {"index.json": b'{"manifests": []}'}).read_bytes()
    importer = Recorder("ctr: unexpected media type" if case == "refused" else "")
    r = ImageReceiver(importer, tmp_path / "tmp")
    size = len(data) + (1 if case == "short" else 0)
    await r.begin({"transfer": "t", "size": size})
    await r.chunk(dict(image_chunk("t", 0, data)))
    digest = hashlib.sha256(b"other" if case == "digest" else data).hexdigest()
    with pytest.raises(RpcError, match=why) as e:
        await r.commit({"transfer": "t", "size": size, "sha256": digest})
    assert e.value.code == code
    assert list((tmp_path / "tmp").iterdir()) == [] and r.transfers == {}
    if case in ("not-a-tar", "short", "digest"):
        assert importer.seen == []  # containerd never saw it


async def test_receiver_checks_offsets_sizes_and_transfer_names(tmp_path: Path) -> None:
    r = ImageReceiver(Recorder(), tmp_path / "tmp", max_open=2)
    await r.begin({"transfer": "t", "size": 10})
    with pytest.raises(RpcError, match="already open"):
        await r.begin({"transfer": "t", "size": 10})
    with pytest.raises(RpcError, match="offset 5: expected 0"):
        await r.chunk(dict(image_chunk("t", 5, b"abc")))
    await r.chunk(dict(image_chunk("t", 0, b"abcdef")))
    with pytest.raises(RpcError, match="more than the 10 bytes"):
        await r.chunk(dict(image_chunk("t", 6, b"ghijk")))
    with pytest.raises(RpcError) as e:
        await r.chunk(dict(image_chunk("nope", 0, b"a")))
    assert e.value.code == NOT_FOUND
    await r.begin({"transfer": "u", "size": 1})
    with pytest.raises(RpcError, match="2 image imports are already under way"):
        await r.begin({"transfer": "v", "size": 1})
    await r.abort({"transfer": "u"})
    with pytest.raises(RpcError, match="not enough disk space"):
        await r.begin({"transfer": "w", "size": 1 << 62})
    assert len(list((tmp_path / "tmp").iterdir())) == 1
    r.close()  # the connection ended
    assert list((tmp_path / "tmp").iterdir()) == [] and r.transfers == {}


async def test_a_new_agent_sweeps_what_a_dead_one_left(tmp_path: Path) -> None:
    dead = ImageReceiver(Recorder(), tmp_path / "tmp")
    await dead.begin({"transfer": "t", "size": 10})  # and then it was killed
    (tmp_path / "tmp" / "keep.txt").write_text("not ours")
    ImageReceiver(Recorder(), tmp_path / "tmp").sweep()
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == ["keep.txt"]


# -- the control side over real peers -----------------------------------------------


class Pipe:
    """One direction of an in-memory byte stream."""

    def __init__(self) -> None:
        self.reader = asyncio.StreamReader(limit=2**31 - 1)

    def write(self, data: bytes) -> None:
        self.reader.feed_data(data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        if not self.reader.at_eof():
            self.reader.feed_eof()


class Node:
    """A control-side Peer wired to an agent-side Peer serving an ImageReceiver."""

    def __init__(self, tmp: Path, importer: Recorder) -> None:
        down, up = Pipe(), Pipe()
        self.receiver = ImageReceiver(importer, tmp)
        self.agent = Peer(down.reader, up, handlers=self.receiver.handlers(), name="agent")
        self.control = Peer(up.reader, down, name="control")
        self.tasks = [
            asyncio.create_task(self.agent.run()),
            asyncio.create_task(self.control.run()),
        ]

    async def request(self, method: str, params: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return await self.control.request(method, params, timeout=timeout)

    async def close(self) -> None:
        self.control.close()
        self.agent.close()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), IMAGE_CHUNK_BYTES):
        yield data[i : i + IMAGE_CHUNK_BYTES]


async def test_push_fans_out_and_a_failing_node_does_not_stop_the_others(
    tmp_path: Path,
) -> None:
    data = write_oci(tmp_path / "a.tar", size=IMAGE_CHUNK_BYTES + 5000).read_bytes()
    good, bad = Recorder(), Recorder("ctr: no space left on device")
    nodes = {"n1": Node(tmp_path / "n1", good), "n2": Node(tmp_path / "n2", bad)}
    events: list[dict[str, Any]] = []

    async def emit(e: dict[str, Any]) -> None:
        events.append(e)

    try:
        result = await push_image({**nodes, "n3": None}, chunks_of(data), len(data), emit)
    finally:
        for n in nodes.values():
            await n.close()
    assert result["n1"].images == [NAME] and not result["n1"].error
    assert result["n2"].error == "containerd refused it: ctr: no space left on device"
    assert result["n3"].error == "no link to its agent"
    assert good.seen == [data] and bad.seen == [data]
    sent = [e["sent"] for e in events if e.get("node") == "n1" and e["phase"] == "sending"]
    assert sent == [IMAGE_CHUNK_BYTES, len(data)]
    assert {"node": "n1", "phase": "imported", "images": [NAME]} in events
    for name in ("n1", "n2"):
        assert list((tmp_path / name).iterdir()) == []


async def test_a_short_upload_is_aborted_on_every_node(tmp_path: Path) -> None:
    data = write_oci(tmp_path / "a.tar", size=IMAGE_CHUNK_BYTES).read_bytes()
    importer = Recorder()
    node = Node(tmp_path / "n1", importer)

    async def emit(e: dict[str, Any]) -> None:
        return None

    try:
        result = await push_image({"n1": node}, chunks_of(data[:1000]), len(data), emit)
    finally:
        await node.close()
    assert result["n1"].error == f"the upload ended after 1000 of {len(data)} bytes"
    assert importer.seen == [] and node.receiver.transfers == {}
    assert list((tmp_path / "n1").iterdir()) == []


async def test_an_upload_that_breaks_leaves_nothing_behind(tmp_path: Path) -> None:
    """The client goes away mid-upload: the push fails and every agent drops its file."""
    data = write_oci(tmp_path / "a.tar", size=2 * IMAGE_CHUNK_BYTES).read_bytes()
    importer = Recorder()
    node = Node(tmp_path / "n1", importer)

    async def broken() -> AsyncIterator[bytes]:
        yield data[:IMAGE_CHUNK_BYTES]
        raise ConnectionResetError("the client went away")

    async def emit(e: dict[str, Any]) -> None:
        return None

    try:
        with pytest.raises(ConnectionResetError):
            await push_image({"n1": node}, broken(), len(data), emit)
        assert node.receiver.transfers == {}
    finally:
        await node.close()
    assert importer.seen == [] and list((tmp_path / "n1").iterdir()) == []
