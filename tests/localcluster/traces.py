"""What a local test cluster leaves on the machine, for tests that check that
`down` removed it all: namespaces, links, routes, firewall rules, mounts,
processes, cgroups and files, and what the agents made for Services (service
rules, the cluster DNS interface, conntrack flows). Each check looks only at
this cluster's names and ranges, because other tests may make their own
meanwhile."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from control.localcluster.layout import Layout
from control.localcluster.plan import make_ha_plan
from control.localcluster.proc import is_zombie, netns_inode, pids_in_netns, read_pid
from control.localcluster.state import State, read_state
from control.localcluster.teardown import mounts_under
from control.nodes.cri import CriClient
from tests.localcluster.names import ClusterNames


def _run(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=30).stdout


def netns_names() -> set[str]:
    return {line.split()[0] for line in _run("ip", "netns", "list").splitlines() if line.strip()}


def link_names() -> set[str]:
    return {link["ifname"] for link in json.loads(_run("ip", "-j", "link", "show"))}


def route_destinations() -> set[str]:
    return {r.get("dst", "") for r in json.loads(_run("ip", "-j", "route", "show"))}


SERVICE_TABLE = "table ip pilothouse"


def nft_tables() -> set[str]:
    """The host's nftables tables, as `table FAMILY NAME`."""
    if not shutil.which("nft"):
        return set()
    return {line.strip() for line in _run("nft", "list", "tables").splitlines() if line.strip()}


@dataclass
class Snapshot:
    netns: set[str]
    links: set[str]
    routes: set[str]
    nft_tables: set[str]

    @staticmethod
    def take() -> Snapshot:
        return Snapshot(netns_names(), link_names(), route_destinations(), nft_tables())


def runc_ids(lay: Layout, node: str) -> list[str]:
    root = lay.node(node).runc_root / "k8s.io"
    return _run("runc", "--root", str(root), "list", "-q").split()


async def running(data_dir: Path) -> tuple[set[int], set[str]]:
    """What the cluster runs now: the pids of its processes (control plane and
    its children, sshd, containerd, and all in its nodes' namespaces: SSH
    sessions, agents, shims), and its pods' network namespaces, which only
    containerd knows."""
    lay = Layout(data_dir)
    state = read_state(data_dir)
    assert state is not None
    pids: set[int] = set()
    pod_netns: set[str] = set()
    for n in state.nodes.values():
        for pid_file in (lay.node(n.name).sshd_pid, lay.node(n.name).containerd_pid):
            pid = read_pid(pid_file)
            assert pid is not None, pid_file
            pids.add(pid)
        inode = netns_inode(n.netns)
        assert inode is not None, n.netns
        pids |= set(pids_in_netns(inode))
        with CriClient(str(lay.node(n.name).socket)) as cri:
            for sid in cri.list_sandboxes():
                path = cri.sandbox_netns(sid)
                if path:  # a stopped sandbox may have none left
                    pod_netns.add(Path(path).name)
    pids |= control_plane_pids(lay, state)
    return pids, pod_netns


def control_plane_pids(lay: Layout, state: State) -> set[int]:
    """The live processes of the control plane: `serve` and its children, such
    as the host's service proxy; with several, each `serve` and its children,
    the etcd members and HAProxy."""
    ha = make_ha_plan(state.cluster, state.control_planes, state.api_listen or None)
    serve_files = (
        [lay.serve_pid] if ha is None else [lay.control_plane(m.name).serve_pid for m in ha.members]
    )
    serves = {pid for f in serve_files if (pid := read_pid(f)) is not None and not is_zombie(pid)}
    assert serves, serve_files
    pids = set(serves)
    for serve in serves:
        pids |= set(children(serve))
    if ha is not None:
        files = [lay.haproxy_pid, *(lay.etcd_member(m.name).pid for m in ha.members)]
        for f in files:
            pid = read_pid(f)
            assert pid is not None, f
            pids.add(pid)
    return pids


