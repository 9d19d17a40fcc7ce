"""The watch-list protocol (sendInitialEvents and the initial-events-end
bookmark), bookmarks, and resourceVersionMatch on lists."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import orjson
import pytest

from control.api import watch
from control.client import Client
from control.controlplane import ControlPlane

CMS = "/api/v1/namespaces/default/configmaps"
WATCH_LIST = {
    "watch": "1",
    "sendInitialEvents": "true",
    "resourceVersionMatch": "NotOlderThan",
    "allowWatchBookmarks": "true",
}


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


@pytest.fixture
async def raw(plane: ControlPlane) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.UnixConnector(path=str(plane.socket_path))
    async with aiohttp.ClientSession("http://localhost", connector=connector) as s:
        yield s


async def events(
    raw: aiohttp.ClientSession, params: dict[str, str], count: int
) -> list[dict[str, Any]]:
    """The first `count` events of a watch."""
    out: list[dict[str, Any]] = []
    async with raw.get(CMS, params=params) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if line.strip():
                out.append(orjson.loads(line))
            if len(out) == count:
                break
    return out


async def test_watch_list_sends_initial_events_then_the_end_bookmark(
    client: Client, raw: aiohttp.ClientSession
) -> None:
    for name in ("a", "b"):
        await client.request("POST", CMS, body=cm(name))
    rv = (await client.request("GET", CMS))["metadata"]["resourceVersion"]

    async def later() -> None:
        await asyncio.sleep(0.2)
        await client.request("POST", CMS, body=cm("c"))

    task = asyncio.create_task(later())
    got = await asyncio.wait_for(events(raw, {**WATCH_LIST, "resourceVersion": ""}, 4), 10)
    await task
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in got] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("BOOKMARK", None),
        ("ADDED", "c"),
    ]
    mark = got[2]["object"]
    assert mark["kind"] == "ConfigMap" and mark["apiVersion"] == "v1"
    assert mark["metadata"] == {
        "resourceVersion": rv,
        "annotations": {"k8s.io/initial-events-end": "true"},
    }
    # From a resourceVersion: the state not older than it, then the bookmark.
    got = await asyncio.wait_for(events(raw, {**WATCH_LIST, "resourceVersion": rv}, 4), 10)
    assert [e["type"] for e in got] == ["ADDED"] * 3 + ["BOOKMARK"]
    assert int(got[3]["object"]["metadata"]["resourceVersion"]) > int(rv)


async def test_watch_without_initial_events_starts_now(
    client: Client, raw: aiohttp.ClientSession
) -> None:
    await client.request("POST", CMS, body=cm("old"))

    async def later() -> None:
        await asyncio.sleep(0.2)
        await client.request("POST", CMS, body=cm("new"))

    task = asyncio.create_task(later())
    params = {**WATCH_LIST, "sendInitialEvents": "false"}
    got = await asyncio.wait_for(events(raw, params, 1), 10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [("ADDED", "new")]
    await task


async def test_quiet_watch_gets_periodic_bookmarks(
    client: Client, raw: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "BOOKMARK_INTERVAL", 0.1)
    created = await client.request("POST", CMS, body=cm("x"))
    params = {"watch": "1", "allowWatchBookmarks": "true"}
    got = await asyncio.wait_for(events(raw, params, 3), 10)
    assert [e["type"] for e in got] == ["ADDED", "BOOKMARK", "BOOKMARK"]
    mark = got[1]["object"]["metadata"]
    assert mark["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert "annotations" not in mark
    # Without allowWatchBookmarks, none.
    async with raw.get(CMS, params={"watch": "1", "timeoutSeconds": "1"}) as resp:
        lines = [orjson.loads(line) for line in (await resp.read()).splitlines() if line]
    assert [e["type"] for e in lines] == ["ADDED"]


async def invalid(raw: aiohttp.ClientSession, params: dict[str, str]) -> dict[str, Any]:
    async with raw.get(CMS, params=params) as resp:
        status: dict[str, Any] = await resp.json()
        assert resp.status == status["code"]
        return status


RVM = "resourceVersionMatch"
CASES = [
    (f"{RVM}=Exact", f"{RVM}: Forbidden: {RVM} is forbidden unless resourceVersion is provided"),
    (f"{RVM}=Exact&resourceVersion=0", f'{RVM} "exact" is forbidden for resourceVersion "0"'),
    (f"{RVM}=Newest&resourceVersion=5", 'supported values: "Exact", "NotOlderThan", ""'),
    ("sendInitialEvents=true", "sendInitialEvents: Forbidden: sendInitialEvents is forbidden"),
    ("watch=1&sendInitialEvents=true", f"{RVM}: Forbidden: sendInitialEvents requires setting"),
    (f"watch=1&{RVM}=NotOlderThan", f"{RVM} is forbidden for watch unless sendInitialEvents"),
    (f"watch=1&{RVM}=Exact&sendInitialEvents=1", 'Exact": supported values: "NotOlderThan"'),
]


@pytest.mark.parametrize(("query", "message"), CASES)
async def test_bad_combinations_are_invalid_list_options(
    raw: aiohttp.ClientSession, query: str, message: str
) -> None:
    status = await invalid(raw, dict(parse_qsl(query)))
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"].startswith('ListOptions.meta.k8s.io "" is invalid: ')
    assert message in status["message"]
    assert status["details"]["kind"] == "ListOptions"
    assert status["details"]["group"] == "meta.k8s.io"


async def test_list_exact_reads_the_past_and_410_once_compacted(
    plane: ControlPlane, client: Client, raw: aiohttp.ClientSession
) -> None:
    await client.request("POST", CMS, body=cm("one"))
    rv = (await client.request("GET", CMS))["metadata"]["resourceVersion"]
    await client.request("POST", CMS, body=cm("two"))

    def names(listed: dict[str, Any]) -> list[str]:
        return [i["metadata"]["name"] for i in listed["items"]]

    exact = await client.request(
        "GET", CMS, params={"resourceVersion": rv, "resourceVersionMatch": "Exact"}
    )
    assert names(exact) == ["one"] and exact["metadata"]["resourceVersion"] == rv
    newer = await client.request(
        "GET", CMS, params={"resourceVersion": rv, "resourceVersionMatch": "NotOlderThan"}
    )
    assert names(newer) == ["one", "two"]
    # A resourceVersion with a limit and no match is exact, as Kubernetes pages.
    paged = await client.request("GET", CMS, params={"resourceVersion": rv, "limit": "5"})
    assert names(paged) == ["one"]

    future = str(await plane.store.revision() + 100)
    status = await invalid(raw, {"resourceVersion": future, "resourceVersionMatch": "Exact"})
    assert (status["code"], status["reason"]) == (504, "Timeout")
    assert status["message"].startswith(f"Too large resource version: {future}")
    assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"

    await client.request("POST", CMS, body=cm("three"))
    await plane.store.compact(await plane.store.revision() - 1)
    status = await invalid(raw, {"resourceVersion": rv, "resourceVersionMatch": "Exact"})
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"] == "The resourceVersion for the provided list is too old."


async def test_watch_list_from_compacted_or_future_version(
    plane: ControlPlane, client: Client, raw: aiohttp.ClientSession
) -> None:
    await client.request("POST", CMS, body=cm("one"))
    future = str(await plane.store.revision() + 100)
    got = await asyncio.wait_for(events(raw, {**WATCH_LIST, "resourceVersion": future}, 1), 10)
    assert got[0]["type"] == "ERROR" and got[0]["object"]["code"] == 504
