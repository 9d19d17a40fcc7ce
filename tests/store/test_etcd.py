"""The etcd store: the shared contract on a real etcd, and what sharing one etcd means."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from control.api.pki import ensure_pki, issue_client_cert
from control.store import etcd as etcd_module
from control.store.cache import CachedStore
from control.store.etcd import EtcdStore
from control.store.etcdclient import EtcdTLS
from control.store.interface import Compacted, Store, StoreError, StoreFull
from tests.etcdserver import EtcdServer, running_etcd
from tests.polling import eventually
from tests.store.contract import StoreContract, close_iter, key, next_event, opened, pod, take

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdServer]:
    with running_etcd() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A prefix of its own for each test: the module's tests share one etcd."""
    return f"/test{next(_prefixes)}"


class TestEtcdStore(StoreContract):
    @pytest.fixture
    async def store(self, etcd: EtcdServer, prefix: str) -> AsyncIterator[Store]:
        async with opened(EtcdStore((etcd.endpoint,), prefix=prefix)) as s:
            yield s


class TestCachedEtcdStore(StoreContract):
    @pytest.fixture
    async def store(self, etcd: EtcdServer, prefix: str) -> AsyncIterator[Store]:
        async with opened(CachedStore(EtcdStore((etcd.endpoint,), prefix=prefix))) as s:
            yield s


class TestSharedCachedEtcdStore(StoreContract):
    @pytest.fixture
    async def store(self, etcd: EtcdServer, prefix: str) -> AsyncIterator[Store]:
        store = CachedStore(EtcdStore((etcd.endpoint,), prefix=prefix), shared=True)
        async with opened(store) as s:
            yield s


async def test_shared_caches_read_each_others_writes_at_once(etcd: EtcdServer, prefix: str) -> None:
    # Two API servers behind a load balancer: a client creates through one and
    # reads through the other at once, as kubectl does. Reads go to etcd.
    async with (
        opened(CachedStore(EtcdStore((etcd.endpoint,), prefix=prefix), shared=True)) as a,
        opened(CachedStore(EtcdStore((etcd.endpoint,), prefix=prefix), shared=True)) as b,
    ):
        for i in range(20):  # bounded; each read follows its write at once
            created = await a.create(key(f"p{i}"), pod(f"p{i}"))
            assert await b.get(key(f"p{i}")) == created
            listed = await b.list("/registry/pods/")
            assert listed.items[-1] == created and listed.revision >= created.mod_revision
            deleted = await b.delete(key(f"p{i}"))
            assert await a.get(key(f"p{i}")) is None
            assert deleted.key not in [kv.key for kv in (await a.list("/registry/pods/")).items]
        # A write outside the keyspace is a revision a's watch never sees: a
        # read after it reads etcd rather than wait for it, and is still right.
        async with opened(EtcdStore((etcd.endpoint,), prefix=prefix + "x")) as other:
            await b.create(key("last"), pod("last"))
            await other.create(key("elsewhere"), pod("elsewhere"))
            for _ in range(3):
                got = await a.get(key("last"))
                assert got is not None and got.key == key("last")
                assert [kv.key for kv in (await a.list("/registry/pods/")).items] == [key("last")]


async def test_two_caches_on_one_etcd_see_each_others_writes(etcd: EtcdServer, prefix: str) -> None:
    async with (
        opened(CachedStore(EtcdStore((etcd.endpoint,), prefix=prefix))) as a,
        opened(CachedStore(EtcdStore((etcd.endpoint,), prefix=prefix))) as b,
    ):
        it = b.watch("/registry/pods/", await b.revision())
        try:
            created = await a.create(key("x"), pod("x", app="web"))
            event = await next_event(it)
            assert (event.type, event.kv) == ("ADDED", created)
            # b's cache follows the same etcd watch: its reads show a's write.
            assert await b.get(key("x")) == created
            assert [kv.key for kv in (await b.list("/registry/pods/")).items] == [key("x")]
            # A compare-and-swap from b on a's revision wins; a's stale one loses.
            won = await b.update(
                key("x"), pod("x", app="db"), expected_revision=created.mod_revision
            )
            assert (await next_event(it)).kv == won
            with pytest.raises(StoreError):
                await a.update(key("x"), pod("x"), expected_revision=created.mod_revision)

            async def a_sees_it() -> bool:
                return await a.get(key("x")) == won

            await eventually(a_sees_it, "a's cache sees b's write")
            deleted = await a.delete(key("x"))
            assert (await next_event(it)).kv == deleted
            assert await b.get(key("x")) is None
        finally:
            await close_iter(it)


