"""`pilothouse up` and `pilothouse down`: a real multi-node cluster on one machine.

Each node is a network namespace `ph-<cluster>-node<N>` on a host bridge, with
its own sshd and containerd. Everything made is recorded in a state file, and
`down` removes exactly that: it never touches namespaces, links or processes
that it did not create.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from control.api.registry import Registry
from control.config import Config, load_config
from control.controlplane import open_store
from control.errors import ApiError
from control.localcluster import files
from control.localcluster.cri import CriClient
from control.localcluster.proc import (
    CommandError,
    LocalClusterError,
    alive,
    cmdline,
    exit_status,
    is_zombie,
    kill_all,
    netns_inode,
    pids_in_netns,
    processes_named,
    read_pid,
    run,
    start_daemon,
    stop_pid,
)
from control.objects.kinds import NODE

Progress = Callable[[str], None]

CLUSTER_DIR = "cluster"
STATE_FILE = "state.json"
CONFIG_MARKER = "# Written by `pilothouse up`"
DEFAULT_NODE_SUBNET = "172.31.250.0/24"
DEFAULT_POD_CIDR = "10.244.0.0/16"
MAX_NODES = 50
DEFAULT_NODE_GRACE_PERIOD = 40.0  # Kubernetes' node-monitor-grace-period
DEFAULT_BACKOFF_BASE = 10.0  # kubelet's first CrashLoopBackOff delay
AGENT_LAUNCHER = "control.localcluster.agent_launcher"
_CLUSTER_NAME = re.compile(r"^[a-z0-9]{1,8}$")


def agent_flags(node_grace_period: float, backoff_base: float) -> list[str]:
    """The agent options every local node runs with.

    - `--offline-registry`: the nodes have no route to any registry, so the
      agent never tries a pull; the images `up` imported are used as they are.
    - `--heartbeat-interval`: four heartbeats per grace period, as a node link's
      status writes, so that a live node never looks stale.
    - `--backoff-base`: the first restart back-off.
    """
    beat = min(10.0, node_grace_period / 4)
    return [
        "--offline-registry",
        "--heartbeat-interval",
        f"{beat:g}",
        "--backoff-base",
        f"{backoff_base:g}",
    ]


@dataclass
class NodeState:
    index: int
    name: str
    netns: str
    host_veth: str
    ip: str
    pod_cidr: str
    cgroup_parent: str


@dataclass
class State:
    cluster: str
    bridge: str
    node_subnet: str
    pod_cidr: str
    node_cidr_mask: int
    bridge_created: bool = False
    made_run_sshd: bool = False
    # Top-level entries of the data dir before the first `up`; `down` removes the rest.
    preexisting: list[str] = field(default_factory=list)
    host_routes: list[str] = field(default_factory=list)
    # iptables rules added (argv after -I/-D), removed by `down`.
    iptables_rules: list[list[str]] = field(default_factory=list)
    nodes: dict[str, NodeState] = field(default_factory=dict)

    @staticmethod
    def load(path: Path) -> State | None:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise LocalClusterError(f"{path}: corrupt state file: {e}") from None
        nodes = {k: NodeState(**v) for k, v in raw.pop("nodes", {}).items()}
        return State(**raw, nodes=nodes)

    def save(self, path: Path) -> None:
        files.write_private(path, json.dumps(asdict(self), indent=2) + "\n")


@dataclass(frozen=True)
class UpResult:
    config_path: Path
    known_hosts: Path
    nodes: tuple[NodeState, ...]
    seconds: float
    serve_pid: int | None


class Layout:
    """Where one cluster's files live under the data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / CLUSTER_DIR
        self.state = self.root / STATE_FILE
        self.client_key = self.root / "ssh" / "id_ed25519"
        self.config = data_dir / "config.toml"
        self.known_hosts = data_dir / "known_hosts"
        self.serve_pid = self.root / "serve.pid"
        self.serve_log = self.root / "serve.log"
        self.api_socket = data_dir / "api.sock"

    def node(self, name: str) -> NodeLayout:
        return NodeLayout(self.root / name)


