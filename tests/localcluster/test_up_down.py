"""`up --nodes 2` on this machine, then `down`: real namespaces, sshd and containerd.

One cluster serves the whole module (bounded: up takes a few seconds); the
fixture always runs `down`, even when a test or `up` itself fails. Addresses
and pod CIDRs are the test's own, apart from the default cluster's.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import asyncssh
import pytest
import pytest_asyncio

from control.config import load_config
from control.errors import TransportError
from control.localcluster.cluster import UpResult, down, up
from control.localcluster.daemons import start_node_sshd, stop_node_sshd
from control.localcluster.layout import Layout
from control.localcluster.proc import read_pid
from control.localcluster.runcstate import runc_state
from control.nodes.ssh import AuthError, HostKeyError, SshTransport
from control.nodesetup.check import check_node
from tests.localcluster.names import SHARED_CLUSTER_MODULE, unique
from tests.localcluster.traces import Snapshot, leftovers, runc_ids, running

pytestmark = SHARED_CLUSTER_MODULE

NAMES = unique("ud")
CLUSTER = NAMES.cluster
SUBNET = NAMES.node_subnet
POD_CIDR = NAMES.pod_cidr


def _serve_argv(data_dir: Path) -> tuple[str, ...]:
    """`pilothouse serve` on the cluster's data dir, as `pilothouse up` starts it."""
    return (sys.executable, "-m", "console", "serve", "--data-dir", str(data_dir))


@dataclass
class Cluster:
    data_dir: Path
    result: UpResult
    before: Snapshot
    pids: set[int] = field(default_factory=set)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("lc") / "data"
    before = Snapshot.take()
    try:
        result = await asyncio.wait_for(
            up(
                2,
                data_dir,
                cluster=CLUSTER,
                node_subnet=SUBNET,
                pod_cidr=POD_CIDR,
                service_cidr=NAMES.service_cidr,
                serve_command=_serve_argv(data_dir),
                api_listen="",
            ),
            180,
        )
        yield Cluster(data_dir, result, before)
    finally:
        await asyncio.wait_for(down(data_dir), 120)


async def _ssh(cluster: Cluster, node: str) -> SshTransport:
    config = load_config(None, data_dir=cluster.data_dir)
    cfg = next(n for n in config.nodes if n.name == node)
    return SshTransport(cfg, config.ssh, command=("true",))


async def test_config_lists_the_nodes(cluster: Cluster) -> None:
    config = load_config(None, data_dir=cluster.data_dir)
    assert [n.name for n in config.nodes] == ["node1", "node2"]
    assert [n.host for n in config.nodes] == [NAMES.node_ip(1), NAMES.node_ip(2)]
    assert config.ssh.known_hosts.read_text().count("ssh-ed25519") == 2
    assert config.network.pod_cidr == POD_CIDR
    assert cluster.result.serve_pid is not None
    assert (cluster.data_dir / "api.sock").is_socket()


