"""The local cluster's network for Services, with `ip`, `nft`, `conntrack` and
`modprobe` faked (no root): the service CIDR's `unreachable` routes,
br_netfilter in the node namespaces, and what `down` removes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from control.localcluster import network
from control.localcluster.plan import make_plan
from control.localcluster.proc import CommandError, LocalClusterError
from control.localcluster.state import State

CIDR = "172.30.7.0/24"

# argv -> (exit code, stdout, stderr)
Answer = Callable[[list[str]], tuple[int, str, str]]


class FakeCommands:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, answer: Answer | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answer = answer or (lambda argv: (0, "", ""))
        monkeypatch.setattr(network, "run", self.run)
        monkeypatch.setattr(network, "capture", self.capture)
        monkeypatch.setattr(network.shutil, "which", lambda tool: f"/usr/sbin/{tool}")

    async def capture(self, argv: Sequence[str], *, within: float = 60.0) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        return self.answer(list(argv))

    async def run(self, argv: Sequence[str], *, check: bool = True, within: float = 60.0) -> str:
        self.calls.append(list(argv))
        if argv[0] == "modprobe" and self.answer(list(argv))[0] == 127:
            raise FileNotFoundError(argv[0])
        code, out, err = self.answer(list(argv))
        if check and code != 0:
            raise CommandError(argv, code, err or out)
        return out


def _state(tmp_path: Path) -> tuple[State, Path]:
    plan = make_plan("t", 2, node_subnet="172.31.240.0/24", service_cidr=CIDR)
    state = State.new(plan, [])
    state.nodes = {n.name: n for n in plan.nodes}
    return state, tmp_path / "state.json"


def _routes(*routes: dict[str, str], table: list[dict[str, str]] | None = None) -> Answer:
    """`ip -j route show` gives `routes`; the service route table gives `table`."""

    def answer(argv: list[str]) -> tuple[int, str, str]:
        if argv[:4] == ["ip", "-j", "route", "show"]:
            return 0, json.dumps(table or [] if "table" in argv else list(routes)), ""
        return 0, "", ""

    return answer


TABLE = str(network.SERVICE_ROUTE_TABLE)
LOCAL, FORWARDED = str(network.SERVICE_RULE_PRIORITY), str(network.SERVICE_RULE_PRIORITY + 1)
HOST_ROUTE = [
    ["ip", "route", "replace", "unreachable", CIDR, "table", TABLE],
    ["ip", "-j", "rule", "show"],
    ["ip", "rule", "add", "priority", LOCAL, "to", CIDR, "iif", "lo", "lookup", "main"],
    ["ip", "rule", "add", "priority", FORWARDED, "to", CIDR, "lookup", TABLE],
]


async def test_the_host_routes_the_service_cidr_unreachable_for_forwarded_traffic(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeCommands(monkeypatch, _routes({"dst": "default"}, {"dst": "10.0.0.0/24"}))
    state, path = _state(tmp_path)
    await network.ensure_service_route(state, path)
    assert fake.calls[-4:] == HOST_ROUTE
    assert state.service_route_created
    # Recorded before it is made, so that an interrupted `up` is still undone.
    saved = State.load(path)
    assert saved is not None and saved.service_route_created


async def test_the_service_rules_are_added_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rules = [
        {"priority": int(LOCAL), "dst": CIDR.split("/")[0], "dstlen": 24, "iif": "lo"},
        {"priority": int(FORWARDED), "dst": CIDR.split("/")[0], "dstlen": 24},
    ]

    def answer(argv: list[str]) -> tuple[int, str, str]:
        return 0, json.dumps(rules) if argv[1:4] == ["-j", "rule", "show"] else "", ""

    fake = FakeCommands(monkeypatch, answer)
    await network.add_service_route(CIDR)
    assert fake.calls == HOST_ROUTE[:2]


async def test_another_clusters_unreachable_route_is_shared_not_taken(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    theirs = [{"dst": CIDR, "type": "unreachable"}]
    fake = FakeCommands(monkeypatch, _routes(table=theirs))
    state, path = _state(tmp_path)
    await network.ensure_service_route(state, path)
    assert not state.service_route_created
    assert not any("replace" in call or "add" in call for call in fake.calls)


@pytest.mark.parametrize("dst", [CIDR, "172.30.0.0/16", "172.30.7.128/25"])
async def test_a_service_cidr_the_host_routes_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dst: str
) -> None:
    FakeCommands(monkeypatch, _routes({"dst": dst, "dev": "eth1"}))
    state, path = _state(tmp_path)
    with pytest.raises(LocalClusterError, match=f"service CIDR {CIDR} overlaps host route {dst}"):
        await network.ensure_service_route(state, path)
    assert not state.service_route_created


async def test_each_node_routes_the_service_cidr_unreachable_and_bridges_through_netfilter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeCommands(monkeypatch, lambda argv: (0, "", ""))
    monkeypatch.setattr(network, "BR_NETFILTER", Path(__file__))  # exists
    plan = make_plan("t", 1, node_subnet="172.31.240.0/24", service_cidr=CIDR)
    (node,) = plan.nodes
    await network.ensure_netns(plan, node)
    ns = node.netns
    for argv in HOST_ROUTE:
        assert [argv[0], "-n", ns, *argv[1:]] in fake.calls
    sysctl = ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]
    assert [*sysctl, "net.bridge.bridge-nf-call-iptables=1"] in fake.calls
    # Without br_netfilter on the host there is no such sysctl to set.
    fake.calls.clear()
    monkeypatch.setattr(network, "BR_NETFILTER", tmp_path / "missing")
    await network.ensure_netns(plan, node)
    assert sysctl in fake.calls


async def test_br_netfilter_is_loaded_when_missing_and_its_absence_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    said: list[str] = []
    monkeypatch.setattr(network, "BR_NETFILTER", Path(__file__))
    fake = FakeCommands(monkeypatch)
    await network.ensure_br_netfilter(said.append)
    assert fake.calls == [] and said == []  # loaded already

    monkeypatch.setattr(network, "BR_NETFILTER", tmp_path / "missing")
    await network.ensure_br_netfilter(said.append)
    assert fake.calls == [["modprobe", "br_netfilter"]] and said == []

    FakeCommands(
        monkeypatch, lambda argv: (1, "", "modprobe: FATAL: Module br_netfilter not found")
    )
    await network.ensure_br_netfilter(said.append)
    (warning,) = said
    assert warning.startswith("warning: cannot load br_netfilter (modprobe br_netfilter: exit 1")

    said.clear()
    FakeCommands(monkeypatch, lambda argv: (127, "", ""))  # no modprobe at all
    await network.ensure_br_netfilter(said.append)
    assert len(said) == 1


def _nft_table_missing(argv: list[str]) -> tuple[int, str, str]:
    if "nft" in argv:
        return 1, "", "Error: No such file or directory; did you mean table 'filter'?"
    if argv[0] == "conntrack":
        return 1, "", "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted."
    return 0, "", ""


async def test_down_removes_the_host_service_rules_flows_and_route(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeCommands(monkeypatch, _nft_table_missing)
    state, _ = _state(tmp_path)
    state.service_route_created = True
    await network.remove_host_services(state)
    assert fake.calls == [
        ["nft", "delete", "table", "ip", "pilothouse"],
        ["conntrack", "-D", "--orig-dst", CIDR],
        ["ip", "route", "del", "unreachable", CIDR, "table", TABLE],
        ["ip", "rule", "del", "priority", LOCAL, "to", CIDR, "iif", "lo", "lookup", "main"],
        ["ip", "rule", "del", "priority", FORWARDED, "to", CIDR, "lookup", TABLE],
    ]
    assert not state.service_route_created
    # A route another cluster made stays.
    fake.calls.clear()
    await network.remove_host_services(state)
    assert len(fake.calls) == 2


async def test_an_nft_failure_other_than_a_missing_table_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    FakeCommands(monkeypatch, lambda argv: (1, "", "Error: Could not process rule: Busy"))
    state, _ = _state(tmp_path)
    with pytest.raises(CommandError, match="Busy"):
        await network.remove_host_services(state)


async def test_down_removes_the_agents_service_state_in_a_node(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Errors do not stop it: the namespace is deleted next, with all of it.
    fake = FakeCommands(monkeypatch, lambda argv: (1, "", "Error: Busy"))
    state, _ = _state(tmp_path)
    node = state.nodes["node1"]
    await network.remove_node_services(node)
    assert fake.calls == [
        ["ip", "netns", "exec", node.netns, "nft", "delete", "table", "ip", "pilothouse"],
        ["ip", "-n", node.netns, "link", "del", "ph-dns"],
    ]
