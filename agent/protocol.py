"""The agent protocol: JSON-RPC 2.0, one JSON message per line.

The control plane and a node agent talk over a pair of byte streams, in
production the stdin and stdout of an agent started over SSH. Requests run
from control to agent (`hello`, `sync_pods`, `network_config`, `logs`, `exec`,
`stats`, `image_import_*`); notifications run from agent to control
(`node_status`, `pod_status`, `stream`), and both ways for interactive exec
sessions (`exec_io`). Either side uses one `Peer` to send, receive and dispatch.

stdout belongs to the protocol alone: this module logs through `logging`,
which the agent points at stderr.

This is the one module `control/` imports from `agent/`, so it depends on the
standard library only (orjson is used when it is installed).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import logging
import os
import tarfile
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, NotRequired, Protocol, TypedDict

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover  (the agent may run without it)
    _orjson = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# Bumped on any incompatible change; both sides must speak the same version.
PROTOCOL_VERSION = 1
AGENT_VERSION = "0.1.0"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
_READ_CHUNK = 256 * 1024

# JSON-RPC 2.0 error codes, and ours in the server-error range.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
VERSION_MISMATCH = -32000
NOT_SUPPORTED = -32001
NOT_FOUND = -32002

Json = Any
Params = dict[str, Any]


# --- message shapes ------------------------------------------------------------
# Requests, control -> agent.


class HelloParams(TypedDict):
    protocolVersion: int
    nodeName: str
    controlVersion: NotRequired[str]


class NodeInfo(TypedDict):
    """`hello`'s result: what the node is."""

    hostname: str
    os: str  # "linux"
    osImage: str  # e.g. "Debian GNU/Linux 12 (bookworm)"
    kernel: str
    architecture: str  # "amd64", "arm64"
    cpus: int
    memoryBytes: int
    containerdVersion: str  # "" on hollow nodes
    agentVersion: str
    protocolVersion: int
    # Whether the agent programs pod networking, and so wants routes to the
    # other nodes and service state in `network_config` (hollow agents do not).
    networking: bool


class SyncPodsParams(TypedDict):
    """The full desired set of pods for the node. Level-triggered: a pod that
    is not in the set must not run; a pod with `metadata.deletionTimestamp` is
    to be stopped gracefully and then reported `terminated`."""

    pods: list[dict[str, Any]]


class SyncPodsResult(TypedDict):
    pods: int  # how many pods the agent now runs or is starting


class Route(TypedDict):
    cidr: str  # another node's pod CIDR
    via: str  # that node's address


class NetworkConfigParams(TypedDict):
    podCIDR: str  # this node's
    nodeIP: str
    clusterCIDR: str
    serviceCIDR: str
    clusterDNS: str
    clusterDomain: str
    routes: list[Route]
    # Service load-balancing state (issue 4): ClusterIP -> endpoints.
    services: NotRequired[list[dict[str, Any]]]


class LogsParams(TypedDict):
    namespace: str
    name: str
    uid: NotRequired[str]
    container: NotRequired[str]  # default: the only container
    tailLines: NotRequired[int]
    sinceSeconds: NotRequired[int]
    timestamps: NotRequired[bool]
    previous: NotRequired[bool]
    # With follow, the result names a stream; data then arrives as `stream`
    # notifications until one with eof true.
    follow: NotRequired[bool]


class LogsResult(TypedDict):
    data: str
    stream: NotRequired[str]


class ExecParams(TypedDict):
    """Run a command in a container. Without `session` it runs to completion
    and the result carries its output. With `session` (an id the control
    plane picks, unique on the connection) it is an interactive session: the
    result comes once the command started, and its input and output then flow
    as `exec_io` notifications (see ExecIO)."""

    namespace: str
    name: str
    uid: NotRequired[str]
    command: list[str]
    container: NotRequired[str]
    timeoutSeconds: NotRequired[int]
    session: NotRequired[str]
    stdin: NotRequired[bool]  # a session reads stdin
    tty: NotRequired[bool]  # a session runs on a terminal (stdout and stderr merge)
    cols: NotRequired[int]  # the terminal's first size
    rows: NotRequired[int]


