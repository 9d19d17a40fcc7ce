"""The wire messages of the agent protocol: versions, and the params and
results of every method and notification, as the JSON objects they are.

Requests run from control to agent (`hello`, `sync_pods`, `network_config`,
`logs`, `exec`, `attach`, `stats`, `image_import_*`; `services_*` are in
`services`); notifications run from agent to control (`node_status`,
`pod_status`, `pod_event`, `stream`), and both ways for interactive exec and
attach sessions (`exec_io`).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

# Bumped on any incompatible change; both sides must speak the same version.
PROTOCOL_VERSION = 1
AGENT_VERSION = "0.1.0"

Json = Any
Params = dict[str, Any]


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
    # A proxy-only agent (`python3 -m agent --proxy-only`): no containerd, no
    # pods; it answers network_config and the services_* requests only.
    proxyOnly: NotRequired[bool]
    # The machine's identity, as the kubelet reports it in Node
    # status.nodeInfo ("" when unknown; older agents leave them out).
    machineID: NotRequired[str]  # /etc/machine-id
    systemUUID: NotRequired[str]  # the DMI product UUID
    bootID: NotRequired[str]  # /proc/sys/kernel/random/boot_id


class SyncPodsParams(TypedDict):
    """The full desired set of pods for the node. Level-triggered: a pod that
    is not in the set must not run; a pod with `metadata.deletionTimestamp` is
    to be stopped gracefully and then reported `terminated`.

    `configMaps` and `secrets` are those the pods reference (env, envFrom,
    volumes) and that exist, and only those: a referenced one that is absent
    does not exist. A Secret never reaches a node none of whose pods use it."""

    pods: list[dict[str, Any]]
    configMaps: NotRequired[list[PodSource]]
    secrets: NotRequired[list[PodSource]]


class PodSource(TypedDict):
    """A ConfigMap or Secret as a pod reads it: `data` and `binaryData`
    as the API holds them (a Secret's `data` base64, a ConfigMap's text)."""

    namespace: str
    name: str
    data: dict[str, str]
    binaryData: NotRequired[dict[str, str]]


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
    clusterDNSTTL: NotRequired[int]  # seconds the cluster DNS lets answers be cached


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


class AttachParams(TypedDict):
    """Attach to a container's main process, as an interactive session (see
    ExecParams and ExecIO): its output from now on, and its stdin when the
    container has `stdin: true`. The session ends with exit code 0 when the
    container ends; a hang-up leaves the container running."""

    namespace: str
    name: str
    uid: NotRequired[str]
    container: NotRequired[str]
    session: NotRequired[str]  # required on the wire: the link names the session
    stdin: NotRequired[bool]
    tty: NotRequired[bool]  # the container's own tty (stdout and stderr merged)
    cols: NotRequired[int]
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
    # without a tty); containerd 1.6's streaming server cannot (the agent runs
    # such an exec under `ctr` when it can). Always true for an attach, whose
    # `eof` only detaches.
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


class PodEventParams(TypedDict):
    """An Event the agent records about one of its pods (the kubelet's events,
    such as InvalidEnvironmentVariableNames); the control plane writes it."""

    namespace: str
    name: str
    uid: str
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


class StreamParams(TypedDict):
    stream: str
    data: str
    eof: NotRequired[bool]
    exitCode: NotRequired[int]


# Image import (see agent.protocol.images).


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
