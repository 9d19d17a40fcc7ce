"""JSON-RPC errors: the codes, and the exceptions that carry them."""

from __future__ import annotations

from typing import Any

from .messages import Json

# JSON-RPC 2.0 error codes, and ours in the server-error range.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
VERSION_MISMATCH = -32000
NOT_SUPPORTED = -32001
NOT_FOUND = -32002
# services_update's base is not the agent's generation: send a full services_sync.
SERVICES_OUT_OF_SYNC = -32003


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


class ServicesOutOfSync(RpcError):
    def __init__(self, message: str) -> None:
        super().__init__(SERVICES_OUT_OF_SYNC, message)


class ConnectionClosed(ConnectionError):
    """The other side went away while a request was waiting for its answer."""
