"""The local cluster's network on the host: the bridge, each node's namespace
and veth pair, the routes to the pod CIDRs, the service CIDR's `unreachable`
routes, and a forwarding rule when the host needs one. Everything made is
recorded in the state, for `down`, which also removes what the agents made for
Services: their nftables table, cluster DNS interface and conntrack flows."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from control.localcluster.plan import NodeState, Plan
from control.localcluster.proc import CommandError, LocalClusterError, Progress, capture, run
from control.localcluster.state import State

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

BR_NETFILTER = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
# What the agents make for Services (agent.network): their nftables table, and
# the dummy interface that holds the cluster DNS address in a node's namespace.
SERVICE_TABLE = ("ip", "pilothouse")
DNS_LINK = "ph-dns"
# The routing table of the service CIDRs' `unreachable` routes, and the
# priorities of the rules that lead forwarded traffic there (service_route_argvs).
SERVICE_ROUTE_TABLE = 7151
SERVICE_RULE_PRIORITY = 7150


async def link_exists(name: str, netns: str | None = None) -> bool:
    argv = ["ip", *(["-n", netns] if netns else []), "link", "show", "dev", name]
    try:
        await run(argv)
    except CommandError:
        return False
    return True


async def netns_names() -> set[str]:
    return set((await run(["ip", "netns", "list"])).split())


async def check_names_free(plan: Plan, node: NodeState, existing_netns: set[str]) -> None:
    """A new node's namespace and host veth must not exist yet (another cluster's?)."""
    if node.netns in existing_netns:
        raise LocalClusterError(
            f"network namespace {node.netns} exists but is not this cluster's "
            f"(another data dir runs cluster {plan.cluster!r}?); use another --name"
        )
    if await link_exists(node.host_veth):
        raise LocalClusterError(f"interface {node.host_veth} exists but is not this cluster's")


async def _check_no_host_route(net: IPNetwork, what: str, instead: str) -> None:
    """`net` must not overlap a route the host already has."""
    for route in json.loads(await run(["ip", "-j", "route", "show"]) or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                if ipaddress.ip_network(dst, strict=False).overlaps(net):
                    raise LocalClusterError(
                        f"{what} {net} overlaps host route {dst} "
                        f"(dev {route.get('dev')}); choose {instead}"
                    )


async def ensure_bridge(plan: Plan, state: State, save_to: Path) -> None:
    net = ipaddress.ip_network(plan.node_subnet)
    if await link_exists(plan.bridge):
        if not state.bridge_created:
            raise LocalClusterError(
                f"interface {plan.bridge} exists but was not made by this cluster; remove it "
                "or use another cluster name"
            )
    else:
        await _check_no_host_route(net, "node subnet", "another subnet")
        state.bridge_created = True
        state.save(save_to)
        await run(["ip", "link", "add", plan.bridge, "type", "bridge"])
    addrs = await run(["ip", "-j", "addr", "show", "dev", plan.bridge])
    if plan.gateway not in addrs:
        await run(["ip", "addr", "add", f"{plan.gateway}/{plan.prefixlen}", "dev", plan.bridge])
    await run(["ip", "link", "set", plan.bridge, "up"])


async def ensure_br_netfilter(progress: Progress) -> None:
    """Bridged frames through the ip hooks, so that a Service reply from a pod
    to a pod on the same node bridge is un-NATed (the sysctl is set per node
    namespace in ensure_netns). Loads br_netfilter on the host when missing."""
    if BR_NETFILTER.exists():  # noqa: ASYNC240  (procfs: never blocks)
        return
    try:
        await run(["modprobe", "br_netfilter"])
    except (CommandError, FileNotFoundError) as e:
        progress(
            f"warning: cannot load br_netfilter ({e}); a pod reaching a Service whose "
            "endpoint is on its own node may get no answer"
        )


def _ip(netns: str | None, *args: str) -> list[str]:
    return ["ip", *(["-n", netns] if netns else []), *args]


def service_route_argvs(cidr: str, netns: str | None = None) -> list[list[str]]:
    """The service CIDR `unreachable`, for forwarded traffic only: a pod's packet
    to a ClusterIP that no service rule DNATed (in prerouting, before routing)
    fails at once. Packets this host or node sends itself look up the main table
    first: their route is chosen when they are made, before the output hook's
    DNAT, so an unreachable route there would fail every ClusterIP at once."""
    table = str(SERVICE_ROUTE_TABLE)
    local, forwarded = str(SERVICE_RULE_PRIORITY), str(SERVICE_RULE_PRIORITY + 1)
    return [
        _ip(netns, "route", "replace", "unreachable", cidr, "table", table),
        _ip(netns, "rule", "add", "priority", local, "to", cidr, "iif", "lo", "lookup", "main"),
        _ip(netns, "rule", "add", "priority", forwarded, "to", cidr, "lookup", table),
    ]


async def _service_rules_present(cidr: str, netns: str | None) -> bool:
    net = ipaddress.ip_network(cidr)
    found = set()
    for rule in json.loads(await run(_ip(netns, "-j", "rule", "show")) or "[]"):
        with contextlib.suppress(KeyError, ValueError):
            if ipaddress.ip_network(f"{rule['dst']}/{rule['dstlen']}") == net:
                found.add(int(rule["priority"]))
    return {SERVICE_RULE_PRIORITY, SERVICE_RULE_PRIORITY + 1} <= found


async def add_service_route(cidr: str, netns: str | None = None) -> None:
    """service_route_argvs, once (a rule added twice is there twice)."""
    route, *rules = service_route_argvs(cidr, netns)
    await run(route)
    if not await _service_rules_present(cidr, netns):
        for argv in rules:
            await run(argv)


async def ensure_service_route(state: State, save_to: Path) -> None:
    """The service CIDR's `unreachable` route and rules on the host (see
    service_route_argvs). Another cluster's identical route is shared."""
    cidr = ipaddress.ip_network(state.service_cidr)
    await _check_no_host_route(cidr, "service CIDR", "another --service-cidr")
    if not state.service_route_created:
        show = ["ip", "-j", "route", "show", "table", str(SERVICE_ROUTE_TABLE), str(cidr)]
        code, out, _ = await capture(show)
        # It fails while the table does not exist yet: nothing there then.
        if code == 0 and json.loads(out or "[]"):
            return  # another local cluster's, with the same service CIDR
        state.service_route_created = True
        state.save(save_to)
    await add_service_route(str(cidr))


