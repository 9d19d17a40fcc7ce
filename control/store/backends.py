"""The store a configuration names: its backend, behind the read cache."""

from __future__ import annotations

from control.config import StoreConfig
from control.store.cache import CachedStore
from control.store.etcd import EtcdStore
from control.store.etcdclient import EtcdTLS
from control.store.interface import Store
from control.store.sqlite import SqliteStore


def backend_store(config: StoreConfig) -> Store:
    """The configured backend itself, not opened."""
    if config.backend == "etcd":
        return EtcdStore(
            config.etcd_endpoints,
            prefix=config.etcd_prefix,
            tls=EtcdTLS(config.etcd_ca_file, config.etcd_cert_file, config.etcd_key_file),
            compact_keep=config.compaction_keep,
        )
    return SqliteStore(config.path, compact_keep=config.compaction_keep)


def cached_store(config: StoreConfig) -> Store:
    """What the control plane reads and writes: the backend behind the read
    cache, which follows it with a watch (so other control planes' writes on
    a shared etcd show up). On etcd, reads go to etcd: it is shared."""
    return CachedStore(backend_store(config), shared=config.backend == "etcd")
