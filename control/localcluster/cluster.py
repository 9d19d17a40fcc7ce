"""`pilothouse up` and `pilothouse down`: a real multi-node cluster on one machine.

Each node is a network namespace `ph-<cluster>-node<N>` on a host bridge, with
its own sshd and containerd (see `plan` for every name and address). Everything
made is recorded in a state file, and `down` removes exactly that: it never
touches namespaces, links or processes that it did not create.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from control.config import LeaderElectionConfig
from control.localcluster import files, network
from control.localcluster.apiproxy import haproxy_binary
from control.localcluster.clusterconfig import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_NODE_GRACE_PERIOD,
    check_config,
    check_config_is_ours,
    default_agent_command,
    host_service_proxy,
    render_config,
    write_config,
)
from control.localcluster.controlplanes import (
    ensure_control_planes,
    member_configs,
    stop_control_planes,
)
from control.localcluster.daemons import (
    RUN_SSHD,
    ensure_dir,
    start_containerd,
    start_node_sshd,
    start_sshd,
    stop_node_sshd,
    write_sshd_files,
)
from control.localcluster.etcd import require_etcd
from control.localcluster.images import build_images, import_images
from control.localcluster.layout import CLUSTER_DIR, STORE_FILE, STORE_SUFFIXES, Layout
from control.localcluster.plan import (
    DEFAULT_NODE_CIDR_MASK,
    DEFAULT_NODE_SUBNET,
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    SSH_PORT,
    HaPlan,
    NodeState,
    Plan,
    make_ha_plan,
    make_plan,
)
from control.localcluster.proc import (
    LocalClusterError,
    Progress,
    processes_named,
    read_pid,
    stop_pid,
)
from control.localcluster.serve import ensure_serving
from control.localcluster.state import State, read_state
from control.localcluster.teardown import down_node
from control.nodes.cri import CNI_BIN_DIR

# The API of `up` and `down`, for the CLI and the benchmarks.
__all__ = [
    "Layout",
    "NodeState",
    "UpResult",
    "down",
    "read_state",
    "start_node_sshd",
    "stop_node_sshd",
    "up",
]

NODE_TOOLS = ("ip", "nsenter", "sshd", "containerd", "ctr", "runc", "sysctl")


@dataclass(frozen=True)
class UpResult:
    config_path: Path
    known_hosts: Path
    nodes: tuple[NodeState, ...]
    seconds: float
    serve_pid: int | None
    # Several control planes: their pids, and HAProxy's URL in front of them.
    control_plane_pids: tuple[int, ...] = ()
    api_url: str | None = None


def _quiet(_: str) -> None:
    pass


# --- up ------------------------------------------------------------------------


async def up(
    nodes: int,
    data_dir: Path,
    *,
    cluster: str = "local",
    node_subnet: str = DEFAULT_NODE_SUBNET,
    pod_cidr: str = DEFAULT_POD_CIDR,
    node_cidr_mask: int = DEFAULT_NODE_CIDR_MASK,
    service_cidr: str = DEFAULT_SERVICE_CIDR,
    images: Sequence[Path] | None = None,
    agent_command: Sequence[str] | None = None,
    serve_command: Sequence[str] | None = None,
    api_listen: str | None = None,
    node_grace_period: float = DEFAULT_NODE_GRACE_PERIOD,
    backoff_base: float = DEFAULT_BACKOFF_BASE,
    store_dir: Path | None = None,
    control_planes: int | None = None,
    leader_election: LeaderElectionConfig | None = None,
    progress: Progress = _quiet,
) -> UpResult:
    """Bring up (or complete, or resize) the local cluster in `data_dir`. Idempotent.

    `images` are OCI archives to import into every node; None builds the pause
    and busybox images with `python3 -m agent.images`. With `serve_command`,
    the control plane is started (or reused), the Nodes registered through its
    API with the pod CIDRs the network was built for. `agent_command` defaults
    to the local launcher, which passes each node's settings to `python3 -m
    agent`, together with `agent_flags(...)`. A data dir keeps the network
    ranges of its first `up`. The control plane also runs a service proxy on
    the host (`host_service_proxy`), so that the host reaches ClusterIPs.

    `node_grace_period` is the control plane's node_monitor_grace_period: how
    long a silent node stays Ready. `backoff_base` is the agents' first
    CrashLoopBackOff (and image pull back-off) delay, doubling to 5 minutes.
    `store_dir` puts the control plane's store in an existing directory of its
    own (a filesystem of its own, say) instead of the data dir; a data dir
    keeps the store dir of its first `up`, and `down` removes the store files.

    `control_planes` > 1 (None: as before, 1 at first) runs that many control
    planes on an etcd cluster of as many members, with leader election (its
    timings from `leader_election`), behind HAProxy on `api_listen` (see
    `controlplanes`); each runs `serve_command` with a `--data-dir` of its own.
    A data dir keeps the control planes and the API address of its first `up`.
    """
    lay = Layout.of(data_dir)
    data_dir = lay.data_dir
    with _locked(lay):
        t0 = time.monotonic()
        if node_grace_period <= 0 or backoff_base <= 0:
            raise LocalClusterError("the node grace period and back-off must be positive")
        if agent_command is None:
            agent_command = default_agent_command(node_grace_period, backoff_base)
        if os.geteuid() != 0:
            raise LocalClusterError("`pilothouse up` needs root (network namespaces, containerd)")
        state = State.load(lay.state)
        if state is None:
            plan = make_plan(
                cluster,
                nodes,
                node_subnet=node_subnet,
                pod_cidr=pod_cidr,
                node_cidr_mask=node_cidr_mask,
                service_cidr=service_cidr,
            )
        else:
            plan = make_plan(
                cluster,
                nodes,
                node_subnet=state.node_subnet,
                pod_cidr=state.pod_cidr,
                node_cidr_mask=state.node_cidr_mask,
                service_cidr=state.service_cidr,
            )
            if state.cluster != cluster:
                raise LocalClusterError(
                    f"{data_dir} already holds local cluster {state.cluster!r}; "
                    "run `pilothouse down` first or use another --data-dir"
                )
        _check_tools()
        check_config_is_ours(lay.config)
        wanted_store = _store_dir(store_dir)
        ha = _ha_plan(state, cluster, control_planes, api_listen)
        if ha is not None and store_dir is not None:
            raise LocalClusterError("--store-dir: several control planes keep their store in etcd")
        if ha is not None:  # the tools, before anything is made
            require_etcd()
            haproxy_binary()

        if state is None:
            data_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(data_dir, 0o700)
            preexisting = sorted(p.name for p in data_dir.iterdir() if p.name != CLUSTER_DIR)
            state = State.new(plan, preexisting)
            state.store_dir = wanted_store
            if ha is not None:
                state.control_planes = len(ha.members)
                state.api_listen = f"{ha.host}:{ha.port}"
        elif store_dir is not None and wanted_store != state.store_dir:
            raise LocalClusterError(
                f"{data_dir} keeps its store in {state.store_dir or data_dir}; "
                "run `pilothouse down` first to move it"
            )
        lay.root.mkdir(parents=True, exist_ok=True)
        state.save(lay.state)

        # Shrinking: tear down nodes beyond the new count first.
        wanted = {n.name for n in plan.nodes}
        for name in sorted(set(state.nodes) - wanted):
            progress(f"{name}: removing (cluster shrinks to {nodes} nodes)")
            gone = state.nodes.pop(name)
            await down_node(gone, lay.node(gone.name), progress)
            await network.remove_routes_to(state, gone)
            state.save(lay.state)

        await network.ensure_bridge(plan, state, lay.state)
        await network.ensure_br_netfilter(progress)
        await network.ensure_forwarding_rule(state)
        await network.ensure_service_route(state, lay.state)
        state.save(lay.state)
        if ensure_dir(RUN_SSHD):
            state.made_run_sshd = True
        client_pub = files.ensure_key(lay.client_key)

        existing = await network.netns_names()
        for node in plan.nodes:
            if node.name not in state.nodes:
                await network.check_names_free(plan, node, existing)
                state.nodes[node.name] = node
        state.save(lay.state)

        node_list = [state.nodes[n.name] for n in plan.nodes]
        if images is None:
            images = await build_images(lay.images)
            progress(f"images: built {', '.join(p.name for p in images)}")
        host_keys = await asyncio.gather(
            *(_up_node(plan, lay, n, client_pub, images, progress) for n in node_list)
        )
        await network.ensure_routes(state, node_list)
        state.save(lay.state)

        known = "".join(
            files.known_hosts_line(n.ip, SSH_PORT, key) + "\n"
            for n, key in zip(node_list, host_keys, strict=True)
        )
        files.write_private(lay.known_hosts, known, 0o644)

        def config(nodes: Sequence[NodeState]) -> str:
            return render_config(
                lay,
                plan,
                nodes,
                agent_command,
                api_listen,
                node_grace_period,
                service_proxies=[host_service_proxy()],
                store_path=Path(state.store_dir) / STORE_FILE if state.store_dir else None,
            )

        serve_pid = None
        if ha is not None:
            configs = member_configs(
                lay, plan, ha, node_list, agent_command, node_grace_period, leader_election
            )
            for m in ha.members:
                check_config(configs[m.name], lay.control_plane(m.name).config)
            if serve_command is None:
                for m in ha.members:
                    write_config(lay.control_plane(m.name).config, configs[m.name])
                return UpResult(
                    lay.config, lay.known_hosts, tuple(node_list), time.monotonic() - t0, None
                )
            pids = await ensure_control_planes(lay, ha, cluster, configs, serve_command, progress)
            return UpResult(
                lay.kubeconfig,
                lay.known_hosts,
                tuple(node_list),
                time.monotonic() - t0,
                None,
                control_plane_pids=pids,
                api_url=ha.api_url,
            )
        if serve_command is None:
            write_config(lay.config, config(node_list))
        else:
            serve_pid = await ensure_serving(lay, serve_command, config=config(node_list))
            progress(f"control plane: serving on unix:{lay.api_socket} (pid {serve_pid})")
        return UpResult(
            lay.config, lay.known_hosts, tuple(node_list), time.monotonic() - t0, serve_pid
        )


async def _up_node(
    plan: Plan,
    lay: Layout,
    node: NodeState,
    client_pub: str,
    images: Sequence[Path],
    progress: Progress,
) -> str:
    """Bring one node up; returns its host public key."""
    nl = lay.node(node.name)
    await network.ensure_netns(plan, node)
    progress(f"{node.name}: namespace {node.netns}, address {node.ip}, pods {node.pod_cidr}")

    host_pub = write_sshd_files(node, nl, client_pub)
    await start_sshd(node, nl)
    progress(f"{node.name}: sshd listening on {node.ip}:{SSH_PORT}")

    version = await start_containerd(node, nl)
    progress(f"{node.name}: containerd {version} on {nl.socket}")

    if images:
        names = await import_images(nl.socket, images)
        progress(f"{node.name}: images imported ({len(images)} archives: {', '.join(names)})")
    return host_pub


def _ha_plan(
    state: State | None, cluster: str, control_planes: int | None, api_listen: str | None
) -> HaPlan | None:
    """The control planes of a new cluster, or of the data dir's, which must
    not change (its store and its API address stay)."""
    if state is None:
        return make_ha_plan(cluster, control_planes or 1, api_listen)
    if control_planes is not None and control_planes != state.control_planes:
        raise LocalClusterError(
            f"the cluster has {state.control_planes} control planes; "
            "run `pilothouse down` first to change that"
        )
    if state.control_planes > 1 and api_listen is not None and api_listen != state.api_listen:
        raise LocalClusterError(
            f"the cluster's API is at {state.api_listen}; run `pilothouse down` first to move it"
        )
    return make_ha_plan(cluster, state.control_planes, state.api_listen or None)


def _store_dir(store_dir: Path | None) -> str:
    """The store dir as the state file records it ("": the data dir)."""
    if store_dir is None:
        return ""
    d = store_dir.expanduser().absolute()
    if not d.is_dir():
        raise LocalClusterError(f"--store-dir: {d} is not a directory")
    return str(d)


def _remove_store(store_dir: str) -> None:
    """The store files in a store dir of its own (the data dir goes as a whole)."""
    if store_dir:
        for suffix in STORE_SUFFIXES:
            Path(store_dir, STORE_FILE + suffix).unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(lay: Layout) -> Iterator[None]:
    """One `up` or `down` at a time per data dir."""
    lay.root.mkdir(parents=True, exist_ok=True)
    with open(lay.lock, "w") as f:
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
        for t in NODE_TOOLS
        if shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None
    ]
    if not Path(CNI_BIN_DIR, "bridge").exists():
        missing.append("CNI plugins")
    if missing:
        raise LocalClusterError(
            f"missing: {', '.join(missing)}; install them with: apt-get install "
            "openssh-server containerd runc containernetworking-plugins iproute2 procps util-linux"
        )


# --- down ----------------------------------------------------------------------


async def down(data_dir: Path, *, progress: Progress = _quiet) -> bool:
    """Remove every trace of the local cluster in `data_dir`. False if there was none."""
    lay = Layout.of(data_dir)
    if not lay.state.exists():
        return False
    with _locked(lay):
        return await _down(lay, progress=progress)


async def _down(lay: Layout, *, progress: Progress) -> bool:
    state = State.load(lay.state)
    if state is None:
        return False
    ha = make_ha_plan(state.cluster, state.control_planes, state.api_listen or None)
    if ha is not None:
        await stop_control_planes(lay, ha, progress)
    pid = read_pid(lay.serve_pid)
    if pid is not None and await stop_pid(pid, str(lay.data_dir)):
        progress(f"control plane: stopped (pid {pid})")
    results = await asyncio.gather(
        *(down_node(n, lay.node(n.name), progress) for n in state.nodes.values()),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    try:
        await network.remove_host_services(state)
    except LocalClusterError as e:
        errors.append(e)
    if await network.remove_host_network(state):
        progress(f"bridge {state.bridge}: removed")
    # /run/sshd is shared: every sshd on the machine needs it for each new
    # connection (privilege separation), other local clusters' included.
    if state.made_run_sshd and not processes_named("sshd"):
        with contextlib.suppress(OSError):
            RUN_SSHD.rmdir()
    if errors:
        state.save(lay.state)
        raise LocalClusterError("; ".join(str(e) for e in errors))
    _remove_store(state.store_dir)
    keep = set(state.preexisting)
    for entry in lay.data_dir.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return True
