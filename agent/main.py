"""The node agent: serves the agent protocol on stdin/stdout and drives containerd.

stdout belongs to the protocol alone; logs (and anything a library prints) go to
stderr. When the connection ends the agent exits and leaves every container
running, and the service rules in place: the next agent adopts them. With
--ingress it also serves the node's ingress (agent.ingress), whose HAProxy it
stops when it exits.

With --proxy-only it is a service proxy alone (ProxyAgent): no containerd, no
pods; it answers hello, network_config and the services_* requests, and serves
the cluster DNS only with --dns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import socket
import sys
import time
from pathlib import Path
from typing import Any

from agent.cri.client import CRIClient, CRIError
from agent.images import ImageReceiver, import_archive
from agent.ingress.nodeingress import NodeIngress, runtime_dir_for
from agent.network.nodenetwork import NodeNetwork
from agent.nodestatus import architecture, machine_identity, node_conditions
from agent.pods.manager import PodManager
from agent.pods.network import write_conflist
from agent.pods.params import desired_pods
from agent.pods.sources import Sources
from agent.pods.spec import NodeConfig
from agent.protocol import (
    AGENT_VERSION,
    IMAGE_COMMIT_TIMEOUT,
    PROTOCOL_VERSION,
    ConnectionClosed,
    InvalidParams,
    NodeCondition,
    NodeInfo,
    NodeStatusParams,
    Params,
    Peer,
    Reader,
    StatsResult,
    SyncPodsResult,
    Writer,
    check_hello,
)
from agent.stdio import stdio
from agent.succession import take_over

log = logging.getLogger("agent")

DEFAULT_SOCKET = "/run/containerd/containerd.sock"
DEFAULT_STATE_DIR = "/var/lib/pilothouse/agent"
MAX_PODS = 110


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                out[key] = int(parts[0]) * 1024
    return out


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies across all CPUs."""
    with contextlib.suppress(OSError, ValueError):
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields) - idle, sum(fields)
    return 0, 0


def _os_image() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def _node_info(name: str, containerd_version: str) -> NodeInfo:
    ids = machine_identity()
    return NodeInfo(
        hostname=name,  # kubelet's --hostname-override: nodes may share a UTS ns
        os="linux",
        osImage=_os_image(),
        kernel=platform.release(),
        architecture=architecture(),
        cpus=os.cpu_count() or 1,
        memoryBytes=_meminfo().get("MemTotal", 0),
        containerdVersion=containerd_version,
        agentVersion=AGENT_VERSION,
        protocolVersion=PROTOCOL_VERSION,
        networking=True,
        machineID=ids.machine_id,
        systemUUID=ids.system_uuid,
        bootID=ids.boot_id,
    )


