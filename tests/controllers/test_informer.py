"""The shared informer: its cache, secondary indexes and handler calls, fed by a scripted watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson

from control.api.registry import Registry
from control.machinery.informer import Informer
from control.objects.kinds import POD, ResourceType
from control.store.interface import KV, ListResult, WatchEvent

Obj = dict[str, Any]


class ScriptedRegistry:
    """Lists nothing, then watches whatever the test sends."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self.revision = 0

    async def list(self, rt: ResourceType, namespace: str | None) -> ListResult:
        return ListResult([], 0, None)

    async def watch(
        self, rt: ResourceType, namespace: str | None, from_revision: int
    ) -> AsyncIterator[WatchEvent]:
        while (event := await self.events.get()) is not None:
            yield event
            self.events.task_done()  # the informer took it and asks for the next

    def send(self, type_: str, obj: Obj) -> None:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        kv = KV(f"/pods/{obj['metadata']['name']}", orjson.dumps(obj), self.revision, 1)
        self.events.put_nowait(WatchEvent(type_, kv))  # type: ignore[arg-type]


def pod(name: str, node: str = "", app: str = "web") -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"nodeName": node} if node else {},
    }


def by_node(obj: Obj) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


def node_of(obj: Obj | None) -> str | None:
    return next(iter(by_node(obj)), None) if obj is not None else None


def by_app(obj: Obj) -> list[str]:
    return [str(obj["metadata"]["labels"]["app"])]


def names(objs: list[Obj]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)


async def test_indexes_follow_adds_updates_and_deletes() -> None:
    registry = ScriptedRegistry()
    informer = Informer(cast(Registry, registry), POD)
    informer.add_index("node", by_node)
    seen: list[tuple[str, str | None, str | None]] = []

    def handler(kind: str, old: Obj | None, new: Obj | None) -> None:
        seen.append((kind, node_of(old), node_of(new)))

    informer.add_handler(handler)
    task = asyncio.create_task(informer.run())
    try:
        registry.send("ADDED", pod("a"))
        registry.send("ADDED", pod("b", "n1"))
        registry.send("MODIFIED", pod("a", "n1"))  # index value added
        registry.send("MODIFIED", pod("b", "n2"))  # index value moved
        registry.send("MODIFIED", pod("b", "n2", app="api"))  # index value kept
        await _drain(registry)
        assert names(informer.by_index("node", "n1")) == ["a"]
        assert names(informer.by_index("node", "n2")) == ["b"]
        assert informer.get("default/b") is not None
        assert informer.get("default/b")["metadata"]["labels"] == {"app": "api"}  # type: ignore[index]

        # An index added to a filled cache covers what is already there.
        informer.add_index("app", by_app)
        assert names(informer.by_index("app", "web")) == ["a"]
        assert names(informer.by_index("app", "api")) == ["b"]

        registry.send("DELETED", pod("b", "n2", app="api"))
        registry.send("MODIFIED", pod("a", "", app="api"))  # index value removed
        await _drain(registry)
        assert informer.by_index("node", "n1") == []
        assert informer.by_index("node", "n2") == []
        assert names(informer.by_index("app", "api")) == ["a"]
        assert informer.by_index("app", "web") == []
        assert informer._indexes == {"node": {}, "app": {"api": {"default/a"}}}
        assert seen == [
            ("ADDED", None, None),
            ("ADDED", None, "n1"),
            ("MODIFIED", None, "n1"),
            ("MODIFIED", "n1", "n2"),
            ("MODIFIED", "n2", "n2"),
            ("DELETED", "n2", None),
            ("MODIFIED", "n1", None),
        ]
    finally:
        task.cancel()


async def _drain(registry: ScriptedRegistry) -> None:
    """Until the informer has handled every event sent so far."""
    await registry.events.join()