class NodeLayout:
    def __init__(self, d: Path) -> None:
        self.dir = d
        self.host_key = d / "ssh" / "ssh_host_ed25519_key"
        self.authorized_keys = d / "ssh" / "authorized_keys"
        self.sshd_config = d / "ssh" / "sshd_config"
        self.sshd_pid = d / "sshd.pid"
        self.sshd_log = d / "sshd.log"
        self.containerd_config = d / "containerd" / "config.toml"
        self.containerd_root = d / "containerd" / "root"
        self.containerd_state = d / "containerd" / "state"
        self.containerd_pid = d / "containerd.pid"
        self.containerd_log = d / "containerd.log"
        self.socket = d / "containerd.sock"
        self.runc_root = d / "runc"
        self.cni_conf_dir = d / "cni" / "net.d"


def _quiet(_: str) -> None:
    pass


BR_NETFILTER = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
RUN_SSHD = Path("/run/sshd")  # sshd's privilege separation directory


def _absolute(p: Path) -> Path:
    return p.expanduser().absolute()


def _ensure_dir(p: Path) -> bool:
    """Create `p` if missing; True when this call made it."""
    if p.is_dir():
        return False
    p.mkdir(mode=0o755)
    return True


def _rmdir(p: Path) -> None:
    with contextlib.suppress(OSError):
        p.rmdir()


# --- up ------------------------------------------------------------------------