class ExecResult(TypedDict):
    exitCode: int
    stdout: str
    stderr: str


class ExecIO(TypedDict):
    """One `exec_io` notification of an interactive exec session.

    control -> agent: `data` for stdin, `eof` (stdin ended), `resize`, `ack`
    (the client consumed that many bytes of output), `close` (hang up: the
    agent ends the session, which closes the command's stdin).
    agent -> control: `data` from `fd` 1 or 2; the last one has `exit` and
    nothing follows it. The agent keeps at most EXEC_WINDOW_BYTES of output
    unacknowledged, so a slow client slows the command instead of filling
    memory. `data` is base64, at most EXEC_CHUNK_BYTES decoded.
    """

    session: str
    data: NotRequired[str]
    fd: NotRequired[int]
    resize: NotRequired[TerminalSize]
    ack: NotRequired[int]
    eof: NotRequired[bool]
    close: NotRequired[bool]
    exit: NotRequired[ExecExit]


class ExecSessionResult(TypedDict):
    session: str
    # Whether the runtime can close the command's stdin alone (an `eof`
    # without a tty); containerd 1.6's streaming server cannot.
    stdinClose: bool


class TerminalSize(TypedDict):
    cols: int
    rows: int


class ExecExit(TypedDict):
    exitCode: int  # -1 when unknown (then `error` says why)
    error: NotRequired[str]


class StatsParams(TypedDict, total=False):
    pods: list[str]  # uids; all pods when absent


class ContainerStats(TypedDict):
    name: str
    cpuNanoCores: int
    memoryWorkingSetBytes: int


class PodStats(TypedDict):
    namespace: str
    name: str
    uid: str
    containers: list[ContainerStats]


class StatsResult(TypedDict):
    node: dict[str, int]  # cpuNanoCores, memoryWorkingSetBytes, ...
    pods: list[PodStats]


# Notifications, agent -> control.


class NodeCondition(TypedDict):
    type: str  # Ready, MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable
    status: Literal["True", "False", "Unknown"]
    reason: NotRequired[str]
    message: NotRequired[str]


class NodeStatusParams(TypedDict):
    """The heartbeat. Quantities are Kubernetes quantity strings."""

    conditions: list[NodeCondition]
    capacity: dict[str, str]
    allocatable: dict[str, str]
    usage: NotRequired[dict[str, str]]


class PodStatusParams(TypedDict):
    namespace: str
    name: str
    uid: str
    # A Kubernetes PodStatus: phase, conditions, containerStatuses, podIP,
    # hostIP, startTime, ...
    status: dict[str, Any]
    # True once the pod runs no container and never will again on this node
    # (deleted, removed from the desired set, or finished for good).
    terminated: NotRequired[bool]


class StreamParams(TypedDict):
    stream: str
    data: str
    eof: NotRequired[bool]
    exitCode: NotRequired[int]


# --- interactive exec ----------------------------------------------------------
# Sizes of `exec_io` data, and Kubernetes' WebSocket channel protocol for exec
# (v4.channel.k8s.io), which containerd's streaming server and the API server
# both speak: every message starts with its channel byte.

EXEC_CHUNK_BYTES = 32 * 1024
EXEC_WINDOW_BYTES = 8 * EXEC_CHUNK_BYTES
CHANNEL_STDIN, CHANNEL_STDOUT, CHANNEL_STDERR, CHANNEL_ERROR, CHANNEL_RESIZE = 0, 1, 2, 3, 4
CHANNEL_PROTOCOL = "v4.channel.k8s.io"


def exec_status(exit_code: int, error: str = "") -> dict[str, Any]:
    """The metav1.Status that ends an exec on the error channel, in Kubernetes' shape."""
    if error:
        return {"metadata": {}, "status": "Failure", "message": error, "reason": "InternalError"}
    if exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {exit_code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
    }


