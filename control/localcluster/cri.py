"""The few CRI calls `down` needs, over raw gRPC with hand-encoded protobuf.

control/ may not import the agent's generated CRI stubs, and `down` only needs
to list, inspect, stop and remove pod sandboxes. Field numbers follow
k8s.io/cri-api runtime/v1/api.proto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc

_RUNTIME = "/runtime.v1.RuntimeService/"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _field_bool(number: int, value: bool) -> bytes:
    return _varint(number << 3) + _varint(int(value))


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message; varints as int, others as bytes."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(buf, i)
            yield number, v
        elif wire == 2:
            n, i = _read_varint(buf, i)
            yield number, buf[i : i + n]
            i += n
        elif wire == 1:
            yield number, buf[i : i + 8]
            i += 8
        elif wire == 5:
            yield number, buf[i : i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _ident(b: bytes) -> bytes:
    return b


class CriClient:
    """RuntimeService calls on one containerd socket."""

    def __init__(self, socket: str, timeout: float = 30.0) -> None:
        self.channel = grpc.aio.insecure_channel(f"unix://{socket}")
        self.timeout = timeout

    async def close(self) -> None:
        await self.channel.close()

    async def _call(self, method: str, request: bytes) -> bytes:
        call = self.channel.unary_unary(
            _RUNTIME + method, request_serializer=_ident, response_deserializer=_ident
        )
        response: bytes = await call(request, timeout=self.timeout)
        return response

    async def version(self) -> dict[str, str]:
        resp = await self._call("Version", _field_bytes(1, b"v1"))
        names = {1: "version", 2: "runtime_name", 3: "runtime_version", 4: "runtime_api_version"}
        return {
            names[n]: v.decode() for n, v in _fields(resp) if n in names and isinstance(v, bytes)
        }

    async def list_sandboxes(self) -> list[str]:
        resp = await self._call("ListPodSandbox", b"")
        ids: list[str] = []
        for n, item in _fields(resp):
            if n == 1 and isinstance(item, bytes):
                for m, v in _fields(item):
                    if m == 1 and isinstance(v, bytes):
                        ids.append(v.decode())
        return ids

    async def sandbox_netns(self, sandbox_id: str) -> str | None:
        """The pod's network namespace path, from the verbose sandbox status."""
        resp = await self._call(
            "PodSandboxStatus", _field_bytes(1, sandbox_id.encode()) + _field_bool(2, True)
        )
        for n, entry in _fields(resp):
            if n != 2 or not isinstance(entry, bytes):
                continue
            kv = {k: v for k, v in _fields(entry) if isinstance(v, bytes)}
            if kv.get(1) != b"info":
                continue
            try:
                info: dict[str, Any] = json.loads(kv.get(2, b"{}"))
            except ValueError:
                return None
            spec = info.get("runtimeSpec") or {}
            for ns in (spec.get("linux") or {}).get("namespaces") or []:
                if ns.get("type") == "network" and ns.get("path"):
                    return str(ns["path"])
        return None

    async def stop_sandbox(self, sandbox_id: str) -> None:
        await self._call("StopPodSandbox", _field_bytes(1, sandbox_id.encode()))

    async def remove_sandbox(self, sandbox_id: str) -> None:
        await self._call("RemovePodSandbox", _field_bytes(1, sandbox_id.encode()))