async def up(
    nodes: int,
    data_dir: Path,
    *,
    cluster: str = "local",
    node_subnet: str = DEFAULT_NODE_SUBNET,
    pod_cidr: str = DEFAULT_POD_CIDR,
    node_cidr_mask: int = 24,
    images: Sequence[Path] | None = None,
    agent_command: Sequence[str] | None = None,
    serve_command: Sequence[str] | None = None,
    api_listen: str | None = None,
    node_grace_period: float = DEFAULT_NODE_GRACE_PERIOD,
    backoff_base: float = DEFAULT_BACKOFF_BASE,
    progress: Progress = _quiet,
) -> UpResult:
    """Bring up (or complete, or resize) the local cluster in `data_dir`. Idempotent.

    `images` are OCI archives to import into every node; None builds the pause
    and busybox images with `python3 -m agent.images`. With `serve_command`,
    the control plane is started (or reused), after the Nodes are registered
    with the pod CIDRs the network was built for. `agent_command` defaults to
    the local launcher, which passes each node's settings to `python3 -m agent`,
    together with `agent_flags(...)`.

    `node_grace_period` is the control plane's node_monitor_grace_period: how
    long a silent node stays Ready. `backoff_base` is the agents' first
    CrashLoopBackOff (and image pull back-off) delay, doubling to 5 minutes.
    """
    lay = Layout(_absolute(data_dir))
    data_dir = lay.data_dir
    with _locked(lay):
        t0 = time.monotonic()
        if node_grace_period <= 0 or backoff_base <= 0:
            raise LocalClusterError("the node grace period and back-off must be positive")
        if agent_command is None:
            agent_command = (
                sys.executable,
                "-m",
                AGENT_LAUNCHER,
                *agent_flags(node_grace_period, backoff_base),
            )
        if os.geteuid() != 0:
            raise LocalClusterError("`pilothouse up` needs root (network namespaces, containerd)")
        if not 1 <= nodes <= MAX_NODES:
            raise LocalClusterError(f"--nodes must be between 1 and {MAX_NODES}, got {nodes}")
        if not _CLUSTER_NAME.match(cluster):
            raise LocalClusterError(f"cluster name must be 1-8 of [a-z0-9], got {cluster!r}")
        _check_tools()
        _check_config_is_ours(lay.config)

        state = State.load(lay.state)
        if state is None:
            data_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(data_dir, 0o700)
            state = State(
                cluster=cluster,
                bridge=f"phbr-{cluster}",
                node_subnet=node_subnet,
                pod_cidr=pod_cidr,
                node_cidr_mask=node_cidr_mask,
                preexisting=sorted(p.name for p in data_dir.iterdir() if p.name != CLUSTER_DIR),
            )
        elif state.cluster != cluster:
            raise LocalClusterError(
                f"{data_dir} already holds local cluster {state.cluster!r}; "
                "run `pilothouse down` first or use another --data-dir"
            )
        lay.root.mkdir(parents=True, exist_ok=True)
        state.save(lay.state)

        # Shrinking: tear down nodes beyond the new count first.
        wanted = {f"node{i}" for i in range(1, nodes + 1)}
        for name in sorted(set(state.nodes) - wanted):
            progress(f"{name}: removing (cluster shrinks to {nodes} nodes)")
            gone = state.nodes.pop(name)
            await _down_node(state, lay, gone, progress)
            for other in state.nodes.values():
                await run(["ip", "-n", other.netns, "route", "del", gone.pod_cidr], check=False)
            if gone.pod_cidr in state.host_routes:
                await run(["ip", "route", "del", gone.pod_cidr, "dev", state.bridge], check=False)
                state.host_routes.remove(gone.pod_cidr)
            state.save(lay.state)

        await _ensure_bridge(state, lay.state)
        await _ensure_forwarding_rule(state)
        state.save(lay.state)
        if _ensure_dir(RUN_SSHD):
            state.made_run_sshd = True
        client_pub = files.ensure_key(lay.client_key)

        net = ipaddress.ip_network(state.node_subnet)
        pods = ipaddress.ip_network(state.pod_cidr)
        size = 2 ** (pods.max_prefixlen - state.node_cidr_mask)
        existing = set((await run(["ip", "netns", "list"])).split())
        for i in range(1, nodes + 1):
            name = f"node{i}"
            if name in state.nodes:
                continue
            netns = f"ph-{cluster}-{name}"
            if netns in existing:
                raise LocalClusterError(
                    f"network namespace {netns} exists but is not this cluster's "
                    f"(another data dir runs cluster {cluster!r}?); use another --name"
                )
            if await _link_exists(f"ph{cluster}n{i}"):
                raise LocalClusterError(
                    f"interface ph{cluster}n{i} exists but is not this cluster's"
                )
            cidr = ipaddress.ip_network(f"{pods.network_address + i * size}/{state.node_cidr_mask}")
            if not cidr.subnet_of(pods):  # type: ignore[arg-type]
                raise LocalClusterError(f"pod_cidr {pods} has no room for {nodes} node slices")
            state.nodes[name] = NodeState(
                index=i,
                name=name,
                netns=f"ph-{cluster}-{name}",
                host_veth=f"ph{cluster}n{i}",
                ip=str(net.network_address + 10 + i),
                pod_cidr=str(cidr),
                cgroup_parent=f"/pilothouse-{cluster}-{name}",
            )
        state.save(lay.state)

        node_list = [state.nodes[f"node{i}"] for i in range(1, nodes + 1)]
        if images is None:
            images = await build_images(lay.root / "images")
            progress(f"images: built {', '.join(p.name for p in images)}")
        host_keys = await asyncio.gather(
            *(_up_node(state, lay, n, client_pub, images, progress) for n in node_list)
        )
        await _ensure_routes(state, node_list)
        state.save(lay.state)

        known = "".join(
            files.known_hosts_line(n.ip, 22, key) + "\n"
            for n, key in zip(node_list, host_keys, strict=True)
        )
        files.write_private(lay.known_hosts, known, 0o644)
        config_changed = _write_config(
            lay, state, node_list, agent_command, api_listen, node_grace_period
        )
        serve_pid = None
        if serve_command is not None:
            serve_pid = await _ensure_serve(
                lay, serve_command, restart=config_changed, progress=progress
            )
            progress(f"control plane: serving on unix:{lay.api_socket} (pid {serve_pid})")
        return UpResult(
            lay.config, lay.known_hosts, tuple(node_list), time.monotonic() - t0, serve_pid
        )


async def build_images(out_dir: Path) -> list[Path]:
    """The pause and busybox OCI archives, built by the agent package (a subprocess:
    control/ imports nothing from agent/ but its protocol)."""
    out = await run([sys.executable, "-m", "agent.images", str(out_dir)], within=300)
    paths = [Path(line.split("\t", 1)[1]) for line in out.splitlines() if "\t" in line]
    if not paths:
        raise LocalClusterError(f"python3 -m agent.images built nothing: {out.strip()}")
    return paths


async def import_images(socket: Path, archives: Sequence[Path]) -> list[str]:
    """Import archives into a node's containerd with the agent's own import code
    (`python3 -m agent.images --archive`); returns the image names stored."""
    argv = [sys.executable, "-m", "agent.images", "--import-to", str(socket)]
    argv += [f"--archive={a}" for a in archives]
    out = await run(argv, within=120 * len(archives))
    return sorted({line.split("\t", 1)[0] for line in out.splitlines() if "\t" in line})


