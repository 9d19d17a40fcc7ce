"""The fan-out of committed events to watch buffers."""

from __future__ import annotations

import asyncio
import itertools

from control.store.interface import KV, WatchEvent
from control.store.watchbuffer import WatchBuffer, Watchers

PREFIXES = [
    "",
    "/",
    "/registry/",
    "/registry/pods/",
    "/registry/pods/default/",
    "/registry/pods/default/web-1",
    "/registry/pods/def",
    "/registry/nodes/",
    "/registry/podsx/",
]
KEYS = [
    "/registry/pods/default/web-1",
    "/registry/pods/default/web-10",
    "/registry/pods/kube-system/dns",
    "/registry/podsx/a",
    "/registry/nodes/n1",
    "/registry/x",
    "/other",
    "",
]


def _event(key: str, revision: int) -> WatchEvent:
    return WatchEvent("ADDED", KV(key, b"{}", revision, revision))


async def test_each_event_reaches_exactly_the_buffers_whose_prefix_its_key_has() -> None:
    watchers = Watchers()
    buffers = [WatchBuffer(p, 100) for p in PREFIXES]
    for w in buffers:
        watchers.add(w)
    for rev, key in enumerate(KEYS, 1):
        watchers.push(_event(key, rev))
    for w in buffers:
        got = [ev.kv.key for ev in w.buf]
        assert got == [k for k in KEYS if k.startswith(w.prefix)], w.prefix


async def test_buffers_added_or_dropped_between_events_are_routed_anew() -> None:
    watchers = Watchers()
    pods = WatchBuffer("/registry/pods/", 100)
    watchers.add(pods)
    watchers.push(_event("/registry/pods/a/b", 1))  # the route is now cached
    late = WatchBuffer("/registry/pods/a/", 100)
    watchers.add(late)
    watchers.push(_event("/registry/pods/a/c", 2))
    watchers.discard(pods)
    watchers.push(_event("/registry/pods/a/d", 3))
    assert [ev.revision for ev in pods.buf] == [1, 2]
    assert [ev.revision for ev in late.buf] == [2, 3]


async def test_buffers_are_woken_in_the_order_they_were_added() -> None:
    # The cache's own buffer, added first, must run first: its task applies
    # each event before the watches that read from the cache see it.
    watchers = Watchers()
    order: list[str] = []
    buffers = [WatchBuffer(p, 100) for p in ("", "/registry/pods/", "/registry/")]
    for w in buffers:
        watchers.add(w)

    async def waiter(w: WatchBuffer) -> None:
        await w.wake.wait()
        order.append(w.prefix)

    tasks = [asyncio.create_task(waiter(w)) for w in buffers]
    await asyncio.sleep(0)
    watchers.push(_event("/registry/pods/a/b", 1))
    await asyncio.gather(*tasks)
    assert order == ["", "/registry/pods/", "/registry/"]
    assert list(itertools.islice(watchers, 3)) == buffers