def children(parent: int) -> list[int]:
    """The live processes whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def _our_route(route: str, names: ClusterNames) -> bool:
    if route in ("", "default"):
        return False
    net = ipaddress.ip_network(route, strict=False)
    return any(
        net.overlaps(ipaddress.ip_network(r))
        for r in (names.node_subnet, names.pod_cidr, names.service_cidr)
    )


_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")


def _in_service_cidr(line: str, names: ClusterNames) -> bool:
    """The line names a ClusterIP of this cluster (service rules list each one)."""
    cidr = ipaddress.ip_network(names.service_cidr)
    for word in _IPV4.findall(line):
        try:
            if ipaddress.ip_address(word) in cidr:
                return True
        except ValueError:
            continue
    return False


def _firewall_rules(names: ClusterNames) -> list[str]:
    """iptables and nftables rules that name this cluster's bridge, links or
    ranges, or one of its ClusterIPs (the host service proxy's rules)."""
    marks = (f"phbr-{names.cluster}", f"ph{names.cluster}n", names.node_subnet, names.pod_cidr)
    text = ""
    if shutil.which("iptables"):
        text += _run("iptables-save")
    if shutil.which("nft"):
        text += _run("nft", "list", "ruleset")
    return [
        line
        for line in text.splitlines()
        if any(m in line for m in marks) or _in_service_cidr(line, names)
    ]


def service_flows(names: ClusterNames) -> list[str]:
    """The host's conntrack entries to this cluster's service CIDR."""
    if not shutil.which("conntrack"):
        return []
    out = subprocess.run(
        ["conntrack", "-L", "--orig-dst", names.service_cidr],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return [line for line in out.stdout.splitlines() if line.strip()]


def leftovers(
    names: ClusterNames,
    data_dir: Path,
    before: Snapshot,
    *,
    pids: set[int],
    pod_netns: set[str],
) -> dict[str, object]:
    """Everything of this cluster still on the machine; {} when `down` left nothing.
    `pids` are the processes the cluster ran, `pod_netns` its pods' namespaces."""
    after = Snapshot.take()
    prefix = f"ph-{names.cluster}-"
    found: dict[str, object] = {
        "netns": sorted(
            n for n in after.netns if n.startswith(prefix) or n in pod_netns - before.netns
        ),
        "links": sorted(
            link
            for link in after.links
            if link.startswith((f"phbr-{names.cluster}", f"ph{names.cluster}n"))
        ),
        "routes": sorted(r for r in after.routes if _our_route(r, names)),
        "service_routes": _run("ip", "route", "show", "table", "all", names.service_cidr).split(),
        "firewall": _firewall_rules(names),
        "ip_rules": [
            line
            for line in _run("ip", "rule", "show").splitlines()
            if _in_service_cidr(line, names)
        ],
        # The agents' cluster DNS interface belongs in node namespaces only.
        "dns_links": sorted({"ph-dns"} & (after.links - before.links)),
        # The host service proxy's table (another cluster's, when it was there before).
        "nft_tables": sorted((after.nft_tables - before.nft_tables) & {SERVICE_TABLE}),
        "conntrack": service_flows(names),
        "mounts": mounts_under(data_dir),
        "processes": sorted(p for p in pids if not is_zombie(p)),
        "cgroups": [
            str(p)
            for pattern in (f"pilothouse-{names.cluster}-*", f"*/pilothouse-{names.cluster}-*")
            for p in Path("/sys/fs/cgroup").glob(pattern)
        ],
        "files": sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else [],
    }
    return {k: v for k, v in found.items() if v}


def assert_throwaway_cluster_gone(stderr: str) -> None:
    """A bench's throwaway local cluster (named in the `local cluster NAME: ...
    in DATA` line of its stderr) left no network namespace and no data dir."""
    m = re.search(r"local cluster (\w+): .* in (\S+)$", stderr, re.MULTILINE)
    assert m, stderr[-3000:]
    cluster, data = m.group(1), Path(m.group(2))
    assert not any(n.startswith(f"ph-{cluster}-") for n in netns_names())
    assert not data.parent.exists()
