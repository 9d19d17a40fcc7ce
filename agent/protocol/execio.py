"""Interactive exec: the sizes of `exec_io` data, and Kubernetes' WebSocket
channel protocol for exec (v4.channel.k8s.io), which containerd's streaming
server and the API server both speak: every message starts with its channel
byte, and the error channel ends the exec with a metav1.Status.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .peer import decode

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
            status = decode(status.encode() if isinstance(status, str) else status)
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