def exec_exit_code(status: Any) -> int | None:
    """The exit code in an exec's final Status (a dict, or its JSON), or None
    when it carries none (an error)."""
    if isinstance(status, (bytes, str)):
        try:
            status = _decode(status.encode() if isinstance(status, str) else status)
        except ValueError:
            return None
    if not isinstance(status, dict):
        return None
    if status.get("status") == "Success":
        return 0
    details = status.get("details")
    for cause in (details.get("causes") if isinstance(details, dict) else None) or []:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            with contextlib.suppress(ValueError, TypeError):
                return int(str(cause.get("message")))
    return None


# --- errors --------------------------------------------------------------------


class RpcError(Exception):
    """A JSON-RPC error: raised by handlers, and by `Peer.request` when the
    other side answered with an error."""

    def __init__(self, code: int, message: str, data: Json = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err

    def __str__(self) -> str:
        return f"{self.message} (code {self.code})"


class InvalidParams(RpcError):
    def __init__(self, message: str) -> None:
        super().__init__(INVALID_PARAMS, f"invalid params: {message}")


class NotSupported(RpcError):
    def __init__(self, message: str) -> None:
        super().__init__(NOT_SUPPORTED, message)


class ProtocolVersionError(RpcError):
    def __init__(self, message: str) -> None:
        super().__init__(VERSION_MISMATCH, message)


class ConnectionClosed(ConnectionError):
    """The other side went away while a request was waiting for its answer."""


# --- streams -------------------------------------------------------------------


class Reader(Protocol):
    """What a Peer reads from: asyncio's StreamReader, or asyncssh's SSHReader."""

    async def read(self, n: int = -1) -> bytes: ...


class Writer(Protocol):
    """What a Peer writes to: asyncio's StreamWriter, or asyncssh's SSHWriter."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


# A handler takes the params (an object, or {} when absent) and returns the
# result. Notification handlers run in order, one at a time, and should be
# quick; request handlers run concurrently.
Handler = Callable[[Params], Awaitable[Json]]


def encode(message: Mapping[str, Any]) -> bytes:
    """One message as one line."""
    if _orjson is not None:
        return _orjson.dumps(message) + b"\n"
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _decode(line: bytes) -> Json:
    if _orjson is not None:
        return _orjson.loads(line)
    return json.loads(line)


class Peer:
    """One end of a protocol connection.

    `run()` reads messages until the stream ends; `request()` and `notify()`
    send. A malformed or oversized message is answered with a JSON-RPC error
    and reading goes on. When the stream ends, waiting requests fail with
    ConnectionClosed.
    """

    def __init__(
        self,
        reader: Reader,
        writer: Writer,
        *,
        handlers: Mapping[str, Handler] | None = None,
        name: str = "peer",
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        request_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.name = name
        self.max_message_bytes = max_message_bytes
        self.request_timeout = request_timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Json]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()
        self._closed = False
        self.closed = asyncio.Event()

    def on(self, method: str, handler: Handler) -> None:
        self.handlers[method] = handler

    # -- sending -------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-request deadline is part of the API
    ) -> Json:
        """Send a request and wait for its result. Raises RpcError for an error
        answer, TimeoutError, or ConnectionClosed."""
        if self._closed:
            raise ConnectionClosed(f"{self.name}: connection closed")
        msg_id = next(self._ids)
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = dict(params)
        try:
            await self._send(message)
            async with asyncio.timeout(self.request_timeout if timeout is None else timeout):
                return await future
        finally:
            self._pending.pop(msg_id, None)

    async def notify(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        if self._closed:
            raise ConnectionClosed(f"{self.name}: connection closed")
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        await self._send(message)

    async def _send(self, message: Mapping[str, Any]) -> None:
        data = encode(message)
        if len(data) > self.max_message_bytes:
            raise ValueError(
                f"{self.name}: message of {len(data)} bytes exceeds the limit of {self.max_message_bytes}"
            )
        async with self._write_lock:
            try:
                self.writer.write(data)
                await self.writer.drain()
            except (ConnectionError, BrokenPipeError, RuntimeError) as e:
                self._shutdown()
                raise ConnectionClosed(f"{self.name}: cannot write: {e}") from e

    async def _respond(
        self, msg_id: Json, result: Json = None, error: RpcError | None = None
    ) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id}
        if error is not None:
            message["error"] = error.to_json()
        else:
            message["result"] = result
        try:
            try:
                await self._send(message)
            except ValueError as e:
                err = RpcError(INTERNAL_ERROR, str(e))
                await self._send({"jsonrpc": "2.0", "id": msg_id, "error": err.to_json()})
        except ConnectionClosed:
            log.debug("%s: connection closed before answering %r", self.name, msg_id)

    # -- receiving -----------------------------------------------------------

    async def run(self) -> None:
        """Read and dispatch messages until the other side closes the stream."""
        buf = bytearray()
        discarding = False  # inside an oversized line, waiting for its end
        try:
            while True:
                chunk = await self.reader.read(_READ_CHUNK)
                if not chunk:
                    break
                start = 0
                while True:
                    end = chunk.find(b"\n", start)
                    if end < 0:
                        if not discarding:
                            buf += chunk[start:]
                            if len(buf) > self.max_message_bytes:
                                buf.clear()
                                discarding = True
                        break
                    if discarding:
                        discarding = False
                        await self._too_large()
                    else:
                        buf += chunk[start:end]
                        if len(buf) > self.max_message_bytes:
                            await self._too_large()
                        elif buf.strip():
                            await self._dispatch(bytes(buf))
                        buf.clear()
                    start = end + 1
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.debug("%s: read failed: %s", self.name, e)
        finally:
            self._shutdown()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _too_large(self) -> None:
        log.warning("%s: dropped a message over %d bytes", self.name, self.max_message_bytes)
        err = RpcError(
            INVALID_REQUEST, f"message exceeds the limit of {self.max_message_bytes} bytes"
        )
        await self._respond(None, error=err)

    async def _dispatch(self, line: bytes) -> None:
        try:
            msg = _decode(line)
        except ValueError as e:
            log.warning("%s: unparseable message: %s", self.name, e)
            await self._respond(None, error=RpcError(PARSE_ERROR, f"parse error: {e}"))
            return
        if not isinstance(msg, dict):
            # Batches are not part of this protocol.
            await self._respond(
                None, error=RpcError(INVALID_REQUEST, "invalid request: expected an object")
            )
            return
        msg_id = msg.get("id")
        valid_id = msg_id is None or (
            isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool)
        )
        if msg.get("jsonrpc") != "2.0" or not valid_id:
            await self._respond(
                msg_id if valid_id else None,
                error=RpcError(
                    INVALID_REQUEST,
                    'invalid request: want "jsonrpc": "2.0" and an integer or string id',
                ),
            )
            return
        method = msg.get("method")
        if method is None and "id" in msg and ("result" in msg or "error" in msg):
            self._on_response(msg)
            return
        params = msg.get("params", {})
        if not isinstance(method, str) or not isinstance(params, dict):
            if "id" in msg:
                why = (
                    "method must be a string"
                    if not isinstance(method, str)
                    else "params must be an object"
                )
                await self._respond(
                    msg_id, error=RpcError(INVALID_REQUEST, f"invalid request: {why}")
                )
            else:
                log.warning("%s: dropped an invalid notification", self.name)
            return
        if "id" not in msg:
            await self._on_notification(method, params)
            return
        task = asyncio.create_task(self._on_request(msg_id, method, params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_response(self, msg: dict[str, Any]) -> None:
        future = self._pending.get(msg["id"]) if isinstance(msg["id"], int) else None
        if future is None or future.done():
            log.debug("%s: answer to unknown request %r", self.name, msg["id"])
            return
        error = msg.get("error")
        if error is not None:
            if isinstance(error, dict):
                code = error.get("code")
                exc = RpcError(
                    code if isinstance(code, int) else INTERNAL_ERROR,
                    str(error.get("message") or "error"),
                    error.get("data"),
                )
            else:
                exc = RpcError(INTERNAL_ERROR, f"malformed error: {error!r}")
            future.set_exception(exc)
        else:
            future.set_result(msg.get("result"))

    async def _on_notification(self, method: str, params: Params) -> None:
        handler = self.handlers.get(method)
        if handler is None:
            log.debug("%s: no handler for notification %s", self.name, method)
            return
        try:
            await handler(params)
        except Exception:
            log.exception("%s: notification %s failed", self.name, method)

    async def _on_request(self, msg_id: Json, method: str, params: Params) -> None:
        handler = self.handlers.get(method)
        if handler is None:
            await self._respond(
                msg_id, error=RpcError(METHOD_NOT_FOUND, f"method not found: {method}")
            )
            return
        try:
            result = await handler(params)
        except RpcError as e:
            await self._respond(msg_id, error=e)
        except (KeyError, TypeError, ValueError) as e:
            await self._respond(msg_id, error=InvalidParams(f"{type(e).__name__}: {e}"))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("%s: request %s failed", self.name, method)
            await self._respond(msg_id, error=RpcError(INTERNAL_ERROR, f"internal error: {e}"))
        else:
            await self._respond(msg_id, result)

    # -- closing -------------------------------------------------------------

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionClosed(f"{self.name}: connection closed"))
        self.closed.set()

    def close(self) -> None:
        """Fail waiting requests and close the writing side."""
        self._shutdown()
        with contextlib.suppress(Exception):
            self.writer.close()


# --- hello ---------------------------------------------------------------------


def check_hello(params: Params) -> HelloParams:
    """The agent's side of `hello`: refuse a control plane of another version."""
    version = params.get("protocolVersion")
    if version != PROTOCOL_VERSION:
        raise ProtocolVersionError(
            f"protocol version mismatch: the control plane speaks version {version}, "
            f"this agent ({AGENT_VERSION}) speaks version {PROTOCOL_VERSION}; "
            "install matching versions of pilothouse on the control plane and the node"
        )
    name = params.get("nodeName")
    if not isinstance(name, str):
        raise InvalidParams("nodeName: required")
    return HelloParams(protocolVersion=version, nodeName=name)


async def hello(peer: Peer, node_name: str) -> NodeInfo:
    """The control plane's side of `hello`: send ours, check theirs.

    Raises ProtocolVersionError when either side finds the other's version
    wrong.
    """
    params = HelloParams(protocolVersion=PROTOCOL_VERSION, nodeName=node_name)
    try:
        info = await peer.request("hello", params)
    except RpcError as e:
        if e.code == VERSION_MISMATCH:
            raise ProtocolVersionError(e.message) from None
        raise
    if not isinstance(info, dict):
        raise RpcError(INVALID_REQUEST, f"hello: expected an object, got {type(info).__name__}")
    version = info.get("protocolVersion")
    if version != PROTOCOL_VERSION:
        raise ProtocolVersionError(
            f"protocol version mismatch: the agent on {node_name} "
            f"({info.get('agentVersion', 'unknown version')}) speaks version {version}, "
            f"this control plane speaks version {PROTOCOL_VERSION}; "
            "install matching versions of pilothouse on the control plane and the node"
        )
    return NodeInfo(
        hostname=str(info.get("hostname") or ""),
        os=str(info.get("os") or "linux"),
        osImage=str(info.get("osImage") or ""),
        kernel=str(info.get("kernel") or ""),
        architecture=str(info.get("architecture") or ""),
        cpus=int(info.get("cpus") or 0),
        memoryBytes=int(info.get("memoryBytes") or 0),
        containerdVersion=str(info.get("containerdVersion") or ""),
        agentVersion=str(info.get("agentVersion") or ""),
        protocolVersion=version,
        networking=bool(info.get("networking", True)),
    )


# --- image import --------------------------------------------------------------
# `pilothouse image import` sends an image archive to a node in bounded chunks:
# `image_import_begin` opens a transfer, `image_import_chunk` appends base64 data
# at an offset, `image_import_commit` checks size and digest and imports the
# archive into containerd (its result names the images), `image_import_abort`
# drops a transfer. An agent drops its open transfers when the connection ends.

# Raw bytes per chunk: base64 makes it exactly 1 MiB, far below the message limit.
IMAGE_CHUNK_BYTES = 768 * 1024
# containerd may take a while to unpack a large image.
IMAGE_COMMIT_TIMEOUT = 300.0
# The largest JSON document read from an archive (index.json, manifest.json).
_ARCHIVE_JSON_LIMIT = 4 * 1024 * 1024


class ImageImportBeginParams(TypedDict):
    transfer: str  # chosen by the control plane, unique per connection
    size: int  # bytes to come


class ImageImportChunkParams(TypedDict):
    transfer: str
    offset: int  # where this chunk starts: chunks arrive in order
    data: str  # base64, at most IMAGE_CHUNK_BYTES decoded


class ImageImportCommitParams(TypedDict):
    transfer: str
    size: int
    sha256: str  # hex digest of the whole archive


class ImageImportResult(TypedDict):
    images: list[str]  # the image names containerd now holds from the archive


class ImageArchiveError(ValueError):
    """A file that is not an OCI or docker image archive."""


def image_chunk(transfer: str, offset: int, data: bytes) -> ImageImportChunkParams:
    if len(data) > IMAGE_CHUNK_BYTES:
        raise ValueError(f"a chunk holds at most {IMAGE_CHUNK_BYTES} bytes, not {len(data)}")
    return ImageImportChunkParams(
        transfer=transfer, offset=offset, data=base64.b64encode(data).decode("ascii")
    )


def image_chunk_data(params: Params) -> bytes:
    """The bytes of an `image_import_chunk`; InvalidParams when they are not base64
    or too many."""
    try:
        data = base64.b64decode(str(params["data"]), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidParams(f"data: not base64: {e}") from None
    if len(data) > IMAGE_CHUNK_BYTES:
        raise InvalidParams(f"data: a chunk holds at most {IMAGE_CHUNK_BYTES} bytes")
    return data


def image_archive_names(path: str | os.PathLike[str]) -> tuple[str, list[str]]:
    """What an image archive is ("oci" or "docker") and the image names it
    carries (possibly none). Raises ImageArchiveError when it is not a tar, or
    has neither an OCI `index.json` nor a docker `manifest.json`."""
    try:
        tar = tarfile.open(path, "r:*")
    except tarfile.TarError:
        raise ImageArchiveError("not a tar archive") from None
    with tar:
        try:
            members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ImageArchiveError(f"a damaged tar archive: {e}") from None
        if "index.json" in members:
            index = _archive_json(tar, members["index.json"])
            names = []
            for m in index.get("manifests") or [] if isinstance(index, dict) else []:
                notes = (m.get("annotations") or {}) if isinstance(m, dict) else {}
                name = notes.get("io.containerd.image.name") or notes.get(
                    "org.opencontainers.image.ref.name"
                )
                if isinstance(name, str) and name:
                    names.append(name)
            return "oci", names
        if "manifest.json" in members:
            manifest = _archive_json(tar, members["manifest.json"])
            entries = manifest if isinstance(manifest, list) else []
            tags = [t for e in entries if isinstance(e, dict) for t in e.get("RepoTags") or []]
            return "docker", [str(t) for t in tags]
    raise ImageArchiveError(
        "not an OCI or docker image archive: it has no index.json or manifest.json"
    )


def _archive_json(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Json:
    if member.size > _ARCHIVE_JSON_LIMIT:
        raise ImageArchiveError(f"{member.name} is too large ({member.size} bytes)")
    f = tar.extractfile(member)
    if f is None:
        raise ImageArchiveError(f"{member.name} cannot be read")
    try:
        return json.loads(f.read())
    except (ValueError, tarfile.TarError, OSError) as e:
        raise ImageArchiveError(f"{member.name} is not valid JSON: {e}") from None
