"""One page of a list, built alike by every backend and the cache.

Items are taken in key order; `match` filters before `limit` counts, and a page
is full only once one more matching item is seen, so a page that ends exactly
at the last item has no continue token.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from control.store.interface import KV, ListResult, Matcher
from control.store.keyspace import encode_token


class Page:
    """Collects the items of one list page; `add` until it says the page is full."""

    __slots__ = ("items", "limit", "match", "more")

    def __init__(self, match: Matcher | None, limit: int) -> None:
        self.match = match
        self.limit = limit
        self.items: list[KV] = []
        self.more = False  # a matching item beyond `limit` was seen

    def add(self, kvs: Iterable[KV]) -> bool:
        """Take `kvs` (in key order, after those added before); True once full."""
        items, limit, match = self.items, self.limit, self.match
        loads = orjson.loads
        for kv in kvs:
            if match is not None and not match(loads(kv.raw)):
                continue
            if 0 < limit <= len(items):
                self.more = True
                return True
            items.append(kv)
        return False

    def result(self, revision: int, prefix: str, remaining: int | None = None) -> ListResult:
        """The page read at `revision`; `remaining` counts items after it, when known."""
        if not self.more:
            return ListResult(self.items, revision, None, None)
        token = encode_token(revision, prefix, self.items[-1].key)
        return ListResult(self.items, revision, token, remaining)
