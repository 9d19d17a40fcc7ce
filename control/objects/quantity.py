"""Kubernetes resource quantities, under the names the scheduler and the CLI
import: the one parser is agent.protocol.primitives'."""

from __future__ import annotations

from agent.protocol.primitives import parse_quantity
from agent.protocol.primitives import quantity_milli_value as cpu_millis
from agent.protocol.primitives import quantity_milli_value as milli_value
from agent.protocol.primitives import quantity_value as memory_bytes
from agent.protocol.primitives import quantity_value as value

__all__ = ["cpu_millis", "memory_bytes", "milli_value", "parse_quantity", "value"]
