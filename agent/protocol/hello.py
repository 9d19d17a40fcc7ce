"""`hello`, the first request on a connection: both sides check that they
speak the same protocol version, and the agent says what the node is."""

from __future__ import annotations

from .errors import (
    INVALID_REQUEST,
    VERSION_MISMATCH,
    InvalidParams,
    ProtocolVersionError,
    RpcError,
)
from .messages import AGENT_VERSION, PROTOCOL_VERSION, HelloParams, NodeInfo, Params
from .peer import Peer


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
    node = NodeInfo(
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
    if info.get("proxyOnly") is True:
        node["proxyOnly"] = True
    for key in ("machineID", "systemUUID", "bootID"):
        value = info.get(key)
        if isinstance(value, str):
            node[key] = value
    return node
