"""The connection to an etcd cluster: endpoints, TLS, and etcd's errors as store errors.

Endpoints are `http://host:port` (plain), `https://host:port` (TLS) or a bare
`host:port` (TLS when client TLS files are given). The client talks to one
endpoint at a time and moves to the next when a call finds it unavailable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import grpc
import grpc.aio

from control.store.etcdpb import rpc_pb2 as pb
from control.store.etcdpb.rpc_pb2_grpc import KVStub, LeaseStub, WatchStub
from control.store.interface import StoreError

T = TypeVar("T")

CALL_TIMEOUT: Final = 15.0  # seconds for one unary call
_OPTIONS: Final = [
    # Pages are bounded by count, not bytes; etcd bounds one value at 1.5 MiB.
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
]


class FutureRevision(StoreError):
    """A read asked for a revision etcd has not reached."""


class EtcdCompacted(StoreError):
    """A read asked for a revision etcd has compacted away."""


class EtcdUnavailable(StoreError):
    """No endpoint answered."""


@dataclass(frozen=True)
class EtcdTLS:
    """Client TLS: the CA that signed etcd's certificate, and our certificate and key."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(p: Path | None, what: str) -> bytes | None:
            if p is None:
                return None
            try:
                return p.read_bytes()
            except OSError as e:
                raise StoreError(f"etcd {what} {p}: {e.strerror or e}") from None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_file, "CA file"),
            private_key=read(self.key_file, "client key file"),
            certificate_chain=read(self.cert_file, "client certificate file"),
        )

    @property
    def configured(self) -> bool:
        return any(p is not None for p in (self.ca_file, self.cert_file, self.key_file))


def _target(endpoint: str, tls: EtcdTLS) -> tuple[str, bool]:
    """(host:port, use TLS) for an endpoint."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        return endpoint.rstrip("/"), tls.configured
    if scheme not in ("http", "https"):
        raise StoreError(f"etcd endpoint {endpoint!r}: the scheme must be http or https")
    return rest.rstrip("/"), scheme == "https"


def _translate(e: grpc.aio.AioRpcError, endpoint: str) -> StoreError:
    details = e.details() or ""
    if "required revision has been compacted" in details:
        return EtcdCompacted(details)
    if "required revision is a future revision" in details:
        return FutureRevision(details)
    if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return EtcdUnavailable(f"etcd at {endpoint}: {details or e.code().name}")
    return StoreError(f"etcd at {endpoint}: {e.code().name}: {details}")


class EtcdClient:
    """The KV, Watch and Lease services of one etcd cluster, with failover."""

    def __init__(self, endpoints: tuple[str, ...], tls: EtcdTLS | None = None) -> None:
        if not endpoints:
            raise StoreError("etcd: no endpoints")
        self.endpoints = endpoints
        self.tls = tls or EtcdTLS()
        self._targets = [_target(ep, self.tls) for ep in endpoints]
        self._index = 0
        self._channel: grpc.aio.Channel | None = None
        self.kv: KVStub
        self.watch: WatchStub
        self.lease: LeaseStub

    @property
    def endpoint(self) -> str:
        return self.endpoints[self._index]

    def _connect(self) -> None:
        target, secure = self._targets[self._index]
        if secure:
            channel = grpc.aio.secure_channel(target, self.tls.credentials(), options=_OPTIONS)
        else:
            channel = grpc.aio.insecure_channel(target, options=_OPTIONS)
        self._channel = channel
        self.kv = KVStub(channel)
        self.watch = WatchStub(channel)
        self.lease = LeaseStub(channel)

    async def open(self, probe: Callable[[], Awaitable[T]]) -> T:
        """Connect to the first endpoint where `probe` succeeds, and return its result."""
        failures: list[str] = []
        for i in range(len(self.endpoints)):
            self._index = i
            self._connect()
            try:
                return await probe()
            except EtcdUnavailable as e:
                failures.append(str(e))
                await self.close()
        raise EtcdUnavailable("cannot reach etcd: " + "; ".join(failures))

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def range(self, request: pb.RangeRequest) -> pb.RangeResponse:
        resp: pb.RangeResponse = await self._call(self._kv_stub().Range, request)
        return resp

    async def txn(self, request: pb.TxnRequest) -> pb.TxnResponse:
        resp: pb.TxnResponse = await self._call(self._kv_stub().Txn, request)
        return resp

    async def compact(self, request: pb.CompactionRequest) -> pb.CompactionResponse:
        resp: pb.CompactionResponse = await self._call(self._kv_stub().Compact, request)
        return resp

    def _kv_stub(self) -> KVStub:
        if self._channel is None:
            raise StoreError("store is closed")
        return self.kv

    async def _call(self, method: Callable[..., Awaitable[T]], request: object) -> T:
        """One unary call, with etcd's errors as store errors.

        An unavailable endpoint fails this call and moves later calls to the next one.
        """
        endpoint = self.endpoint
        try:
            return await method(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as e:
            err = _translate(e, endpoint)
            if isinstance(err, EtcdUnavailable) and len(self.endpoints) > 1:
                await self._fail_over(endpoint)
            raise err from None

    async def _fail_over(self, failed: str) -> None:
        if self.endpoint != failed:
            return  # another call moved already
        old = self._channel
        self._index = (self._index + 1) % len(self.endpoints)
        self._connect()
        if old is not None:
            await old.close()

    def translate(self, e: grpc.aio.AioRpcError) -> StoreError:
        return _translate(e, self.endpoint)