async def register_nodes(config: Config) -> list[str]:
    """Create the local cluster's Node objects with the pod CIDRs its network was
    built for, before a control plane starts its node links (which would
    otherwise hand out CIDRs in registration order). Opens the store directly,
    so no control plane may be running on it. Returns warnings."""
    state = State.load(Layout(config.data_dir).state)
    if state is None:
        return []
    wanted = {n.name for n in config.nodes}
    warnings: list[str] = []
    store = open_store(config)
    await store.open()
    try:
        registry = Registry(store, config.network.service_cidr)
        for n in state.nodes.values():
            if n.name not in wanted:
                continue
            try:
                current = (await registry.get(NODE, None, n.name)).obj
            except ApiError as e:
                if e.code != 404:
                    raise
                body = {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": n.name},
                    "spec": {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr]},
                }
                await registry.create(NODE, None, body)
                continue
            have = (current.get("spec") or {}).get("podCIDR")
            if have and have != n.pod_cidr:
                warnings.append(
                    f"{n.name}: Node has podCIDR {have}, the network routes {n.pod_cidr}"
                )
            elif not have:

                def set_cidr(obj: dict[str, Any], cidr: str = n.pod_cidr) -> dict[str, Any]:
                    obj.setdefault("spec", {}).update(podCIDR=cidr, podCIDRs=[cidr])
                    return obj

                await registry.patch(NODE, None, n.name, set_cidr)
    finally:
        await store.close()
    return warnings


@contextlib.contextmanager
def _locked(lay: Layout) -> Iterator[None]:
    """One `up` or `down` at a time per data dir."""
    lay.root.mkdir(parents=True, exist_ok=True)
    with open(lay.root / "lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LocalClusterError(
                f"another `pilothouse up` or `down` is working on {lay.data_dir}"
            ) from None
        yield


def _check_tools() -> None:
    missing = [
        t
        for t in ("ip", "nsenter", "sshd", "containerd", "ctr", "runc", "sysctl")
        if shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None
    ]
    if not Path(files.CNI_BIN_DIR, "bridge").exists():
        missing.append("CNI plugins")
    if missing:
        raise LocalClusterError(
            f"missing: {', '.join(missing)}; install them with: apt-get install "
            "openssh-server containerd runc containernetworking-plugins iproute2 procps util-linux"
        )


def _check_config_is_ours(path: Path) -> None:
    try:
        first = path.read_text().splitlines()[:1]
    except FileNotFoundError:
        return
    if not first or not first[0].startswith(CONFIG_MARKER):
        raise LocalClusterError(
            f"{path} exists and was not written by `pilothouse up`; "
            "move it away or use another --data-dir"
        )


async def _link_exists(name: str, netns: str | None = None) -> bool:
    argv = ["ip", *(["-n", netns] if netns else []), "link", "show", "dev", name]
    try:
        await run(argv)
    except CommandError:
        return False
    return True


async def _ensure_bridge(state: State, save_to: Path) -> None:
    net = ipaddress.ip_network(state.node_subnet)
    gw = f"{net.network_address + 1}/{net.prefixlen}"
    if await _link_exists(state.bridge):
        if not state.bridge_created:
            raise LocalClusterError(
                f"interface {state.bridge} exists but was not made by this cluster; remove it "
                "or use another cluster name"
            )
    else:
        # The node subnet must be free on the host.
        for route in json.loads(await run(["ip", "-j", "route", "show"]) or "[]"):
            dst = route.get("dst", "")
            if dst and dst != "default":
                with contextlib.suppress(ValueError):
                    if ipaddress.ip_network(dst, strict=False).overlaps(net):
                        raise LocalClusterError(
                            f"node subnet {net} overlaps host route {dst} "
                            f"(dev {route.get('dev')}); choose another subnet"
                        )
        state.bridge_created = True
        state.save(save_to)
        await run(["ip", "link", "add", state.bridge, "type", "bridge"])
    addrs = await run(["ip", "-j", "addr", "show", "dev", state.bridge])
    if gw.split("/")[0] not in addrs:
        await run(["ip", "addr", "add", gw, "dev", state.bridge])
    await run(["ip", "link", "set", state.bridge, "up"])


