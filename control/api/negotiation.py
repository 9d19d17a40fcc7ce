"""Content negotiation of reads: which answer the Accept header asks for.

kubectl asks for a meta.k8s.io Table with fallbacks, as
`application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json`;
the first range the server can answer wins (ranges with a higher `q` first).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from control.errors import ApiError

TABLE_GROUP = "meta.k8s.io"
TABLE_VERSION = "v1"


class Answer(enum.Enum):
    JSON = "json"  # the object or list itself
    TABLE = "table"  # a meta.k8s.io/v1 Table


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One entry of an Accept header: `type/subtype;param=value`."""

    mime: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0


def parse_accept(header: str | None) -> list[MediaRange]:
    """The ranges of an Accept header, the preferred first (by q, then order)."""
    ranges: list[MediaRange] = []
    for part in (header or "").split(","):
        mime, *raw_params = (p.strip() for p in part.split(";"))
        if not mime:
            continue
        params: dict[str, str] = {}
        q = 1.0
        for raw in raw_params:
            key, _, value = raw.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            elif key:
                params[key] = value
        if q > 0:
            ranges.append(MediaRange(mime.lower(), params, q))
    return sorted(ranges, key=lambda r: -r.q)  # a stable sort keeps the client's order


def _answer(media: MediaRange) -> Answer | None:
    """What the server answers for one range, or None when it cannot."""
    if media.mime not in ("application/json", "application/*", "*/*"):
        return None
    as_ = media.params.get("as")
    if as_ is None:
        return Answer.JSON
    if (
        as_ == "Table"
        and media.params.get("g") == TABLE_GROUP
        and media.params.get("v") == TABLE_VERSION
    ):
        return Answer.TABLE
    return None


def negotiate(header: str | None) -> Answer:
    """The answer to a read with this Accept header; 406 when no range is
    one the server speaks. No header at all accepts JSON."""
    ranges = parse_accept(header)
    if not ranges:
        return Answer.JSON
    for media in ranges:
        answer = _answer(media)
        if answer is not None:
            return answer
    raise ApiError(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, "
        f"application/json;as=Table;v={TABLE_VERSION};g={TABLE_GROUP}",
    )
