"""The control plane as one unit: store, registry and API server listeners.

`pilothouse serve` runs it headless; the console hosts it in-process. On first
start it creates the data dir's PKI and tokens, then writes a kubeconfig so
that the CLI, the `kubernetes` client and kubectl can connect.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from control.api.pki import (
    Tokens,
    ensure_pki,
    ensure_tokens,
    server_ssl_context,
    write_kubeconfig,
)
from control.api.registry import Registry
from control.api.server import ApiServer
from control.config import Config
from control.store.interface import Store
from control.store.sqlite import SqliteStore

log = logging.getLogger(__name__)

KUBECONFIG = "kubeconfig"
READONLY_KUBECONFIG = "kubeconfig-readonly"
READONLY_TOKEN = "readonly-token"


def open_store(config: Config) -> Store:
    if config.store.backend != "sqlite":
        raise NotImplementedError(f"store backend {config.store.backend!r} is not available yet")
    return SqliteStore(config.store.path, compact_keep=config.store.compaction_keep)


class ControlPlane:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = open_store(config)
        self.registry = Registry(self.store, config.network.service_cidr)
        self.api: ApiServer | None = None
        self.server_url: str | None = None

    @property
    def socket_path(self) -> Path:
        return self.config.api.socket

    @property
    def kubeconfig_path(self) -> Path:
        return self.config.data_dir / KUBECONFIG

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(cfg.data_dir, 0o700)
        await self.store.open()
        try:
            await self.registry.ensure_system_namespaces()
            tokens = ensure_tokens(cfg.api.tokens_file)
            self.api = ApiServer(self.registry, role_of_token=tokens.role_of)
            await self.api.start_unix(cfg.api.socket)
            listen = cfg.api.listen_address
            if listen is not None:
                await self._start_tls(*listen, tokens)
        except BaseException:
            await self.stop()
            raise

    async def _start_tls(self, host: str, port: int, tokens: Tokens) -> None:
        cfg = self.config
        assert self.api is not None
        ca_pem: bytes | None
        if cfg.api.tls_cert and cfg.api.tls_key:
            # An operator's own certificate: clients trust it through the system CAs.
            context = server_ssl_context(cfg.api.tls_cert, cfg.api.tls_key)
            ca_pem = None
        else:
            wildcard = host in ("0.0.0.0", "::", "")
            pki = ensure_pki(cfg.api.pki_dir, [*([] if wildcard else [host]), *cfg.api.tls_san])
            context = server_ssl_context(pki.server_cert, pki.server_key)
            ca_pem = pki.ca_pem
        port = await self.api.start_tcp(host, port, context)
        url_host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        if ":" in url_host:
            url_host = f"[{url_host}]"
        self.server_url = f"https://{url_host}:{port}"
        admin, readonly = tokens.require_token("admin"), tokens.require_token("readonly")
        write_kubeconfig(self.kubeconfig_path, self.server_url, ca_pem, admin)
        write_kubeconfig(
            cfg.data_dir / READONLY_KUBECONFIG, self.server_url, ca_pem, readonly, user="readonly"
        )
        _write_private(cfg.data_dir / READONLY_TOKEN, readonly + "\n")

    async def stop(self) -> None:
        if self.api is not None:
            await self.api.stop()
            self.api = None
        await self.store.close()

    async def run_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