async def _ensure_forwarding_rule(state: State) -> None:
    """Let node-to-node traffic cross the bridge when the host drops forwarding.

    With br_netfilter, bridged frames pass the host's iptables FORWARD chain;
    hosts with Docker set its policy to DROP. Only then is a rule added.
    """
    rule = ["FORWARD", "-i", state.bridge, "-o", state.bridge, "-j", "ACCEPT"]
    if rule in state.iptables_rules or shutil.which("iptables") is None:
        return
    if not BR_NETFILTER.exists():  # noqa: ASYNC240  (procfs: never blocks)
        return
    listing = await run(["iptables", "-S", "FORWARD"], check=False)
    if "-P FORWARD DROP" not in listing:
        return
    state.iptables_rules.append(rule)
    await run(["iptables", "-I", *rule])


async def _ensure_netns(state: State, node: NodeState) -> None:
    net = ipaddress.ip_network(state.node_subnet)
    existing = (await run(["ip", "netns", "list"])).split()
    if node.netns not in existing:
        await run(["ip", "netns", "add", node.netns])
    if not await _link_exists("eth0", node.netns):
        peer = f"ph{state.cluster}p{node.index}"
        if await _link_exists(node.host_veth):
            await run(["ip", "link", "del", node.host_veth])
        await run(["ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", peer])
        await run(["ip", "link", "set", peer, "netns", node.netns])
        await run(["ip", "-n", node.netns, "link", "set", peer, "name", "eth0"])
        await run(
            ["ip", "-n", node.netns, "addr", "add", f"{node.ip}/{net.prefixlen}", "dev", "eth0"]
        )
    await run(["ip", "link", "set", node.host_veth, "master", state.bridge, "up"])
    await run(["ip", "-n", node.netns, "link", "set", "lo", "up"])
    await run(["ip", "-n", node.netns, "link", "set", "eth0", "up"])
    await run(
        ["ip", "-n", node.netns, "route", "replace", "default", "via", str(net.network_address + 1)]
    )
    await run(["ip", "netns", "exec", node.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])


async def _up_node(
    state: State,
    lay: Layout,
    node: NodeState,
    client_pub: str,
    images: Sequence[Path],
    progress: Progress,
) -> str:
    """Bring one node up; returns its host public key."""
    nl = lay.node(node.name)
    await _ensure_netns(state, node)
    progress(f"{node.name}: namespace {node.netns}, address {node.ip}, pods {node.pod_cidr}")

    host_pub = files.ensure_key(nl.host_key)
    files.write_private(nl.authorized_keys, client_pub + "\n")
    env = {
        "PILOTHOUSE_NODE_NAME": node.name,
        "PILOTHOUSE_CONTAINERD_SOCKET": str(nl.socket),
        "PILOTHOUSE_POD_CIDR": node.pod_cidr,
        "PILOTHOUSE_CGROUP_PARENT": node.cgroup_parent,
        "PILOTHOUSE_CNI_CONF_DIR": str(nl.cni_conf_dir),
        "PILOTHOUSE_AGENT_STATE_DIR": str(nl.dir / "agent"),
    }
    files.write_private(
        nl.sshd_config,
        files.sshd_config(
            listen=node.ip,
            port=22,
            host_key=nl.host_key,
            authorized_keys=nl.authorized_keys,
            pid_file=nl.sshd_pid,
            env=env,
        ),
    )
    await _start_sshd(node, nl)
    progress(f"{node.name}: sshd listening on {node.ip}:22")

    # The agent writes the CNI conflist for its pod CIDR (--cni-conf-dir), as on a real node.
    nl.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    files.write_private(
        nl.containerd_config,
        files.containerd_config(
            root=nl.containerd_root,
            state=nl.containerd_state,
            socket=nl.socket,
            runc_root=nl.runc_root,
            cni_conf_dir=nl.cni_conf_dir,
        ),
    )
    pid = read_pid(nl.containerd_pid)
    if pid is None or not alive(pid, str(nl.containerd_config)):
        argv = [
            *_in_netns(node.netns),
            "containerd",
            "--config",
            str(nl.containerd_config),
        ]
        start_daemon(argv, nl.containerd_log, nl.containerd_pid)
    version = await _wait_containerd(nl)
    progress(f"{node.name}: containerd {version} on {nl.socket}")

    if images:
        names = await import_images(nl.socket, images)
        progress(f"{node.name}: images imported ({len(images)} archives: {', '.join(names)})")
    return host_pub