async def test_prefixes_do_not_see_each_other(etcd: EtcdServer, prefix: str) -> None:
    async with (
        opened(EtcdStore((etcd.endpoint,), prefix=prefix)) as a,
        opened(EtcdStore((etcd.endpoint,), prefix=prefix + "x")) as b,
    ):
        await a.create(key("a"), pod("a"))
        assert (await b.list("")).items == []
        # Revisions are etcd's: a write under another prefix leaves a gap.
        assert (await b.create(key("b"), pod("b"))).mod_revision == 2
        assert [kv.key for kv in (await a.list("")).items] == [key("a")]


async def test_revisions_survive_reopening(etcd: EtcdServer, prefix: str) -> None:
    async with opened(EtcdStore((etcd.endpoint,), prefix=prefix)) as s:
        await s.create(key("a"), pod("a"))
        await s.create(key("b"), pod("b"))
        await s.compact(1)
    async with opened(EtcdStore((etcd.endpoint,), prefix=prefix)) as s:
        assert await s.revision() == 2
        assert await s.compacted_revision() == 1
        got = await s.get(key("b"))
        assert got is not None and got.mod_revision == 2
        assert got.obj["metadata"]["resourceVersion"] == "2"


async def test_compaction_by_another_store_is_gone_for_a_watch(
    etcd: EtcdServer, prefix: str
) -> None:
    async with (
        opened(EtcdStore((etcd.endpoint,), prefix=prefix)) as a,
        opened(EtcdStore((etcd.endpoint,), prefix=prefix)) as b,
    ):
        kvs = [await a.create(key(f"p{i}"), pod(f"p{i}")) for i in range(5)]
        await a.compact(kvs[3].mod_revision)
        # b learns of it from etcd alone.
        assert await b.compacted_revision() == 4
        events = b.watch("/registry/pods/", 3)
        with pytest.raises(Compacted) as gone:
            await next_event(events)
        assert gone.value.compacted == 4 and gone.value.requested == 3
        await close_iter(events)


async def test_automatic_compaction(etcd: EtcdServer, prefix: str) -> None:
    async with opened(
        EtcdStore((etcd.endpoint,), prefix=prefix, compact_keep=5, compact_every=5)
    ) as s:
        for i in range(12):
            await s.create(key(f"p{i}"), pod(f"p{i}"))
        await eventually(s.compacted_revision, "an automatic compaction")
        assert 0 < await s.compacted_revision() <= 12 - 5
        assert len((await s.list("/registry/pods/")).items) == 12


async def test_bad_keys_and_tokens_are_refused(etcd: EtcdServer, prefix: str) -> None:
    async with opened(EtcdStore((etcd.endpoint,), prefix=prefix)) as s:
        with pytest.raises(ValueError):
            await s.create("registry/pods/a", pod("a"))
        with pytest.raises(ValueError):
            await s.list("/registry/pods/", limit=1, continue_token="not a token")
    with pytest.raises(StoreError):
        await s.get(key("a"))


async def test_unreachable_etcd_fails_open_naming_it() -> None:
    s = EtcdStore(("http://127.0.0.1:1",))
    with pytest.raises(StoreError) as info:
        await s.open()
    assert "127.0.0.1:1" in str(info.value)


async def test_second_endpoint_is_used_when_the_first_is_down(
    etcd: EtcdServer, prefix: str
) -> None:
    async with opened(EtcdStore(("http://127.0.0.1:1", etcd.endpoint), prefix=prefix)) as s:
        assert (await s.create(key("a"), pod("a"))).mod_revision == 1


