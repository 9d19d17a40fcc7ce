"""Health endpoints as kube-apiserver serves them: /healthz, /livez and
/readyz, each check alone at /livez/NAME, `?verbose` for the list of checks
(`[+]ping ok`) and `?exclude=NAME` to leave one out. They answer without
credentials (control.api.auth), as Kubernetes' system:public-info-viewer allows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from control.objects.kinds import NAMESPACE
from control.store.interface import Store

log = logging.getLogger(__name__)

ENDPOINTS = ("/healthz", "/livez", "/readyz")
# How long the store may take to answer before it counts as failed.
STORE_TIMEOUT = 2.0

Check = Callable[[], Awaitable[None]]  # raises when unhealthy


class Health:
    def __init__(self, store: Store, stopping: asyncio.Event) -> None:
        self.store = store
        self.stopping = stopping

    async def _ping(self) -> None:
        return None

    async def _store(self) -> None:
        async with asyncio.timeout(STORE_TIMEOUT):
            await self.store.revision()
            await self.store.get(NAMESPACE.key(None, "default"))

    async def _shutdown(self) -> None:
        if self.stopping.is_set():
            raise RuntimeError("the API server is shutting down")

    def _checks(self, endpoint: str) -> dict[str, Check]:
        checks: dict[str, Check] = {"ping": self._ping, "log": self._ping, "store": self._store}
        if endpoint == "/readyz":
            checks["shutdown"] = self._shutdown
        return checks

    async def response(self, request: web.Request, path: str) -> web.Response | None:
        """The answer to a health path, or None when `path` is not one."""
        endpoint, _, name = path.partition("/")[2].partition("/")
        endpoint = "/" + endpoint
        if endpoint not in ENDPOINTS:
            return None
        checks = self._checks(endpoint)
        if name:
            check = checks.get(name)
            if check is None:
                return _text("404 page not found\n", 404)
            error = await _run(name, check)
            return _text(
                "ok" if error is None else f"internal server error: {error}\n",
                500 if error else 200,
            )
        excluded = set(request.query.getall("exclude", []))
        lines: list[str] = []
        failed = False
        for check_name, check in checks.items():
            if check_name in excluded:
                lines.append(f"[+]{check_name} excluded: ok")
                continue
            error = await _run(check_name, check)
            failed |= error is not None
            lines.append(
                f"[+]{check_name} ok"
                if error is None
                else f"[-]{check_name} failed: reason withheld"
            )
        word = endpoint[1:]
        if failed:
            return _text("\n".join(lines) + f"\n{word} check failed\n", 500)
        if "verbose" in request.query:
            return _text("\n".join(lines) + f"\n{word} check passed\n", 200)
        return _text("ok", 200)


async def _run(name: str, check: Check) -> str | None:
    try:
        await check()
    except Exception as e:  # a failed check is an answer, not an error of the request
        log.warning("health check %s failed: %s", name, e)
        return str(e) or type(e).__name__
    return None


def _text(body: str, status: int) -> web.Response:
    return web.Response(
        text=body,
        status=status,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache, private"},
    )
