"""What the pushers of agent state (service rules, ingress routes) do when a
request fails: tell an agent that lacks the method from a real failure, and
record a real failure on the Node, then wait out a doubling backoff."""

from __future__ import annotations

import asyncio
import logging

from agent.protocol import METHOD_NOT_FOUND, NOT_SUPPORTED, RpcError
from control.api.registry import Registry
from control.errors import ApiError
from control.machinery.events import EventRecorder
from control.objects.kinds import NODE

log = logging.getLogger(__name__)


def unsupported(error: RpcError) -> bool:
    """The agent does not keep this state (an older agent, or one run without it)."""
    return error.code in (METHOD_NOT_FOUND, NOT_SUPPORTED)


def backoff_delay(initial: float, maximum: float, failures: int) -> float:
    """The wait after the `failures`-th failure in a row: `initial`, doubling up to `maximum`."""
    return min(maximum, initial * 2 ** (failures - 1))


async def record_failure(
    registry: Registry,
    recorder: EventRecorder | None,
    node: str,
    reason: str,
    what: str,
    message: str,
    delay: float,
) -> None:
    """Log the failure, record it as a Warning Event on the Node `node` (when
    there is a recorder and a Node), then sleep `delay` seconds."""
    log.warning("%s: %s not applied (retry in %.0fs): %s", node, what, delay, message)
    if recorder is not None:
        try:
            obj = (await registry.get(NODE, None, node)).obj
        except ApiError:
            pass
        else:
            await recorder.record(obj, "Warning", reason, f"{what} not applied: {message}")
    await asyncio.sleep(delay)
