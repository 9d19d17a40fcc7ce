"""The few CRI calls made on a node's containerd without the agent: raw gRPC
with hand-encoded protobuf.

Two users: `pilothouse down` (control/ may not import the agent's generated
CRI stubs) and `pilothouse node check`, which sends this file's source to a
node where nothing of pilothouse is installed and runs it there with the
node's python3. So it imports only the standard library, and grpc late (the
check reports a node without grpcio). Field numbers follow k8s.io/cri-api
runtime/v1/api.proto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

# What a node's CRI runtime is set up with, unless configured otherwise.
PAUSE_IMAGE = "docker.io/pilothouse/pause:latest"
DEFAULT_CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
CNI_BIN_DIR = "/usr/lib/cni"

RUNTIME_SERVICE = "/runtime.v1.RuntimeService/"
IMAGE_SERVICE = "/runtime.v1.ImageService/"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf: bytes, i: int) -> tuple[int, int]:
    """The varint at `buf[i:]` and the index after it."""
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def field_bool(number: int, value: bool) -> bytes:
    return varint(number << 3) + varint(int(value))


def fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message; varints as int, others as bytes."""
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(buf, i)
            yield number, v
        elif wire == 2:
            n, i = read_varint(buf, i)
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


def rpc_error_detail(e: Exception) -> str:
    """A gRPC error's details (the server's words), else the exception's text."""
    details = getattr(e, "details", None)
    return str(details() if callable(details) else e)


class CriClient:
    """Blocking RuntimeService and ImageService calls on one containerd socket."""

    def __init__(self, socket: str, timeout: float = 30.0) -> None:
        import grpc  # here: without grpcio, `node check` still reports the rest

        self.channel = grpc.insecure_channel(f"unix://{socket}")
        self.timeout = timeout

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> CriClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, request: bytes) -> bytes:
        # No serializers: the request and response are the encoded messages.
        response: bytes = self.channel.unary_unary(method)(request, timeout=self.timeout)
        return response

    def version(self) -> dict[str, str]:
        resp = self._call(RUNTIME_SERVICE + "Version", field_bytes(1, b"v1"))
        names = {1: "version", 2: "runtime_name", 3: "runtime_version", 4: "runtime_api_version"}
        return {
            names[n]: v.decode() for n, v in fields(resp) if n in names and isinstance(v, bytes)
        }

    def image_present(self, image: str) -> bool:
        """Whether the runtime has `image` (ImageStatus answers with an Image)."""
        spec = field_bytes(1, image.encode())
        resp = self._call(IMAGE_SERVICE + "ImageStatus", field_bytes(1, spec))
        return any(n == 1 and v for n, v in fields(resp))

    def list_sandboxes(self) -> list[str]:
        resp = self._call(RUNTIME_SERVICE + "ListPodSandbox", b"")
        ids: list[str] = []
        for n, item in fields(resp):
            if n == 1 and isinstance(item, bytes):
                for m, v in fields(item):
                    if m == 1 and isinstance(v, bytes):
                        ids.append(v.decode())
        return ids

    def sandbox_netns(self, sandbox_id: str) -> str | None:
        """The pod's network namespace path, from the verbose sandbox status."""
        resp = self._call(
            RUNTIME_SERVICE + "PodSandboxStatus",
            field_bytes(1, sandbox_id.encode()) + field_bool(2, True),
        )
        for n, entry in fields(resp):
            if n != 2 or not isinstance(entry, bytes):
                continue
            kv = {k: v for k, v in fields(entry) if isinstance(v, bytes)}
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

    def stop_sandbox(self, sandbox_id: str) -> None:
        self._call(RUNTIME_SERVICE + "StopPodSandbox", field_bytes(1, sandbox_id.encode()))

    def remove_sandbox(self, sandbox_id: str) -> None:
        self._call(RUNTIME_SERVICE + "RemovePodSandbox", field_bytes(1, sandbox_id.encode()))
