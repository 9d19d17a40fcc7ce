"""Key prefixes and continue tokens, the same for every backend and the cache.

Keys are compared in code point order. A continue token names the revision a
paged list is read at and the last key served (relative to the list's prefix),
so the cache and a backend can each resume the other's pages.
"""

from __future__ import annotations

import base64
import binascii

import orjson


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix`."""
    while prefix:
        nxt = ord(prefix[-1]) + 1
        if nxt <= 0x10FFFF:
            if 0xD800 <= nxt <= 0xDFFF:
                nxt = 0xE000
            return prefix[:-1] + chr(nxt)
        prefix = prefix[:-1]
    return None


def encode_token(revision: int, prefix: str, last_key: str) -> str:
    body = orjson.dumps({"rev": revision, "start": last_key[len(prefix) :]})
    return base64.urlsafe_b64encode(body).decode()


def decode_token(token: str) -> tuple[int, str]:
    """(revision, start relative to prefix). Raises ValueError for a malformed token."""
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        rev, start = body["rev"], body["start"]
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise ValueError("invalid continue token") from None
    if not isinstance(rev, int) or not 0 <= rev < 2**63 or not isinstance(start, str):
        raise ValueError("invalid continue token")
    return rev, start
