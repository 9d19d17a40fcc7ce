"""`pilothouse migrate`: copy every object from one store to another, then check the counts.

A store is named `sqlite:PATH` or `etcd:URL[,URL...]` (with the etcd prefix
and client TLS files given apart). The control plane must be stopped: the
SQLite store's lock refuses a second opener, and the destination must be
empty. Objects get new revisions in the destination; their content is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from control.config import StoreConfig

if TYPE_CHECKING:
    from control.store.interface import Store

# The store modules (and gRPC) are imported by `migrate` itself: the command
# line loads this module on any error, to know MigrateError.

_PAGE: Final = 1000  # objects read, and written concurrently, at a time
_REGISTRY: Final = "/registry/"


class MigrateError(Exception):
    """The migration cannot start, or its result does not match its source."""


@dataclass(frozen=True)
class EtcdOptions:
    """What an `etcd:` URL does not say: the key prefix and client TLS."""

    prefix: str = "/pilothouse"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class Migrated:
    source: str
    destination: str
    counts: dict[str, int]  # objects copied, by resource (pods, deployments, ...)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def store_config(url: str, etcd: EtcdOptions, what: str = "store") -> StoreConfig:
    """The store `sqlite:PATH` or `etcd:URL[,URL...]` names."""
    scheme, sep, rest = url.partition(":")
    if not sep or not rest:
        raise MigrateError(f"{what}: want sqlite:PATH or etcd:URL, got {url!r}")
    if scheme == "sqlite":
        return StoreConfig(path=Path(rest).expanduser().absolute())
    if scheme == "etcd":
        return StoreConfig(
            path=Path(),
            backend="etcd",
            etcd_endpoints=tuple(ep for ep in rest.split(",") if ep),
            etcd_prefix=etcd.prefix,
            etcd_ca_file=etcd.ca_file,
            etcd_cert_file=etcd.cert_file,
            etcd_key_file=etcd.key_file,
        )
    raise MigrateError(f"{what}: unknown store {scheme!r} (want sqlite:PATH or etcd:URL)")


def resource_of(key: str) -> str:
    """The resource a key belongs to: `/registry/pods/ns/name` is `pods`."""
    if key.startswith(_REGISTRY):
        return key[len(_REGISTRY) :].partition("/")[0]
    return key


async def _counts(store: Store) -> Counter[str]:
    counts: Counter[str] = Counter()
    token: str | None = None
    while True:
        page = await store.list("", limit=_PAGE, continue_token=token)
        counts.update(resource_of(kv.key) for kv in page.items)
        token = page.continue_token
        if token is None:
            return counts


@contextlib.asynccontextmanager
async def _opened(store: Store, url: str) -> AsyncIterator[Store]:
    from control.store.interface import StoreError

    try:
        await store.open()
    except StoreError as e:
        raise MigrateError(f"{url}: {e}") from None
    try:
        yield store
    finally:
        await store.close()


async def migrate(
    source: str,
    destination: str,
    etcd: EtcdOptions | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> Migrated:
    """Copy every key of `source` into the empty `destination` and check that
    both hold as many objects of each resource. `progress` gets the running total."""
    from control.store.backends import backend_store
    from control.store.interface import StoreError

    etcd = etcd or EtcdOptions()
    src_config = store_config(source, etcd, "--from")
    dst_config = store_config(destination, etcd, "--to")
    if src_config == dst_config:
        raise MigrateError("--from and --to name the same store")
    if src_config.backend == "sqlite" and not src_config.path.is_file():
        raise MigrateError(f"--from: no such file: {src_config.path}")
    async with (
        _opened(backend_store(src_config), source) as src,
        _opened(backend_store(dst_config), destination) as dst,
    ):
        present = await dst.list("", limit=1)
        if present.items:
            raise MigrateError(
                f"{destination} is not empty (it holds {present.items[0].key}); "
                "migrate into an empty store"
            )
        copied = 0
        token: str | None = None
        try:
            while True:
                page = await src.list("", limit=_PAGE, continue_token=token)
                await asyncio.gather(*(dst.create(kv.key, kv.obj) for kv in page.items))
                copied += len(page.items)
                if progress is not None:
                    progress(copied)
                token = page.continue_token
                if token is None:
                    break
            expected, found = await _counts(src), await _counts(dst)
        except StoreError as e:
            raise MigrateError(f"migration failed after {copied} objects: {e}") from None
        if expected != found:
            diff = ", ".join(
                f"{r}: {expected[r]} in the source, {found[r]} copied"
                for r in sorted(expected.keys() | found.keys())
                if expected[r] != found[r]
            )
            raise MigrateError(f"the copy does not match its source: {diff}")
        return Migrated(source, destination, dict(sorted(expected.items())))