class Agent:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.node = NodeConfig(
            name=args.node_name,
            state_dir=Path(args.state_dir),
            cgroup_parent=args.cgroup_parent,
            cluster_dns=args.cluster_dns or "",
            cluster_domain=args.cluster_domain,
            node_ip=args.node_ip or "",
            secret_tmpfs=True,
        )
        self.pod_cidr: str = args.pod_cidr or ""
        self.cri = CRIClient(args.containerd_socket)
        self.peer: Peer | None = None
        self.pods = PodManager(
            self.cri,
            self.node,
            self._send,
            backoff_base=args.backoff_base,
            backoff_max=args.backoff_max,
            sync_interval=args.sync_interval,
            offline_registry=args.offline_registry,
        )
        self.network = NodeNetwork()
        self.ingress = NodeIngress(runtime_dir_for(self.node.state_dir)) if args.ingress else None
        if self.ingress is not None:
            self.ingress.set_node_ip(self.node.node_ip)
        socket_path = args.containerd_socket
        self.images = ImageReceiver(
            # Within the control plane's wait for the commit, so that a slow
            # import fails with ctr's reason rather than the link's timeout.
            lambda archive: import_archive(socket_path, archive, timeout=IMAGE_COMMIT_TIMEOUT - 30),
            tmp_dir=self.node.state_dir / "image-imports",
        )
        self._helloed = asyncio.Event()
        self._cpu_sample = (_cpu_jiffies(), time.monotonic())

    async def _send(self, method: str, params: dict[str, Any]) -> None:
        if self.peer is None:
            raise ConnectionClosed("no connection")
        await self.peer.notify(method, params)

    # ---- serving ----

    async def serve(self, reader: Reader, writer: Writer) -> None:
        self.node.state_dir.mkdir(parents=True, exist_ok=True)
        replaced = await take_over(self.node.state_dir)
        if replaced is not None:
            log.info("stopped the agent this one replaces (pid %d)", replaced)
        self.images.sweep()
        self._write_cni()
        peer = Peer(reader, writer, name=f"agent {self.node.name}")
        peer.on("hello", self._hello)
        peer.on("network_config", self._network_config)
        peer.on("sync_pods", self._sync_pods)
        peer.on("logs", self.pods.logs)
        peer.on("exec", self.pods.exec)
        peer.on("attach", self.pods.attach)
        peer.on("stats", self._stats)
        peer.on("exec_io", self.pods.sessions.on_io)
        handlers = self.images.handlers() | self.network.handlers()
        if self.ingress is not None:
            handlers |= self.ingress.handlers()
        for method, handler in handlers.items():
            peer.on(method, handler)
        self.peer = peer
        try:
            await peer.run_beside(self._heartbeats())
        finally:
            self.peer = None
            peer.close()
            self.images.close()
            await self.network.close()
            if self.ingress is not None:
                await self.ingress.close()
            await self.pods.shutdown()
            await self.cri.close()

    async def _heartbeats(self) -> None:
        await self._helloed.wait()
        while True:
            try:
                await self._send("node_status", dict(await self.node_status()))
            except ConnectionError:
                return
            except Exception:
                log.exception("heartbeat failed")
            try:
                await self.network.repair()  # a routine check with each heartbeat
            except Exception:
                log.exception("network repair failed")
            try:
                await self.pods.sweep_orphans()
            except Exception:
                log.exception("orphan sweep failed")
            await asyncio.sleep(self.args.heartbeat_interval)

    # ---- handlers ----

    async def _hello(self, params: Params) -> NodeInfo:
        hello = check_hello(params)
        if hello["nodeName"] and hello["nodeName"] != self.node.name:
            log.info("control plane calls this node %s", hello["nodeName"])
            self.node.name = hello["nodeName"]
        version = ""
        with contextlib.suppress(CRIError):
            version = (await self.cri.version()).runtime_version
        first = not self._helloed.is_set()
        self._helloed.set()
        if not first:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.pods.resend()))
        return _node_info(self.node.name, version)

    async def _network_config(self, params: Params) -> dict[str, Any]:
        self.pod_cidr = str(params.get("podCIDR") or self.pod_cidr)
        self.node.node_ip = str(params.get("nodeIP") or self.node.node_ip)
        self.node.cluster_dns = str(params.get("clusterDNS") or self.node.cluster_dns)
        self.node.cluster_domain = str(params.get("clusterDomain") or self.node.cluster_domain)
        if self.ingress is not None:
            self.ingress.set_node_ip(self.node.node_ip)
        self._write_cni()
        errors = await self.network.configure(params)
        return {"errors": errors} if errors else {}

    def _write_cni(self) -> None:
        """With --cni-conf-dir, the agent owns the bridge conflist for its pod CIDR."""
        if not self.args.cni_conf_dir or not self.pod_cidr:
            return
        ipam = self.node.state_dir / "cni-ipam"
        try:
            if write_conflist(
                Path(self.args.cni_conf_dir), self.pod_cidr, ipam, self.args.cni_bridge
            ):
                log.info("wrote the CNI conflist for %s", self.pod_cidr)
        except (OSError, ValueError) as e:
            raise InvalidParams(f"podCIDR {self.pod_cidr}: {e}") from None

    async def _sync_pods(self, params: Params) -> SyncPodsResult:
        desired = desired_pods(params)
        return SyncPodsResult(pods=await self.pods.sync_pods(desired, Sources.from_params(params)))

    async def _stats(self, params: Params) -> StatsResult:
        uids = params.get("pods")
        pods = await self.pods.pod_stats(list(uids) if isinstance(uids, list) else None)
        mem = _meminfo()
        return StatsResult(
            node={
                "cpuNanoCores": self._cpu_nano_cores(),
                "memoryWorkingSetBytes": mem.get("MemTotal", 0) - mem.get("MemAvailable", 0),
            },
            pods=pods,  # type: ignore[typeddict-item]
        )

    # ---- node status ----

    def _cpu_nano_cores(self) -> int:
        (busy0, total0), t0 = self._cpu_sample
        busy1, total1 = _cpu_jiffies()
        t1 = time.monotonic()
        self._cpu_sample = ((busy1, total1), t1)
        if total1 <= total0 or t1 <= t0:
            return 0
        cpus = os.cpu_count() or 1
        return int((busy1 - busy0) / (total1 - total0) * cpus * 1e9)

    async def node_status(self) -> NodeStatusParams:
        mem = _meminfo()
        cpus = os.cpu_count() or 1
        capacity = {
            "cpu": str(cpus),
            "memory": f"{mem.get('MemTotal', 0) // 1024}Ki",
            "pods": str(MAX_PODS),
        }
        with contextlib.suppress(OSError):
            st = os.statvfs(self.node.state_dir)
            capacity["ephemeral-storage"] = f"{st.f_blocks * st.f_frsize // 1024}Ki"
        self.node.allocatable = dict(capacity)
        ready: NodeCondition
        try:
            rs = await self.cri.status()
            bad = [c for c in rs.status.conditions if not c.status]
            if bad:
                ready = {
                    "type": "Ready",
                    "status": "False",
                    "reason": "KubeletNotReady",
                    "message": "; ".join(
                        f"{c.type}=false: {c.reason} {c.message}".strip() for c in bad
                    ),
                }
            else:
                ready = {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "agent is posting ready status",
                }
        except CRIError as e:
            ready = {
                "type": "Ready",
                "status": "False",
                "reason": "ContainerRuntimeUnavailable",
                "message": e.details,
            }
        avail = mem.get("MemAvailable", 0)
        disk_low = False
        with contextlib.suppress(OSError):
            st = os.statvfs(self.node.state_dir)
            disk_low = st.f_bavail < st.f_blocks * 0.1
        return NodeStatusParams(
            conditions=node_conditions(
                ready, memory_pressure=avail < 100 * 2**20, disk_pressure=disk_low
            ),
            capacity=capacity,
            allocatable=dict(capacity),
            usage={
                "cpu": f"{self._cpu_nano_cores()}n",
                "memory": f"{(mem.get('MemTotal', 0) - avail) // 1024}Ki",
                "pods": str(len(self.pods.workers)),
            },
        )