async def _start_sshd(node: NodeState, nl: NodeLayout) -> None:
    pid = read_pid(nl.sshd_pid)
    if pid is None or not alive(pid, str(nl.sshd_config)):
        # Made by `up` when missing; made again if removed since (sshd refuses
        # to start without it).
        _ensure_dir(RUN_SSHD)
        argv = [*_in_netns(node.netns), "/usr/sbin/sshd", "-D", "-f", str(nl.sshd_config)]
        start_daemon(argv, nl.sshd_log, nl.sshd_pid)
    await _wait_ssh(node.ip, 22, nl.sshd_log)


def _node(data_dir: Path, name: str) -> tuple[NodeState, NodeLayout]:
    lay = Layout(_absolute(data_dir))
    state = State.load(lay.state)
    if state is None or name not in state.nodes:
        raise LocalClusterError(f"no node {name!r} in a local cluster in {lay.data_dir}")
    return state.nodes[name], lay.node(name)


async def stop_node_sshd(data_dir: Path, name: str) -> None:
    """Make a node unreachable, as a network failure would: stop its sshd and drop
    its SSH sessions. Its agent sees EOF and exits; its containers keep running."""
    node, nl = _node(data_dir, name)
    pid = read_pid(nl.sshd_pid)
    if pid is not None:
        await stop_pid(pid, str(nl.sshd_config))
    inode = netns_inode(node.netns)
    if inode is not None:
        sessions = [
            p for p in pids_in_netns(inode) if cmdline(p)[:1] and cmdline(p)[0].startswith("sshd")
        ]
        await kill_all(sessions)


async def start_node_sshd(data_dir: Path, name: str) -> None:
    """Start a node's sshd again (after `stop_node_sshd`)."""
    node, nl = _node(data_dir, name)
    await _start_sshd(node, nl)


def _in_netns(netns: str) -> list[str]:
    # Not `ip netns exec`: it remounts /sys in a private mount namespace, which
    # hides the cgroup mounts that runc needs.
    return ["nsenter", f"--net=/run/netns/{netns}", "--"]