def _ctr(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["ctr", "--address", str(sock), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20)


async def test_containerd_answers_on_each_node(cluster: Cluster) -> None:
    lay = Layout(cluster.data_dir)
    for n in cluster.result.nodes:
        out = _ctr(lay.node(n.name).socket, "version")
        assert out.returncode == 0, out.stderr
        assert "Server:" in out.stdout
        images = _ctr(lay.node(n.name).socket, "-n", "k8s.io", "images", "list", "-q")
        assert "docker.io/pilothouse/pause:latest" in images.stdout.split()
        assert "docker.io/pilothouse/busybox:latest" in images.stdout.split()


async def test_sshd_accepts_the_generated_key(cluster: Cluster) -> None:
    for n in cluster.result.nodes:
        transport = await _ssh(cluster, n.name)
        conn = await transport.connect()
        try:
            r = await conn.run("echo $PILOTHOUSE_NODE_NAME $PILOTHOUSE_POD_CIDR", check=True)
        finally:
            conn.close()
        assert str(r.stdout).split() == [n.name, n.pod_cidr]


async def test_sshd_host_key_mismatch_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    # node1's address with node2's key: the client must refuse to log in.
    n1, n2 = cluster.result.nodes
    lines = cluster.result.known_hosts.read_text().splitlines()
    key2 = next(line for line in lines if line.startswith(n2.ip + " ")).split(None, 1)[1]
    bad = tmp_path / "known_hosts"
    bad.write_text(f"{n1.ip} {key2}\n")
    transport = await _ssh(cluster, "node1")
    transport.ssh = replace(transport.ssh, known_hosts=bad)
    with pytest.raises(HostKeyError, match=f"mismatch for {n1.ip}.*{bad}"):
        await transport.connect()


async def test_sshd_rejects_an_unknown_client_key(cluster: Cluster, tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(tmp_path / "other"))
    transport = await _ssh(cluster, "node1")
    transport.ssh = replace(transport.ssh, identity_files=(tmp_path / "other",))
    with pytest.raises(AuthError):
        await transport.connect()


async def test_node_check_finds_nothing_missing(cluster: Cluster) -> None:
    config = load_config(None, data_dir=cluster.data_dir)
    results = await check_node(config.nodes[0], config.ssh)
    assert [r.name for r in results if not r.ok] == [], results
    names = [r.name for r in results]
    assert names == ["ssh", "python3", "agent", "containerd", "cri", "pause image", "cni plugins"]


async def test_pods_on_different_nodes_reach_each_other(cluster: Cluster) -> None:
    pytest.importorskip("agent.cri.client")
    from agent.cri import api_pb2 as pb
    from agent.cri.client import CRIClient

    lay = Layout(cluster.data_dir)
    ips: dict[str, str] = {}
    for n in cluster.result.nodes:
        async with CRIClient(str(lay.node(n.name).socket)) as cri:
            cfg = pb.PodSandboxConfig(
                metadata=pb.PodSandboxMetadata(name="web", namespace="default", uid=n.name),
                hostname=f"web-{n.name}",
                log_directory=str(cluster.data_dir / "cluster" / n.name / "logs"),
                linux=pb.LinuxPodSandboxConfig(cgroup_parent=f"{n.cgroup_parent}/web"),
            )
            sid = await cri.run_pod_sandbox(cfg)
            cc = pb.ContainerConfig(
                metadata=pb.ContainerMetadata(name="httpd"),
                image=pb.ImageSpec(image="docker.io/pilothouse/busybox:latest"),
                command=["httpd", "-f", "-p", "80", "-h", "/etc"],
                log_path="httpd.log",
            )
            cid = await cri.create_container(sid, cc, cfg)
            await cri.start_container(cid)
            ips[n.name] = (await cri.pod_sandbox_status(sid)).network.ip
    assert ips["node1"].startswith(NAMES.pod_prefix(1))
    assert ips["node2"].startswith(NAMES.pod_prefix(2))

    async def fetch(ip: str, netns: list[str]) -> str:
        code = (
            "import sys, urllib.request\n"
            "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
        )
        proc = await asyncio.create_subprocess_exec(
            *netns,
            sys.executable,
            "-c",
            code,
            f"http://{ip}/hostname",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        return out.decode().strip()

    # From the host, through each node.
    assert await fetch(ips["node1"], []) == "web-node1"
    assert await fetch(ips["node2"], []) == "web-node2"
    # From node2's pod to node1's pod: pod -> node2 -> node1 -> pod, no NAT.
    pod2 = _pod_netns(lay, "node2")
    assert await fetch(ips["node1"], ["nsenter", f"--net={pod2}", "--"]) == "web-node1"


def _pod_netns(lay: Layout, node: str) -> str:
    """A running container's network namespace on `node`, via its runc root."""
    state = runc_state(lay, node, runc_ids(lay, node)[0])
    return f"/proc/{state['pid']}/ns/net"


async def test_up_again_changes_nothing(cluster: Cluster) -> None:
    lay = Layout(cluster.data_dir)
    before = {
        n.name: (read_pid(lay.node(n.name).sshd_pid), read_pid(lay.node(n.name).containerd_pid))
        for n in cluster.result.nodes
    }
    again = await up(
        2,
        cluster.data_dir,
        cluster=CLUSTER,
        images=(),
        serve_command=_serve_argv(cluster.data_dir),
        api_listen="",
    )
    after = {
        n.name: (read_pid(lay.node(n.name).sshd_pid), read_pid(lay.node(n.name).containerd_pid))
        for n in again.nodes
    }
    assert after == before
    assert again.serve_pid == cluster.result.serve_pid


async def test_a_node_sshd_stops_and_starts(cluster: Cluster) -> None:
    """The failure the node-lifecycle tests use: a node's sshd goes away."""
    n2 = cluster.result.nodes[1]
    transport = await _ssh(cluster, n2.name)
    conn = await transport.connect()
    await stop_node_sshd(cluster.data_dir, n2.name)
    # The open session is dropped, and new connections are refused.
    await asyncio.wait_for(conn.wait_closed(), 10)
    with pytest.raises(TransportError, match="cannot connect"):
        await transport.connect()
    await start_node_sshd(cluster.data_dir, n2.name)
    conn = await transport.connect()
    conn.close()


async def test_down_leaves_nothing_behind(cluster: Cluster) -> None:
    """Runs last in this module: takes the cluster down and compares with before."""
    started, pod_netns = await running(cluster.data_dir)
    assert len(pod_netns) == 2  # from test_pods_on_different_nodes_reach_each_other

    assert await down(cluster.data_dir)
    # Other tests may be making namespaces and links meanwhile: look at ours.
    assert not any(n.startswith(f"ph-{CLUSTER}-") for n in cluster.before.netns)
    left = leftovers(NAMES, cluster.data_dir, cluster.before, pids=started, pod_netns=pod_netns)
    assert left == {}
    assert not await down(cluster.data_dir)  # a second down finds nothing to do