async def test_tls_verifies_etcd_against_the_ca(tmp_path: Path, prefix: str) -> None:
    pki = ensure_pki(tmp_path / "pki", ["127.0.0.1"])
    with running_etcd(cert=pki.server_cert, key=pki.server_key) as server:
        assert server.endpoint.startswith("https://")
        # A client certificate and key are sent too (this etcd does not ask for one).
        tls = EtcdTLS(pki.ca_cert, pki.server_cert, pki.server_key)
        async with opened(EtcdStore((server.endpoint,), prefix=prefix, tls=tls)) as s:
            await s.create(key("a"), pod("a"))
            it = s.watch("/registry/pods/", 0)
            try:
                assert [e.type for e in await take(it, 1)] == ["ADDED"]
            finally:
                await close_iter(it)
        # Without the CA, etcd's certificate is not trusted.
        with pytest.raises(StoreError):
            await asyncio.wait_for(EtcdStore((server.endpoint,), prefix=prefix).open(), 20)


async def test_etcd_that_asks_for_client_certificates(tmp_path: Path, prefix: str) -> None:
    pki = ensure_pki(tmp_path / "pki", ["127.0.0.1"])
    cert, key_file = issue_client_cert(pki.dir, "pilothouse-etcd-client")
    with running_etcd(cert=pki.server_cert, key=pki.server_key, client_ca=pki.ca_cert) as server:
        tls = EtcdTLS(pki.ca_cert, cert, key_file)
        async with opened(EtcdStore((server.endpoint,), prefix=prefix, tls=tls)) as s:
            created = await s.create(key("a"), pod("a"))
            assert await s.get(key("a")) == created
        # Trusting etcd is not enough: without a client certificate it refuses us.
        anonymous = EtcdStore((server.endpoint,), prefix=prefix, tls=EtcdTLS(pki.ca_cert))
        with pytest.raises(StoreError):
            await asyncio.wait_for(anonymous.open(), 20)


async def test_pages_span_several_reads(
    etcd: EtcdServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(etcd_module, "_CHUNK", 2)  # keys per read while listing
    async with opened(EtcdStore((etcd.endpoint,), prefix=prefix)) as s:
        for i in range(7):
            await s.create(key(f"p{i}"), pod(f"p{i}", odd=str(i % 2)))
        page = await s.list("/registry/pods/", limit=5)
        assert [kv.key for kv in page.items] == [key(f"p{i}") for i in range(5)]
        assert page.remaining == 2
        rest = await s.list("/registry/pods/", limit=5, continue_token=page.continue_token)
        assert [kv.key for kv in rest.items] == [key("p5"), key("p6")]
        assert rest.continue_token is None
        odd = await s.list(
            "/registry/pods/", match=lambda o: o["metadata"]["labels"]["odd"] == "1", limit=2
        )
        assert [kv.key for kv in odd.items] == [key("p1"), key("p3")]
        assert odd.continue_token is not None and odd.remaining is None
        assert len((await s.list("")).items) == 7


async def test_a_full_etcd_refuses_writes_as_store_full_and_keeps_reads(
    prefix: str,
) -> None:
    # etcd's NOSPACE alarm, raised when its backend passes the quota, is the
    # etcd form of a full disk: writes fail with StoreFull (507), reads work.
    with running_etcd(quota_bytes=1024 * 1024) as small:
        async with opened(EtcdStore((small.endpoint,), prefix=prefix)) as store:
            await store.create(key("first"), pod("first"))
            filler = "x" * 100_000
            with pytest.raises(StoreFull):
                for i in range(200):  # bounded: 20 MB at most against a 1 MiB quota
                    obj = pod(f"big{i}")
                    obj["metadata"]["annotations"] = {"filler": filler}
                    await store.create(key(f"big{i}"), obj)
            kv = await store.get(key("first"))
            assert kv is not None and kv.obj["metadata"]["name"] == "first"
