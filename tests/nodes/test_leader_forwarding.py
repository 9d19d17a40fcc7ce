"""A control plane that does not lead passes pod logs, exec, attach, metrics
and image imports on to the leader, which holds the node links: a follower's
API server on the leader's store (as a second control plane on a shared store
would be), against a leader on hollow nodes."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from control.api.leaderproxy import LeaderForwarder
from control.api.pki import ensure_ca, ensure_pki, ensure_tokens, server_ssl_context
from control.api.registry import Registry
from control.api.server import ApiServer
from control.client import Client
from control.config import Config
from control.errors import ApiError
from control.kubeconfig import client_ssl_context, read_kubeconfig
from control.objects.kinds import LEASE, NAMESPACE
from control.wire import FORWARDED_HEADER, LEADER_LEASE_NAME, LEADER_LEASE_NAMESPACE
from tests.cluster import HollowCluster, hollow_pod
from tests.conftest import running_plane
from tests.polling import eventually
from tests.unit.test_image_import import write_oci

ELECTION = "[leader_election]\nenabled = true\n"


@dataclass
class Follower:
    leading: bool = False


@dataclass
class Planes:
    leader: HollowCluster
    socket: Path
    server: ApiServer


@contextlib.asynccontextmanager
async def follower_api(
    registry: Registry, config: Config, socket: Path
) -> AsyncIterator[ApiServer]:
    """An API server on `registry` that does not lead, on the unix socket `socket`."""
    tokens = ensure_tokens(config.api.tokens_file)
    server = ApiServer(
        registry,
        role_of_token=tokens.role_of,
        leader=LeaderForwarder(
            registry,
            Follower(),
            identity="cp-2",
            ssl_context=client_ssl_context(ensure_ca(config.api.pki_dir)),
            admin_token=tokens.require_token("admin"),
        ),
    )
    async with contextlib.AsyncExitStack() as stack:
        await server.start_unix(socket)
        stack.push_async_callback(server.stop)
        yield server


@pytest.fixture
async def planes(tmp_path: Path) -> AsyncIterator[Planes]:
    async with hollow_pod(tmp_path, listen="127.0.0.1:0", extra_config=ELECTION) as cluster:
        plane = cluster.plane
        assert plane.elector is not None and plane.server_url
        await eventually(lambda: plane.leading, "the only candidate to lead")
        socket = tmp_path / "follower.sock"
        async with follower_api(plane.registry, plane.config, socket) as server:
            yield Planes(cluster, socket, server)


async def test_the_leader_advertises_its_endpoint_in_the_lease(planes: Planes) -> None:
    plane = planes.leader.plane
    lease = (await plane.registry.get(LEASE, LEADER_LEASE_NAMESPACE, LEADER_LEASE_NAME)).obj
    assert plane.elector is not None
    assert lease["spec"]["holderIdentity"] == plane.elector.identity
    assert lease["spec"]["leaseDurationSeconds"] == 15
    assert lease["metadata"]["annotations"]["pilothouse.io/leader-endpoint"] == plane.server_url


async def test_logs_exec_and_metrics_through_a_follower(planes: Planes) -> None:
    async with Client(str(planes.socket)) as client:
        assert await client.logs("web", tail_lines=1) == "web/main line 5\n"
        chunks = [c async for c in client.follow_logs("web", tail_lines=1)]
        assert chunks[0] == "web/main line 5\n" and len(chunks) == 4
        assert (await client.exec("web", ["echo", "x"]))["stdout"] == "x\n"
        async with client.exec_stream("web", ["sh"], stdin=True, tty=True) as conn:
            await conn.write(b"echo hi\nexit 3\n")
            out = b"".join([data async for _fd, data in conn.output()])
        assert b"hi\r\n" in out and conn.exit_code == 3
        nodes = await client.node_metrics()
        assert [n["metadata"]["name"] for n in nodes["items"]] == ["node-1"]
        pods = await client.pod_metrics()
        assert [p["metadata"]["name"] for p in pods["items"]] == ["web"]
        # Errors come back as the leader's Status.
        with pytest.raises(ApiError) as e:
            await client.logs("web", container="other")
        assert e.value.code == 400 and "container other is not valid" in e.value.message
        with pytest.raises(ApiError) as e:
            async with client.exec_stream("nope", ["sh"]):
                pass
        assert e.value.code == 404


async def test_an_image_import_through_a_follower(planes: Planes, tmp_path: Path) -> None:
    agent = planes.leader.agents["node-1"]
    agent.image_dir = tmp_path / "images"
    archive = write_oci(tmp_path / "img.tar", size=3 * 1024 * 1024)
    async with Client(str(planes.socket)) as client:
        events = [ev async for ev in client.import_image(archive)]
    assert events[-1] == {"phase": "finished", "imported": ["node-1"], "failed": []}


async def test_the_callers_token_goes_to_the_leader(planes: Planes) -> None:
    """Over TLS, the leader authorizes the caller's own token: read-only may
    read metrics through a follower, not exec."""
    plane = planes.leader.plane
    port = await planes.server.start_tcp("127.0.0.1", 0, _server_context(plane.config.api.pki_dir))
    ro = read_kubeconfig(plane.config.data_dir / "kubeconfig-readonly")
    async with Client(f"https://127.0.0.1:{port}", ca_pem=ro.ca_pem, token=ro.token) as reader:
        assert (await reader.node_metrics())["items"]
        with pytest.raises(ApiError) as e:
            await reader.exec("web", ["echo", "x"])
        assert e.value.code == 403


async def test_a_request_forwarded_twice_is_503(planes: Planes) -> None:
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(str(planes.socket))) as raw,
        raw.get(
            "http://localhost/api/v1/namespaces/default/pods/web/log",
            headers={FORWARDED_HEADER: "cp-3"},
        ) as answer,
    ):
        assert answer.status == 503 and "does not lead" in await answer.text()


async def test_without_a_leader_it_is_503(tmp_path: Path) -> None:
    """No Lease (nobody has led yet): 503, while what the store answers is served."""
    async with (
        running_plane(tmp_path, components=False) as alone,
        follower_api(alone.registry, alone.config, tmp_path / "follower.sock"),
        Client(str(tmp_path / "follower.sock")) as client,
    ):
        with pytest.raises(ApiError) as e:
            await client.node_metrics()
        assert e.value.code == 503 and "no control plane leads" in e.value.message
        assert (await client.get(NAMESPACE, "default"))["metadata"]["name"] == "default"


def _server_context(pki_dir: Path) -> ssl.SSLContext:
    pki = ensure_pki(pki_dir, ["127.0.0.1"])
    return server_ssl_context(pki.server_cert, pki.server_key)