class ProxyAgent:
    """A service proxy alone (--proxy-only): the service rules and routes it is
    sent, in the network namespace it runs in; the cluster DNS with --dns."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.name: str = args.node_name
        self.network = NodeNetwork(rules=not args.netns_free, dns=args.dns)

    async def serve(self, reader: Reader, writer: Writer) -> None:
        peer = Peer(reader, writer, name=f"proxy {self.name}")
        peer.on("hello", self._hello)
        peer.on("network_config", self._network_config)
        for method, handler in self.network.handlers().items():
            peer.on(method, handler)
        try:
            await peer.run()
        finally:
            peer.close()
            await self.network.close()

    async def _hello(self, params: Params) -> NodeInfo:
        hello = check_hello(params)
        self.name = hello["nodeName"] or self.name
        info = _node_info(self.name, "")
        info["proxyOnly"] = True
        return info

    async def _network_config(self, params: Params) -> dict[str, Any]:
        errors = await self.network.configure(params)
        return {"errors": errors} if errors else {}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python3 -m agent",
        description="The pilothouse node agent: the agent protocol on stdin/stdout, containerd over CRI.",
    )
    p.add_argument("--containerd-socket", default=DEFAULT_SOCKET, metavar="PATH")
    p.add_argument("--node-name", default=socket.gethostname())
    p.add_argument("--pod-cidr", default="", help="until the control plane sends one")
    p.add_argument("--node-ip", default="", help="until the control plane sends one")
    p.add_argument("--cluster-dns", default="", help="until the control plane sends one")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--cgroup-parent", default="/pilothouse", help="parent cgroup of the pods")
    p.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="pod logs and volumes")
    p.add_argument(
        "--cni-conf-dir", default="", help="write the bridge conflist for the pod CIDR here"
    )
    p.add_argument("--cni-bridge", default="ph0", help="bridge name in that conflist")
    p.add_argument("--heartbeat-interval", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--sync-interval", type=float, default=1.0, metavar="SECONDS")
    p.add_argument("--backoff-base", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--backoff-max", type=float, default=300.0, metavar="SECONDS")
    p.add_argument(
        "--offline-registry",
        action="store_true",
        help="the node reaches no registry: never pull; use present images whatever the "
        "pull policy, and fail ErrImagePull at once for absent ones",
    )
    p.add_argument(
        "--proxy-only",
        action="store_true",
        help="a service proxy alone: no containerd, no pods; service rules and the routes "
        "it is sent, in the network namespace it runs in",
    )
    p.add_argument(
        "--netns-free",
        action="store_true",
        help="with --proxy-only: change nothing in the network namespace (no rules, routes "
        "or DNS); keep the service table and acknowledge it, for tests and dry runs",
    )
    p.add_argument(
        "--dns",
        action="store_true",
        help="with --proxy-only: serve the cluster DNS at network_config's clusterDNS",
    )
    p.add_argument(
        "--ingress",
        action="store_true",
        help="serve the ingress route table the control plane sends (HAProxy on the node's "
        "IP, ports 80 and 443)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    for flag in ("netns_free", "dns"):
        if getattr(args, flag) and not args.proxy_only:
            p.error(f"--{flag.replace('_', '-')}: only with --proxy-only")
    return args


async def _main(args: argparse.Namespace, out_fd: int) -> None:
    agent = ProxyAgent(args) if args.proxy_only else Agent(args)
    reader, writer = await stdio(out_fd)
    await agent.serve(reader, writer)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The protocol keeps the real stdout; fd 1 becomes stderr, so that a stray
    # print cannot corrupt the stream.
    sys.stdout.flush()
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args, out_fd))


if __name__ == "__main__":
    main()