async def ensure_forwarding_rule(state: State) -> None:
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


async def ensure_netns(plan: Plan, node: NodeState) -> None:
    """The node's namespace, with eth0 on the bridge at its address."""
    if node.netns not in await netns_names():
        await run(["ip", "netns", "add", node.netns])
    if not await link_exists("eth0", node.netns):
        peer = plan.peer_veth(node)
        if await link_exists(node.host_veth):
            await run(["ip", "link", "del", node.host_veth])
        await run(["ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", peer])
        await run(["ip", "link", "set", peer, "netns", node.netns])
        await run(["ip", "-n", node.netns, "link", "set", peer, "name", "eth0"])
        await run(
            ["ip", "-n", node.netns, "addr", "add", f"{node.ip}/{plan.prefixlen}", "dev", "eth0"]
        )
    await run(["ip", "link", "set", node.host_veth, "master", plan.bridge, "up"])
    await run(["ip", "-n", node.netns, "link", "set", "lo", "up"])
    await run(["ip", "-n", node.netns, "link", "set", "eth0", "up"])
    await run(["ip", "-n", node.netns, "route", "replace", "default", "via", plan.gateway])
    await add_service_route(plan.service_cidr, node.netns)
    sysctls = ["net.ipv4.ip_forward=1"]
    if BR_NETFILTER.exists():  # noqa: ASYNC240  (procfs: never blocks)
        sysctls.append("net.bridge.bridge-nf-call-iptables=1")
    await run(["ip", "netns", "exec", node.netns, "sysctl", "-qw", *sysctls])


async def ensure_routes(state: State, nodes: Sequence[NodeState]) -> None:
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


async def remove_routes_to(state: State, gone: NodeState) -> None:
    """A removed node's pod CIDR: its routes in the other nodes and on the host."""
    for other in state.nodes.values():
        await run(["ip", "-n", other.netns, "route", "del", gone.pod_cidr], check=False)
    if gone.pod_cidr in state.host_routes:
        await run(["ip", "route", "del", gone.pod_cidr, "dev", state.bridge], check=False)
        state.host_routes.remove(gone.pod_cidr)


async def delete_service_table(netns: str | None = None) -> None:
    """The agents' nftables table, on the host or in a node's namespace; no
    error when it is not there (or nft is not installed)."""
    if shutil.which("nft") is None:
        return
    argv = ["nft", "delete", "table", *SERVICE_TABLE]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    try:
        await run(argv)
    except CommandError as e:
        if "No such file or directory" not in e.output:
            raise


async def remove_node_services(node: NodeState) -> None:
    """What the node's agent made for Services in its namespace (the namespace
    is about to go, and all of it with it: so no error stops `down` here)."""
    with contextlib.suppress(CommandError):
        await delete_service_table(node.netns)
    await run(["ip", "-n", node.netns, "link", "del", DNS_LINK], check=False)


async def remove_host_services(state: State) -> None:
    """The host service proxy's table, the host's conntrack flows to the
    service CIDR, and the `unreachable` route and its rules if this cluster
    added them."""
    await delete_service_table()
    if shutil.which("conntrack") is not None:
        # Exit 1 with "0 flow entries have been deleted" when there were none.
        await run(["conntrack", "-D", "--orig-dst", state.service_cidr], check=False)
    if state.service_route_created:
        for argv in service_route_argvs(state.service_cidr):
            await run(["del" if a in ("replace", "add") else a for a in argv], check=False)
        state.service_route_created = False


async def remove_host_network(state: State) -> bool:
    """The host routes, forwarding rules and bridge this cluster made; True if
    it removed the bridge."""
    for dst in state.host_routes:
        with contextlib.suppress(CommandError):
            await run(["ip", "route", "del", dst, "dev", state.bridge])
    for rule in state.iptables_rules:
        await run(["iptables", "-D", *rule], check=False)
    if state.bridge_created and await link_exists(state.bridge):
        await run(["ip", "link", "del", state.bridge])
        return True
    return False
