"""Removing one node and everything that ran on it: pod sandboxes, containers,
processes in its namespace, mounts, cgroups, the namespace and its files."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

from control.localcluster.daemons import containerd_running, stop_containerd, stop_sshd
from control.localcluster.layout import NodeLayout
from control.localcluster.network import netns_names, remove_node_services
from control.localcluster.plan import NodeState
from control.localcluster.proc import (
    CommandError,
    Progress,
    kill_all,
    netns_inode,
    pids_in_netns,
    run,
)
from control.nodes.cri import CriClient


async def down_node(node: NodeState, nl: NodeLayout, progress: Progress) -> None:
    cni_netns: list[str] = []
    if containerd_running(nl):
        cni_netns = await _remove_sandboxes(nl, node, progress)
        await stop_containerd(nl)
    # Containers CRI could not remove: runc knows them by this node's root.
    if nl.runc_root.is_dir():
        for ns_dir in nl.runc_root.iterdir():
            out = await run(["runc", "--root", str(ns_dir), "list", "-q"], check=False)
            for cid in out.split():
                await run(["runc", "--root", str(ns_dir), "delete", "--force", cid], check=False)
    await stop_sshd(node, nl)
    # Whatever still runs in the node's namespace was started there by this cluster:
    # sshd sessions, agents, containerd shims.
    inode = netns_inode(node.netns)
    if inode is not None:
        await kill_all(pids_in_netns(inode))
    names = await netns_names()
    for path in cni_netns:
        name = Path(path).name
        if name in names:
            await run(["ip", "netns", "delete", name], check=False)
    await _unmount_under(nl.dir)
    if node.netns in names:
        await remove_node_services(node)
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


def _remove_sandboxes_now(socket: Path, netns_paths: list[str]) -> int:
    """Stop and remove every pod sandbox (blocking); adds their network namespace
    paths to `netns_paths` as it goes, and returns how many there were."""
    with CriClient(str(socket)) as cri:
        ids = cri.list_sandboxes()
        for sid in ids:
            with contextlib.suppress(Exception):
                p = cri.sandbox_netns(sid)
                if p:
                    netns_paths.append(p)
            cri.stop_sandbox(sid)
            cri.remove_sandbox(sid)
    return len(ids)


async def _remove_sandboxes(nl: NodeLayout, node: NodeState, progress: Progress) -> list[str]:
    """Stop and remove every pod sandbox; returns their network namespace paths."""
    paths: list[str] = []
    try:
        removed = await asyncio.to_thread(_remove_sandboxes_now, nl.socket, paths)
    except Exception as e:
        progress(f"{node.name}: warning: CRI cleanup failed ({e}); using runc")
    else:
        if removed:
            progress(f"{node.name}: removed {removed} pod sandboxes")
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
