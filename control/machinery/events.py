"""Recording Events about objects, aggregated as Kubernetes does: the same
reason and message for the same object bumps `count` and `lastTimestamp`
instead of adding another Event."""

from __future__ import annotations

import logging
from typing import Any

from agent.protocol.primitives import now_rfc3339
from control.api.registry import Registry, random_bytes
from control.errors import ApiError
from control.objects import Obj
from control.objects.kinds import EVENT

log = logging.getLogger(__name__)

_MAX_REMEMBERED = 4096


class EventRecorder:
    def __init__(self, registry: Registry, component: str, host: str = "") -> None:
        self.registry = registry
        self.source = {"component": component, **({"host": host} if host else {})}
        # (uid, reason, message) -> (namespace, event name)
        self._seen: dict[tuple[str, str, str], tuple[str, str]] = {}

    async def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record an Event; failures are logged, never raised (events are best effort)."""
        try:
            await self._record(obj, type_, reason, message)
        except ApiError as e:
            log.debug("event %s for %s not recorded: %s", reason, _ref(obj).get("name"), e)

    async def _record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        ref = _ref(obj)
        ns = ref.get("namespace") or "default"
        seen_key = (str(ref.get("uid")), reason, message)
        now = now_rfc3339()
        known = self._seen.get(seen_key)
        if known is not None:
            try:
                current = (await self.registry.get(EVENT, known[0], known[1])).obj
            except ApiError:
                self._seen.pop(seen_key, None)
            else:
                patch = {"count": int(current.get("count") or 1) + 1, "lastTimestamp": now}

                def bump(o: Obj) -> Obj:
                    return {**o, **patch}

                await self.registry.patch(EVENT, known[0], known[1], bump)
                return
        name = f"{ref.get('name')}.{random_bytes(8).hex()}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": self.source,
            "reportingComponent": self.source["component"],
        }
        await self.registry.create(EVENT, ns, event)
        if len(self._seen) >= _MAX_REMEMBERED:
            self._seen.pop(next(iter(self._seen)))
        self._seen[seen_key] = (ns, name)


def _ref(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    ref = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {k: v for k, v in ref.items() if v is not None}
