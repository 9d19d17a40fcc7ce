"""The agent protocol: JSON-RPC 2.0, one JSON message per line.

The control plane and a node agent talk over a pair of byte streams, in
production the stdin and stdout of an agent started over SSH. Requests run
from control to agent (`hello`, `sync_pods`, `network_config`, `logs`, `exec`,
`attach`, `stats`, `image_import_*`, `services_sync`, `services_update`);
notifications run from agent to control (`node_status`, `pod_status`,
`stream`), and both ways for interactive exec and attach sessions (`exec_io`). Either side uses one `Peer` to
send, receive and dispatch.

The modules: `messages` (versions, params and results), `errors` (codes and
exceptions), `peer` (the connection), `hello` (the version handshake),
`execio` (interactive exec and Kubernetes' channel protocol), `images` (image
import), `services` (the service table and its changes), and `primitives`
(Kubernetes quantities, durations, times, names and owner references, which
both sides use).

This is the one package `control/` imports from `agent/`, so it depends on the
standard library only (orjson is used when it is installed). The names below
are the package's interface, what every link needs; the subject modules
`execio`, `services` and `primitives` are imported as such
(`from agent.protocol.services import SERVICES_SYNC`), not re-exported here.
"""

from .errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_FOUND,
    NOT_SUPPORTED,
    PARSE_ERROR,
    SERVICES_OUT_OF_SYNC,
    VERSION_MISMATCH,
    ConnectionClosed,
    InvalidParams,
    NotSupported,
    ProtocolVersionError,
    RpcError,
    ServicesOutOfSync,
)
from .hello import check_hello, hello
from .images import (
    IMAGE_CHUNK_BYTES,
    IMAGE_COMMIT_TIMEOUT,
    ImageArchiveError,
    image_archive_names,
    image_chunk,
    image_chunk_data,
)
from .messages import (
    AGENT_VERSION,
    PROTOCOL_VERSION,
    AttachParams,
    ContainerStats,
    ExecExit,
    ExecIO,
    ExecParams,
    ExecResult,
    ExecSessionResult,
    HelloParams,
    ImageImportBeginParams,
    ImageImportChunkParams,
    ImageImportCommitParams,
    ImageImportResult,
    Json,
    LogsParams,
    LogsResult,
    NetworkConfigParams,
    NodeCondition,
    NodeInfo,
    NodeStatusParams,
    Params,
    PodEventParams,
    PodSource,
    PodStats,
    PodStatusParams,
    Route,
    StatsParams,
    StatsResult,
    StreamParams,
    SyncPodsParams,
    SyncPodsResult,
    TerminalSize,
)
from .peer import (
    DEFAULT_TIMEOUT,
    MAX_MESSAGE_BYTES,
    Handler,
    Peer,
    Reader,
    Writer,
    encode,
)

__all__ = [
    "AGENT_VERSION",
    "DEFAULT_TIMEOUT",
    "IMAGE_CHUNK_BYTES",
    "IMAGE_COMMIT_TIMEOUT",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "MAX_MESSAGE_BYTES",
    "METHOD_NOT_FOUND",
    "NOT_FOUND",
    "NOT_SUPPORTED",
    "PARSE_ERROR",
    "PROTOCOL_VERSION",
    "SERVICES_OUT_OF_SYNC",
    "VERSION_MISMATCH",
    "AttachParams",
    "ConnectionClosed",
    "ContainerStats",
    "ExecExit",
    "ExecIO",
    "ExecParams",
    "ExecResult",
    "ExecSessionResult",
    "Handler",
    "HelloParams",
    "ImageArchiveError",
    "ImageImportBeginParams",
    "ImageImportChunkParams",
    "ImageImportCommitParams",
    "ImageImportResult",
    "InvalidParams",
    "Json",
    "LogsParams",
    "LogsResult",
    "NetworkConfigParams",
    "NodeCondition",
    "NodeInfo",
    "NodeStatusParams",
    "NotSupported",
    "Params",
    "Peer",
    "PodEventParams",
    "PodSource",
    "PodStats",
    "PodStatusParams",
    "ProtocolVersionError",
    "Reader",
    "Route",
    "RpcError",
    "ServicesOutOfSync",
    "StatsParams",
    "StatsResult",
    "StreamParams",
    "SyncPodsParams",
    "SyncPodsResult",
    "TerminalSize",
    "Writer",
    "check_hello",
    "encode",
    "hello",
    "image_archive_names",
    "image_chunk",
    "image_chunk_data",
]
