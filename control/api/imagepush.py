"""Pushing an image archive to node agents, for `pilothouse image import`.

The archive arrives as a stream of bytes (the body of an upload) and goes to
every chosen node at once, chunk by chunk, through the node links and the
agent protocol's `image_import_*` methods: begin, chunks of at most
IMAGE_CHUNK_BYTES (each acknowledged before the next, so at most one chunk is
held per upload), then commit with the size and SHA-256, which makes the agent
import the archive into containerd and name the images it now holds. A node
that fails drops out; the others go on. Transfers not committed are aborted,
whatever ends the upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict

from agent.protocol import (
    IMAGE_CHUNK_BYTES,
    IMAGE_COMMIT_TIMEOUT,
    ImageImportBeginParams,
    ImageImportCommitParams,
    Params,
    RpcError,
    image_chunk,
)

log = logging.getLogger(__name__)

_ABORT_TIMEOUT = 5.0


class Event(TypedDict, total=False):
    """One line of an image import's answer (control.api.images lists them)."""

    phase: Literal["started", "sending", "imported", "failed", "finished"]
    node: str
    size: int
    sent: int
    images: list[str]
    error: str
    nodes: list[str]  # started: the chosen nodes
    imported: list[str]  # finished: the nodes that imported the images
    failed: list[str]  # finished: those that did not


class ImageLink(Protocol):
    """What a push needs from a node link (control.nodes.link.NodeLink)."""

    async def request(self, method: str, params: Params, timeout: float | None = None) -> Any: ...  # noqa: ASYNC109


@dataclass
class NodeImport:
    """One node's share of an upload."""

    node: str
    link: ImageLink | None
    sent: int = 0
    opened: bool = False
    done: bool = False
    error: str = ""
    images: list[str] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return not self.error and not self.done


def failure(e: BaseException) -> str:
    """An agent's refusal, or its silence, as one line."""
    if isinstance(e, RpcError):
        return e.message
    if isinstance(e, TimeoutError):
        return "the agent did not answer in time"
    return str(e) or type(e).__name__


async def read_chunks(read: Callable[[int], Awaitable[bytes]]) -> AsyncIterator[bytes]:
    """Chunks of IMAGE_CHUNK_BYTES (the last may be shorter) from a `read(n)`
    that returns at most n bytes, and b"" at the end."""
    buf = bytearray()
    while True:
        data = await read(IMAGE_CHUNK_BYTES - len(buf))
        if not data:
            break
        buf += data
        if len(buf) == IMAGE_CHUNK_BYTES:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


async def push_image(
    links: Mapping[str, ImageLink | None],
    chunks: AsyncIterator[bytes],
    size: int,
    emit: Callable[[Event], Awaitable[None]],
) -> dict[str, NodeImport]:
    """Send the archive that `chunks` yields (`size` bytes in all) to every
    node in `links` (None: the node has no link). `emit` hears each node's
    progress ({"node", "phase": "sending", "sent", "size"}) and outcome
    ("imported" with "images", or "failed" with "error")."""
    transfer = uuid.uuid4().hex
    nodes = {name: NodeImport(name, link) for name, link in links.items()}

    async def fail(n: NodeImport, error: str) -> None:
        n.error = error.removeprefix(f"node {n.node}: ")
        log.info("image import to node %s failed: %s", n.node, error)
        await emit({"node": n.node, "phase": "failed", "error": n.error})

    async def call(n: NodeImport, method: str, params: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        assert n.link is not None
        try:
            return await n.link.request(method, params, timeout)
        except (RpcError, ConnectionError, TimeoutError) as e:
            await fail(n, failure(e))
            return None

    async def begin(n: NodeImport) -> None:
        if n.link is None:
            await fail(n, "no link to its agent")
            return
        params = ImageImportBeginParams(transfer=transfer, size=size)
        if await call(n, "image_import_begin", params) is not None:
            n.opened = True

    async def send(n: NodeImport, offset: int, data: bytes) -> None:
        if await call(n, "image_import_chunk", image_chunk(transfer, offset, data)) is not None:
            n.sent = offset + len(data)
            await emit({"node": n.node, "phase": "sending", "sent": n.sent, "size": size})

    async def commit(n: NodeImport, digest: str) -> None:
        params = ImageImportCommitParams(transfer=transfer, size=size, sha256=digest)
        result = await call(n, "image_import_commit", params, IMAGE_COMMIT_TIMEOUT)
        n.done = True  # the agent dropped its transfer, imported or not
        if isinstance(result, dict) and not n.error:
            n.images = [str(i) for i in result.get("images") or []]
            await emit({"node": n.node, "phase": "imported", "images": n.images})
        elif not n.error:
            await fail(n, f"unexpected answer: {result!r}")

    def live() -> list[NodeImport]:
        return [n for n in nodes.values() if n.live]

    try:
        await asyncio.gather(*(begin(n) for n in nodes.values()))
        digest = hashlib.sha256()
        offset = 0
        async for data in chunks:
            if not live():
                break
            digest.update(data)
            await asyncio.gather(*(send(n, offset, data) for n in live()))
            offset += len(data)
        if offset != size and live():
            for n in live():
                await fail(n, f"the upload ended after {offset} of {size} bytes")
        await asyncio.gather(*(commit(n, digest.hexdigest()) for n in live()))
    finally:
        await _abort(transfer, [n for n in nodes.values() if n.opened and not n.done])
    return nodes


async def _abort(transfer: str, nodes: list[NodeImport]) -> None:
    """Best effort: the agent drops its temp file (it would anyway when the
    connection ends)."""

    async def one(n: NodeImport) -> None:
        assert n.link is not None
        with contextlib.suppress(RpcError, ConnectionError, TimeoutError):
            await n.link.request("image_import_abort", {"transfer": transfer}, _ABORT_TIMEOUT)

    if nodes:
        await asyncio.gather(*(one(n) for n in nodes))