async def _wait_ssh(host: str, port: int, log: Path, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2.0)
            banner = await asyncio.wait_for(reader.readline(), 2.0)
            writer.close()
            if banner.startswith(b"SSH-"):
                return
        except (OSError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise LocalClusterError(f"sshd on {host}:{port} did not come up; see {log}")
        await asyncio.sleep(0.05)


async def _wait_containerd(nl: NodeLayout, within: float = 30.0) -> str:
    deadline = time.monotonic() + within
    while True:
        if nl.socket.is_socket():
            cri = CriClient(str(nl.socket), timeout=2.0)
            try:
                v = await cri.version()
                return v.get("runtime_version", "?")
            except Exception:  # not ready yet: retry until the deadline
                pass
            finally:
                await cri.close()
        if time.monotonic() > deadline:
            raise LocalClusterError(
                f"containerd on {nl.socket} did not answer CRI; see {nl.containerd_log}"
            )
        await asyncio.sleep(0.1)


async def _ensure_routes(state: State, nodes: Sequence[NodeState]) -> None:
    """Each node's pod CIDR via its IP: on the host and in every other node."""
    for dst in nodes:
        for src in nodes:
            if src is not dst:
                await run(
                    [
                        "ip",
                        "-n",
                        src.netns,
                        "route",
                        "replace",
                        dst.pod_cidr,
                        "via",
                        dst.ip,
                        "dev",
                        "eth0",
                    ]
                )
        if dst.pod_cidr not in state.host_routes:
            current = await run(["ip", "-j", "route", "show", dst.pod_cidr])
            routes = json.loads(current or "[]")
            if routes and not any(r.get("gateway") == dst.ip for r in routes):
                raise LocalClusterError(
                    f"the host already routes {dst.pod_cidr} elsewhere ({routes[0]}); "
                    "choose another pod CIDR"
                )
            state.host_routes.append(dst.pod_cidr)
        await run(["ip", "route", "replace", dst.pod_cidr, "via", dst.ip, "dev", state.bridge])


def _write_config(
    lay: Layout,
    state: State,
    nodes: Sequence[NodeState],
    agent_command: Sequence[str],
    api_listen: str | None,
    node_grace_period: float,
) -> bool:
    """Write the control plane's config; returns True when it changed."""
    lines = [
        f"{CONFIG_MARKER} for local cluster {state.cluster!r}; `pilothouse down` removes it.",
        "",
    ]
    if api_listen is not None:
        lines += ["[api]", f"listen = {files.toml_str(api_listen)}", ""]
    lines += [
        "[ssh]",
        'user = "root"',
        f"identity_files = {files.toml_list([str(lay.client_key)])}",
        f"known_hosts = {files.toml_str(str(lay.known_hosts))}",
        "use_agent = false",
        f"agent_command = {files.toml_list(agent_command)}",
        "",
        "[network]",
        f"pod_cidr = {files.toml_str(state.pod_cidr)}",
        f"node_cidr_mask = {state.node_cidr_mask}",
        "",
        "[controllers]",
        f'node_monitor_grace_period = "{node_grace_period:g}s"',
        "",
    ]
    for n in nodes:
        lines += [
            "[[nodes]]",
            f"name = {files.toml_str(n.name)}",
            f"host = {files.toml_str(n.ip)}",
            "port = 22",
            'user = "root"',
            f'labels = {{ "pilothouse.io/local-cluster" = {files.toml_str(state.cluster)} }}',
            "",
        ]
    text = "\n".join(lines)
    try:
        if lay.config.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    files.write_private(lay.config, text)
    return True


async def _socket_answers(path: Path) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 2.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _ensure_serve(
    lay: Layout, argv: Sequence[str], *, restart: bool, progress: Progress
) -> int:
    marker = str(lay.data_dir)
    pid = read_pid(lay.serve_pid)
    if pid is not None and alive(pid, marker):
        if not restart and await _socket_answers(lay.api_socket):
            return pid
        await stop_pid(pid, marker)
    elif await _socket_answers(lay.api_socket):
        raise LocalClusterError(
            f"another control plane already serves {lay.api_socket}; stop it, then run `up` again"
        )
    for warning in await register_nodes(load_config(lay.config, data_dir=lay.data_dir)):
        progress(f"warning: {warning}")
    pid = start_daemon(argv, lay.serve_log, lay.serve_pid)
    deadline = time.monotonic() + 30.0
    while not await _socket_answers(lay.api_socket):
        # Not alive(pid, marker): a child that is still in execve has an empty
        # command line for a moment (the kernel sets it after closing the
        # close-on-exec fds that Popen waits for). Until this process reaps it,
        # the pid is its own and cannot be reused, so exiting is all to check.
        if is_zombie(pid):
            how = exit_status(pid) or "no exit status"
            raise LocalClusterError(f"the control plane exited ({how}); see {lay.serve_log}")
        if time.monotonic() > deadline:
            raise LocalClusterError(f"the control plane did not start; see {lay.serve_log}")
        await asyncio.sleep(0.1)
    return pid


# --- down ----------------------------------------------------------------------


async def down(data_dir: Path, *, progress: Progress = _quiet) -> bool:
    """Remove every trace of the local cluster in `data_dir`. False if there was none."""
    lay = Layout(_absolute(data_dir))
    if not lay.state.exists():
        return False
    with _locked(lay):
        return await _down(data_dir, progress=progress)


async def _down(data_dir: Path, *, progress: Progress) -> bool:
    data_dir = _absolute(data_dir)
    lay = Layout(data_dir)
    state = State.load(lay.state)
    if state is None:
        return False
    pid = read_pid(lay.serve_pid)
    if pid is not None and await stop_pid(pid, str(lay.data_dir)):
        progress(f"control plane: stopped (pid {pid})")
    results = await asyncio.gather(
        *(_down_node(state, lay, n, progress) for n in state.nodes.values()),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    for dst in state.host_routes:
        with contextlib.suppress(CommandError):
            await run(["ip", "route", "del", dst, "dev", state.bridge])
    for rule in state.iptables_rules:
        await run(["iptables", "-D", *rule], check=False)
    if state.bridge_created and await _link_exists(state.bridge):
        await run(["ip", "link", "del", state.bridge])
        progress(f"bridge {state.bridge}: removed")
    # /run/sshd is shared: every sshd on the machine needs it for each new
    # connection (privilege separation), other local clusters' included.
    if state.made_run_sshd and not processes_named("sshd"):
        _rmdir(RUN_SSHD)
    if errors:
        state.save(lay.state)
        raise LocalClusterError("; ".join(str(e) for e in errors))
    keep = set(state.preexisting)
    for entry in data_dir.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return True


async def _down_node(state: State, lay: Layout, node: NodeState, progress: Progress) -> None:
    nl = lay.node(node.name)
    cni_netns: list[str] = []
    pid = read_pid(nl.containerd_pid)
    if pid is not None and alive(pid, str(nl.containerd_config)):
        cni_netns = await _remove_sandboxes(nl, node, progress)
        await stop_pid(pid, str(nl.containerd_config))
    # Containers CRI could not remove: runc knows them by this node's root.
    if nl.runc_root.is_dir():
        for ns_dir in nl.runc_root.iterdir():
            out = await run(["runc", "--root", str(ns_dir), "list", "-q"], check=False)
            for cid in out.split():
                await run(["runc", "--root", str(ns_dir), "delete", "--force", cid], check=False)
    pid = read_pid(nl.sshd_pid)
    if pid is not None:
        await stop_pid(pid, str(nl.sshd_config))
    # Whatever still runs in the node's namespace was started there by this cluster:
    # sshd sessions, agents, containerd shims.
    inode = netns_inode(node.netns)
    if inode is not None:
        await kill_all(pids_in_netns(inode))
    names = set((await run(["ip", "netns", "list"])).split())
    for path in cni_netns:
        name = Path(path).name
        if name in names:
            await run(["ip", "netns", "delete", name], check=False)
    await _unmount_under(nl.dir)
    if node.netns in names:
        await run(["ip", "netns", "delete", node.netns])
    # Usually gone with the namespace already (asynchronously: do not insist).
    await run(["ip", "link", "del", node.host_veth], check=False)
    # A cgroup stays busy for a moment after its last task exits.
    for _ in range(50):
        if not _remove_cgroups(node.cgroup_parent):
            break
        await asyncio.sleep(0.1)
    else:
        progress(f"{node.name}: warning: cgroup {node.cgroup_parent} still busy; left in place")
    if nl.dir.exists():
        shutil.rmtree(nl.dir)
    progress(f"{node.name}: removed")


async def _remove_sandboxes(nl: NodeLayout, node: NodeState, progress: Progress) -> list[str]:
    """Stop and remove every pod sandbox; returns their network namespace paths."""
    cri = CriClient(str(nl.socket))
    paths: list[str] = []
    try:
        ids = await cri.list_sandboxes()
        for sid in ids:
            with contextlib.suppress(Exception):
                p = await cri.sandbox_netns(sid)
                if p:
                    paths.append(p)
            await cri.stop_sandbox(sid)
            await cri.remove_sandbox(sid)
        if ids:
            progress(f"{node.name}: removed {len(ids)} pod sandboxes")
    except Exception as e:
        progress(f"{node.name}: warning: CRI cleanup failed ({e}); using runc")
    finally:
        await cri.close()
    return paths


async def _unmount_under(root: Path) -> None:
    for point in sorted(mounts_under(root), key=len, reverse=True):
        try:
            await run(["umount", point])
        except CommandError:
            await run(["umount", "-l", point], check=False)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root` in this mount namespace."""
    prefix = str(root) + "/"
    points: list[str] = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix) or point == str(root):
                points.append(point)
    return points


def _remove_cgroups(parent: str) -> list[Path]:
    """Remove the node's cgroup tree in every hierarchy; returns what is left."""
    base = Path("/sys/fs/cgroup")
    rel = parent.strip("/")
    left: list[Path] = []
    if not rel or not base.is_dir():
        return left
    for top in [base, *[p for p in base.iterdir() if p.is_dir()]]:
        d = top / rel
        if not d.is_dir():
            continue
        dirs = sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: len(p.parts))
        for sub in [*reversed(dirs), d]:
            try:
                sub.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                left.append(sub)
    return left


def read_state(data_dir: Path) -> State | None:
    return State.load(Layout(data_dir.expanduser().absolute()).state)
