"""An async CRI client: RuntimeService and ImageService over grpc.aio on a unix socket."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import grpc
import grpc.aio

from . import api_pb2 as pb
from .api_pb2_grpc import ImageServiceStub, RuntimeServiceStub

DEFAULT_TIMEOUT = 30.0
PULL_TIMEOUT = 600.0
MAX_MESSAGE = 16 * 1024 * 1024

R = TypeVar("R")


class CRIError(Exception):
    """A failed CRI call, with the gRPC status code and the runtime's message."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method}: {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details

    @property
    def not_found(self) -> bool:
        return self.code == grpc.StatusCode.NOT_FOUND


def _target(socket: str) -> str:
    return socket if socket.startswith("unix:") else "unix://" + socket


class CRIClient:
    """Small typed wrappers over the generated stubs. Errors raise CRIError."""

    def __init__(self, socket: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket = socket
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(
            _target(socket),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
            ],
        )
        self.runtime = RuntimeServiceStub(self._channel)
        self.images = ImageServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> CRIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(
        self, method: str, stub_method: object, req: object, deadline: float | None = None
    ) -> object:
        try:
            return await stub_method(req, timeout=deadline or self.timeout)  # type: ignore[operator]
        except grpc.aio.AioRpcError as e:
            raise CRIError(method, e.code(), e.details() or "") from None

    async def _ask(
        self, stub_method: object, req: object, response: type[R], deadline: float | None = None
    ) -> R:
        """`_call` the method that answers with a `response` (named after it), and return that."""
        r = await self._call(response.__name__.removesuffix("Response"), stub_method, req, deadline)
        assert isinstance(r, response)
        return r

    # ---- runtime ----

    async def version(self) -> pb.VersionResponse:
        r = await self._ask(
            self.runtime.Version, pb.VersionRequest(version="v1"), pb.VersionResponse
        )
        return r

    async def status(self) -> pb.StatusResponse:
        r = await self._ask(self.runtime.Status, pb.StatusRequest(), pb.StatusResponse)
        return r

    async def run_pod_sandbox(self, config: pb.PodSandboxConfig, runtime_handler: str = "") -> str:
        req = pb.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler)
        r = await self._ask(self.runtime.RunPodSandbox, req, pb.RunPodSandboxResponse, deadline=120)
        return r.pod_sandbox_id

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        req = pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id)
        await self._call("StopPodSandbox", self.runtime.StopPodSandbox, req, deadline=120)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        req = pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id)
        await self._call("RemovePodSandbox", self.runtime.RemovePodSandbox, req, deadline=120)

    async def pod_sandbox_status(self, sandbox_id: str) -> pb.PodSandboxStatus:
        req = pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)
        r = await self._ask(self.runtime.PodSandboxStatus, req, pb.PodSandboxStatusResponse)
        return r.status

    async def list_pod_sandboxes(
        self, labels: Mapping[str, str] | None = None, ready_only: bool = False
    ) -> list[pb.PodSandbox]:
        f = pb.PodSandboxFilter(label_selector=dict(labels or {}))
        if ready_only:
            f.state.CopyFrom(pb.PodSandboxStateValue(state=pb.SANDBOX_READY))
        r = await self._ask(
            self.runtime.ListPodSandbox,
            pb.ListPodSandboxRequest(filter=f),
            pb.ListPodSandboxResponse,
        )
        return list(r.items)

    async def create_container(
        self, sandbox_id: str, config: pb.ContainerConfig, sandbox_config: pb.PodSandboxConfig
    ) -> str:
        req = pb.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config
        )
        r = await self._ask(
            self.runtime.CreateContainer, req, pb.CreateContainerResponse, deadline=120
        )
        return r.container_id

    async def start_container(self, container_id: str) -> None:
        req = pb.StartContainerRequest(container_id=container_id)
        await self._call("StartContainer", self.runtime.StartContainer, req, deadline=120)

    async def stop_container(self, container_id: str, timeout_s: int) -> None:
        req = pb.StopContainerRequest(container_id=container_id, timeout=timeout_s)
        await self._call("StopContainer", self.runtime.StopContainer, req, deadline=timeout_s + 30)

    async def remove_container(self, container_id: str) -> None:
        req = pb.RemoveContainerRequest(container_id=container_id)
        await self._call("RemoveContainer", self.runtime.RemoveContainer, req)

    async def list_containers(
        self, labels: Mapping[str, str] | None = None, sandbox_id: str = ""
    ) -> list[pb.Container]:
        f = pb.ContainerFilter(label_selector=dict(labels or {}), pod_sandbox_id=sandbox_id)
        r = await self._ask(
            self.runtime.ListContainers,
            pb.ListContainersRequest(filter=f),
            pb.ListContainersResponse,
        )
        return list(r.containers)

    async def container_status(self, container_id: str) -> pb.ContainerStatus:
        req = pb.ContainerStatusRequest(container_id=container_id)
        r = await self._ask(self.runtime.ContainerStatus, req, pb.ContainerStatusResponse)
        return r.status

    async def exec_sync(
        self, container_id: str, cmd: Sequence[str], timeout_s: int = 0
    ) -> pb.ExecSyncResponse:
        req = pb.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=timeout_s)
        deadline = (timeout_s + 10) if timeout_s else 3600.0
        r = await self._ask(self.runtime.ExecSync, req, pb.ExecSyncResponse, deadline=deadline)
        return r

    async def exec_url(self, container_id: str, cmd: Sequence[str], tty: bool, stdin: bool) -> str:
        """A streaming-server URL for an interactive exec (see agent.pods.stream)."""
        req = pb.ExecRequest(
            container_id=container_id,
            cmd=list(cmd),
            tty=tty,
            stdin=stdin,
            stdout=True,
            stderr=not tty,
        )
        r = await self._ask(self.runtime.Exec, req, pb.ExecResponse)
        return r.url

    async def attach_url(self, container_id: str, tty: bool, stdin: bool) -> str:
        """A streaming-server URL attached to the container's main process."""
        req = pb.AttachRequest(
            container_id=container_id, stdin=stdin, tty=tty, stdout=True, stderr=not tty
        )
        r = await self._ask(self.runtime.Attach, req, pb.AttachResponse)
        return r.url

    async def container_stats(self, container_id: str) -> pb.ContainerStats:
        req = pb.ContainerStatsRequest(container_id=container_id)
        r = await self._ask(self.runtime.ContainerStats, req, pb.ContainerStatsResponse)
        return r.stats

    async def list_container_stats(
        self, labels: Mapping[str, str] | None = None
    ) -> list[pb.ContainerStats]:
        f = pb.ContainerStatsFilter(label_selector=dict(labels or {}))
        req = pb.ListContainerStatsRequest(filter=f)
        r = await self._ask(self.runtime.ListContainerStats, req, pb.ListContainerStatsResponse)
        return list(r.stats)

    # ---- images ----

    async def image_status(self, image: str) -> pb.Image | None:
        req = pb.ImageStatusRequest(image=pb.ImageSpec(image=image))
        r = await self._ask(self.images.ImageStatus, req, pb.ImageStatusResponse)
        return r.image if r.HasField("image") else None

    async def list_images(self) -> list[pb.Image]:
        r = await self._ask(self.images.ListImages, pb.ListImagesRequest(), pb.ListImagesResponse)
        return list(r.images)

    async def pull_image(self, image: str, deadline: float = PULL_TIMEOUT) -> str:
        req = pb.PullImageRequest(image=pb.ImageSpec(image=image))
        r = await self._ask(self.images.PullImage, req, pb.PullImageResponse, deadline=deadline)
        return r.image_ref

    async def remove_image(self, image: str) -> None:
        req = pb.RemoveImageRequest(image=pb.ImageSpec(image=image))
        await self._call("RemoveImage", self.images.RemoveImage, req)
