"""RFC 3339 timestamps, as stored objects carry them."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
