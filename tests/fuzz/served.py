"""The API server the fuzzers talk to (in process, the API alone, as in
tests/api), raw requests to it, and the property every answer must have."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from control.controlplane import ControlPlane
from control.objects.kinds import ResourceType
from tests.conftest import running_plane
from tests.fuzz.fuzzing import dumps
from tests.fuzz.seeds import NAMESPACE, seed, seeded

# A request that takes longer is a hang.
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the decoded JSON, or the raw bytes when not JSON


@dataclass
class Api:
    plane: ControlPlane
    session: aiohttp.ClientSession

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        content_type: str | None = "application/json",
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Answer:
        """One request. With `stream` (a watch) only the status is waited for
        when it is 200; the body is dropped."""
        headers = dict(headers or {})
        if content_type and body is not None:
            headers["Content-Type"] = content_type
        async with asyncio.timeout(REQUEST_TIMEOUT):
            async with self.session.request(
                method, "http://pilothouse" + path, params=query, data=body, headers=headers
            ) as resp:
                if stream and resp.status == 200:
                    return Answer(200, None)
                raw = await resp.read()
        try:
            return Answer(resp.status, orjson.loads(raw))
        except orjson.JSONDecodeError:
            return Answer(resp.status, raw)

    async def send_json(self, method: str, path: str, value: Any, **kw: Any) -> Answer:
        return await self.request(method, path, body=dumps(value), **kw)

    async def revision(self) -> int:
        return await self.plane.store.revision()


def object_path(rt: ResourceType, name: str, sub: str = "") -> str:
    path = f"{rt.base_path(NAMESPACE if rt.namespaced else None)}/{name}"
    return f"{path}/{sub}" if sub else path


def check_answer(answer: Answer, what: str) -> None:
    """Accepted, or refused with a 4xx Status. Never a 5xx."""
    if answer.status < 400:
        return
    assert answer.status < 500, f"{what}: {answer.status} {answer.body!r}"
    body = answer.body
    assert isinstance(body, dict), f"{what}: {answer.status} with a body that is not a Status"
    assert body.get("kind") == "Status", f"{what}: {body!r}"
    assert body.get("code") == answer.status, f"{what}: {body!r}"


def too_large_rv(answer: Answer) -> bool:
    """Kubernetes' own 5xx: 504 for a resourceVersion the store has not reached."""
    body = answer.body
    return (
        answer.status == 504
        and isinstance(body, dict)
        and str(body.get("message", "")).startswith("Too large resource version")
    )


async def check_refusal_wrote_nothing(
    api: Api, before: int, answer: Answer, what: str, *, dry_run: bool = False
) -> None:
    """A refused request (or a dry run) leaves the store as it was."""
    if answer.status >= 400 or dry_run:
        assert await api.revision() == before, f"{what}: {answer.status} but the store changed"


@contextlib.asynccontextmanager
async def fuzz_api(data_dir: Path) -> AsyncIterator[Api]:
    """The API server with namespace `fuzz` and one seed object of every kind."""
    async with running_plane(data_dir, components=False) as plane:
        connector = aiohttp.UnixConnector(path=str(plane.socket_path))
        async with aiohttp.ClientSession(connector=connector) as session:
            api = Api(plane, session)
            ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
            created = await api.send_json("POST", "/api/v1/namespaces", ns)
            assert created.status == 201, created
            for rt in seeded():
                answer = await api.send_json("POST", rt.base_path(NAMESPACE), seed(rt))
                assert answer.status == 201, (rt.kind, answer)
            yield api
