"""Each node's daemons, sshd and containerd, run in the node's namespace:
their configs, starting them (or finding them running) and waiting until they
answer; and stopping a node's sshd to simulate a network failure."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

from control.localcluster import files
from control.localcluster.layout import Layout, NodeLayout
from control.localcluster.plan import SSH_PORT, NodeState
from control.localcluster.proc import (
    LocalClusterError,
    alive,
    cmdline,
    kill_all,
    netns_inode,
    pids_in_netns,
    read_pid,
    start_daemon,
    stop_pid,
)
from control.localcluster.state import State
from control.nodes.cri import CriClient

RUN_SSHD = Path("/run/sshd")  # sshd's privilege separation directory


def ensure_dir(p: Path) -> bool:
    """Create `p` if missing; True when this call made it."""
    if p.is_dir():
        return False
    p.mkdir(mode=0o755)
    return True


def in_netns(netns: str) -> list[str]:
    # Not `ip netns exec`: it remounts /sys in a private mount namespace, which
    # hides the cgroup mounts that runc needs.
    return ["nsenter", f"--net=/run/netns/{netns}", "--"]


CODE_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds control/ and agent/


def agent_env(node: NodeState, nl: NodeLayout) -> dict[str, str]:
    """The node's settings, set by its sshd for the agent launcher; and the
    PYTHONPATH `up` runs with, so that the agents import the same code as the
    control plane (a source tree other than the installed one)."""
    env = {
        "PILOTHOUSE_NODE_NAME": node.name,
        "PILOTHOUSE_CONTAINERD_SOCKET": str(nl.socket),
        "PILOTHOUSE_POD_CIDR": node.pod_cidr,
        "PILOTHOUSE_CGROUP_PARENT": node.cgroup_parent,
        "PILOTHOUSE_CNI_CONF_DIR": str(nl.cni_conf_dir),
        "PILOTHOUSE_AGENT_STATE_DIR": str(nl.agent_state),
        # The agents run the code this control plane runs (a worktree's, not an install's).
        "PYTHONPATH": str(CODE_ROOT),
    }
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


# --- sshd ----------------------------------------------------------------------


def write_sshd_files(node: NodeState, nl: NodeLayout, client_pub: str) -> str:
    """The node's host key, authorized_keys and sshd_config; returns its public host key."""
    host_pub = files.ensure_key(nl.host_key)
    files.write_private(nl.authorized_keys, client_pub + "\n")
    files.write_private(
        nl.sshd_config,
        files.sshd_config(
            listen=node.ip,
            port=SSH_PORT,
            host_key=nl.host_key,
            authorized_keys=nl.authorized_keys,
            pid_file=nl.sshd_pid,
            env=agent_env(node, nl),
        ),
    )
    return host_pub


async def start_sshd(node: NodeState, nl: NodeLayout) -> None:
    pid = read_pid(nl.sshd_pid)
    if pid is None or not alive(pid, str(nl.sshd_config)):
        # Made by `up` when missing; made again if removed since (sshd refuses
        # to start without it).
        ensure_dir(RUN_SSHD)
        argv = [*in_netns(node.netns), "/usr/sbin/sshd", "-D", "-f", str(nl.sshd_config)]
        start_daemon(argv, nl.sshd_log, nl.sshd_pid)
    await _wait_ssh(node.ip, SSH_PORT, nl.sshd_log)


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


async def stop_sshd(node: NodeState, nl: NodeLayout) -> None:
    pid = read_pid(nl.sshd_pid)
    if pid is not None:
        await stop_pid(pid, str(nl.sshd_config))


def _node(data_dir: Path, name: str) -> tuple[NodeState, NodeLayout]:
    lay = Layout.of(data_dir)
    state = State.load(lay.state)
    if state is None or name not in state.nodes:
        raise LocalClusterError(f"no node {name!r} in a local cluster in {lay.data_dir}")
    return state.nodes[name], lay.node(name)


async def stop_node_sshd(data_dir: Path, name: str) -> None:
    """Make a node unreachable, as a network failure would: stop its sshd and drop
    its SSH sessions. Its agent sees EOF and exits; its containers keep running."""
    node, nl = _node(data_dir, name)
    await stop_sshd(node, nl)
    inode = netns_inode(node.netns)
    if inode is not None:
        sessions = [
            p for p in pids_in_netns(inode) if cmdline(p)[:1] and cmdline(p)[0].startswith("sshd")
        ]
        await kill_all(sessions)


async def start_node_sshd(data_dir: Path, name: str) -> None:
    """Start a node's sshd again (after `stop_node_sshd`)."""
    node, nl = _node(data_dir, name)
    await start_sshd(node, nl)


# --- containerd ----------------------------------------------------------------


async def start_containerd(node: NodeState, nl: NodeLayout) -> str:
    """Write the node's containerd config, start it unless it runs, and wait
    until it answers CRI; returns its version."""
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
        argv = [*in_netns(node.netns), "containerd", "--config", str(nl.containerd_config)]
        start_daemon(argv, nl.containerd_log, nl.containerd_pid)
    return await _wait_containerd(nl)


def _cri_version(socket: Path) -> str:
    with CriClient(str(socket), timeout=2.0) as cri:
        return cri.version().get("runtime_version", "?")


async def _wait_containerd(nl: NodeLayout, within: float = 30.0) -> str:
    deadline = time.monotonic() + within
    while True:
        if nl.socket.is_socket():
            # Not ready yet: retry until the deadline.
            with contextlib.suppress(Exception):
                return await asyncio.to_thread(_cri_version, nl.socket)
        if time.monotonic() > deadline:
            raise LocalClusterError(
                f"containerd on {nl.socket} did not answer CRI; see {nl.containerd_log}"
            )
        await asyncio.sleep(0.1)


async def stop_containerd(nl: NodeLayout) -> None:
    pid = read_pid(nl.containerd_pid)
    if pid is not None and alive(pid, str(nl.containerd_config)):
        await stop_pid(pid, str(nl.containerd_config))


def containerd_running(nl: NodeLayout) -> bool:
    pid = read_pid(nl.containerd_pid)
    return pid is not None and alive(pid, str(nl.containerd_config))
