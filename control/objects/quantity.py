"""Kept only for console/cli/commands.py, which still imports parse_quantity
from here; the one parser is agent.protocol.primitives'. Delete this module
once that import names agent.protocol.primitives."""

from __future__ import annotations

from agent.protocol.primitives import parse_quantity

__all__ = ["parse_quantity"]
