"""Fast checks of the local cluster's generated files and helpers (no root needed)."""

from __future__ import annotations

import json
import os
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest

from control.config import ServiceProxyConfig, load_config
from control.localcluster import clusterconfig as cc
from control.localcluster import daemons, files, network
from control.localcluster.agent_launcher import agent_argv
from control.localcluster.layout import Layout
from control.localcluster.plan import NodeState, make_plan
from control.localcluster.proc import LocalClusterError, processes_named
from control.localcluster.state import State
from control.nodes import cri
from control.objects.routes import INGRESS_NODE_LABEL


def _state() -> State:
    s = State("t", "phbr-t", "172.31.240.0/24", "10.250.0.0/16", 24, preexisting=["x"])
    s.nodes["node1"] = NodeState(
        1, "node1", "ph-t-node1", "phtn1", "172.31.240.11", "10.250.1.0/24", "/pilothouse-t-node1"
    )
    return s


def test_state_round_trips(tmp_path: Path) -> None:
    s = _state()
    s.iptables_rules.append(["FORWARD", "-j", "ACCEPT"])
    s.service_cidr, s.service_route_created = "172.30.7.0/24", True
    s.save(tmp_path / "state.json")
    assert State.load(tmp_path / "state.json") == s
    assert State.load(tmp_path / "missing.json") is None


def test_a_state_file_from_before_services_has_the_default_service_cidr(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _state().save(path)
    raw = json.loads(path.read_text())
    del raw["service_cidr"], raw["service_route_created"]
    path.write_text(json.dumps(raw))
    loaded = State.load(path)
    assert loaded is not None
    assert (loaded.service_cidr, loaded.service_route_created) == ("10.96.0.0/12", False)


def test_agents_import_the_control_planes_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agents import the control plane's code: its source root, or the
    PYTHONPATH `up` runs with, reaches them through their sshd."""
    node = _state().nodes["node1"]
    nl = Layout(tmp_path).node("node1")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert daemons.agent_env(node, nl)["PYTHONPATH"] == str(daemons.CODE_ROOT)
    monkeypatch.setenv("PYTHONPATH", "/src/tree")
    env = daemons.agent_env(node, nl)
    assert env["PYTHONPATH"] == "/src/tree"
    assert env["PILOTHOUSE_NODE_NAME"] == "node1"


def test_written_config_loads(tmp_path: Path) -> None:
    lay = Layout(tmp_path)
    plan = make_plan("t", 1, node_subnet="172.31.240.0/24", pod_cidr="10.250.0.0/16")
    assert plan.nodes == tuple(_state().nodes.values())
    cmd = cc.default_agent_command(12.0, 3.0)
    assert cmd == [sys.executable, "-m", cc.AGENT_LAUNCHER, *cc.agent_flags(12.0, 3.0)]
    text = cc.render_config(lay, plan, plan.nodes, cmd, "", 12.0)
    assert cc.write_config(lay.config, text)
    assert not cc.write_config(lay.config, text)  # unchanged
    config = load_config(None, data_dir=tmp_path)
    assert config.api.listen == ""
    assert config.ssh.agent_command == tuple(cmd)
    assert config.controllers.node_monitor_grace_period == 12.0
    assert config.ssh.identity_files == (lay.client_key,)
    assert config.ssh.known_hosts == lay.known_hosts
    assert config.network.pod_cidr == "10.250.0.0/16"
    assert config.network.service_cidr == plan.service_cidr == "10.96.0.0/12"
    (node,) = config.nodes
    assert (node.name, node.host, node.port, node.user) == ("node1", "172.31.240.11", 22, "root")
    assert config.store.path == tmp_path / "state.db"
    cc.check_config_is_ours(lay.config)


def test_the_store_may_live_in_a_directory_of_its_own(tmp_path: Path) -> None:
    """`up --store-dir`: the control plane's store elsewhere (a small filesystem)."""
    lay = Layout(tmp_path / "home")
    plan = make_plan("t", 1, node_subnet="172.31.240.0/24", pod_cidr="10.250.0.0/16")
    store = tmp_path / "store" / "state.db"
    text = cc.render_config(lay, plan, plan.nodes, ["agent"], "", 12.0, store_path=store)
    cc.write_config(lay.config, text)
    assert load_config(None, data_dir=lay.data_dir).store.path == store


def test_config_without_nodes_loads(tmp_path: Path) -> None:
    """What a control plane serves while `up` registers the Nodes: no node links."""
    lay = Layout(tmp_path)
    plan = make_plan("t", 2, node_subnet="172.31.240.0/24", pod_cidr="10.250.0.0/16")
    cc.write_config(lay.config, cc.render_config(lay, plan, [], ["agent"], "", 12.0))
    config = load_config(None, data_dir=tmp_path)
    assert config.nodes == ()
    assert config.network.pod_cidr == "10.250.0.0/16"
    cc.check_config_is_ours(lay.config)


def test_config_runs_a_service_proxy_on_the_host(tmp_path: Path) -> None:
    """`up` has the control plane run an agent with no pods on the host itself,
    so that the host reaches ClusterIPs."""
    lay = Layout(tmp_path)
    plan = make_plan("t", 1, node_subnet="172.31.240.0/24", service_cidr="172.30.7.0/24")
    name, command = cc.host_service_proxy()
    assert (name, command) == ("host", [sys.executable, "-m", "agent", "--proxy-only"])
    text = cc.render_config(
        lay, plan, plan.nodes, ["agent"], "", 12.0, service_proxies=[(name, command)]
    )
    cc.write_config(lay.config, text)
    config = load_config(None, data_dir=tmp_path)
    assert config.service_proxies == (ServiceProxyConfig("host", tuple(command)),)
    assert config.network.service_cidr == "172.30.7.0/24"
    assert config.network.cluster_dns == "172.30.7.10"


def test_local_agents_never_pull_and_beat_four_times_per_grace_period() -> None:
    flags = cc.agent_flags(12.0, 3.0)
    assert "--offline-registry" in flags
    assert flags[flags.index("--heartbeat-interval") + 1] == "3"
    assert flags[flags.index("--backoff-base") + 1] == "3"
    # Kubernetes' defaults: a 40 s grace period keeps the agent's 10 s heartbeat.
    default = cc.agent_flags(cc.DEFAULT_NODE_GRACE_PERIOD, cc.DEFAULT_BACKOFF_BASE)
    assert default[default.index("--heartbeat-interval") + 1] == "10"
    assert default[default.index("--backoff-base") + 1] == "10"


def test_a_foreign_config_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[api]\n")
    with pytest.raises(LocalClusterError, match="not written by `pilothouse up`"):
        cc.check_config_is_ours(tmp_path / "config.toml")


def test_keys_and_known_hosts(tmp_path: Path) -> None:
    pub = files.ensure_key(tmp_path / "k")
    assert pub.startswith("ssh-ed25519 ")
    assert files.ensure_key(tmp_path / "k") == pub  # generated once
    assert (tmp_path / "k").stat().st_mode & 0o077 == 0
    blob = pub.split()[1]
    assert files.known_hosts_line("10.0.0.1", 22, pub) == f"10.0.0.1 ssh-ed25519 {blob}"
    assert files.known_hosts_line("10.0.0.1", 2222, pub) == f"[10.0.0.1]:2222 ssh-ed25519 {blob}"


def test_sshd_config_has_no_password_auth() -> None:
    text = files.sshd_config(
        listen="172.31.240.11",
        port=22,
        host_key=Path("/d/hk"),
        authorized_keys=Path("/d/ak"),
        pid_file=Path("/d/pid"),
        env={"PILOTHOUSE_NODE_NAME": "node1"},
    )
    lines = set(text.splitlines())
    assert {"ListenAddress 172.31.240.11", "UsePAM no", "PasswordAuthentication no"} <= lines
    assert {"HostKey /d/hk", "PidFile /d/pid", "AuthorizedKeysFile /d/ak"} <= lines
    assert 'SetEnv "PILOTHOUSE_NODE_NAME=node1"' in lines


def test_containerd_config_has_the_cri_settings() -> None:
    text = files.containerd_config(
        root=Path("/d/root"),
        state=Path("/d/state"),
        socket=Path("/d/c.sock"),
        runc_root=Path("/d/runc"),
        cni_conf_dir=Path("/d/net.d"),
    )
    conf = tomllib.loads(text)
    cri_conf = conf["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri_conf["restrict_oom_score_adj"] is True
    assert cri_conf["sandbox_image"] == "docker.io/pilothouse/pause:latest"
    assert cri_conf["containerd"]["runtimes"]["runc"]["options"]["Root"] == "/d/runc"
    assert cri_conf["cni"] == {"bin_dir": "/usr/lib/cni", "conf_dir": "/d/net.d", "max_conf_num": 1}
    assert conf["grpc"]["address"] == "/d/c.sock"


def test_agent_launcher_maps_the_node_settings() -> None:
    env = {
        "PILOTHOUSE_NODE_NAME": "node1",
        "PILOTHOUSE_CONTAINERD_SOCKET": "/d/c.sock",
        "PILOTHOUSE_CGROUP_PARENT": "/p",
        "OTHER": "x",
    }
    assert agent_argv(env, ["-v"]) == [
        sys.executable,
        "-m",
        "agent",
        "--node-name",
        "node1",
        "--containerd-socket",
        "/d/c.sock",
        "--cgroup-parent",
        "/p",
        "-v",
    ]


def test_protobuf_helpers_round_trip() -> None:
    long_id = "a" * 200  # a two-byte length varint
    msg = cri.field_bytes(1, long_id.encode()) + cri.field_bool(2, True)
    assert list(cri.fields(msg)) == [(1, long_id.encode()), (2, 1)]
    nested = cri.field_bytes(1, cri.field_bytes(1, b"id1")) + cri.field_bytes(
        1, cri.field_bytes(1, b"id2")
    )
    ids = [
        v for n, item in cri.fields(nested) if isinstance(item, bytes) for _, v in cri.fields(item)
    ]
    assert ids == [b"id1", b"id2"]


async def test_forwarding_rule_only_when_the_host_drops(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    policy = "-P FORWARD ACCEPT\n"

    async def fake_run(argv: Sequence[str], *, check: bool = True, within: float = 60.0) -> str:
        calls.append(list(argv))
        return policy if list(argv[1:]) == ["-S", "FORWARD"] else ""

    monkeypatch.setattr(network, "run", fake_run)
    monkeypatch.setattr(network.shutil, "which", lambda _: "/usr/sbin/iptables")
    monkeypatch.setattr(network, "BR_NETFILTER", Path(__file__))  # exists
    s = _state()
    await network.ensure_forwarding_rule(s)
    assert s.iptables_rules == []
    policy = "-P FORWARD DROP\n"
    await network.ensure_forwarding_rule(s)
    rule = ["FORWARD", "-i", "phbr-t", "-o", "phbr-t", "-j", "ACCEPT"]
    assert s.iptables_rules == [rule]
    assert calls[-1] == ["iptables", "-I", *rule]
    await network.ensure_forwarding_rule(s)  # idempotent
    assert s.iptables_rules == [rule]


def test_processes_named_finds_this_process() -> None:
    comm = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert os.getpid() in processes_named(comm)
    assert processes_named("no-such-command-here") == []


def test_the_first_node_is_the_ingress_node(tmp_path: Path) -> None:
    lay = Layout(tmp_path)
    plan = make_plan("t", 2, node_subnet="172.31.240.0/24")
    cc.write_config(lay.config, cc.render_config(lay, plan, plan.nodes, ["agent"], "", 12.0))
    first, second = load_config(None, data_dir=tmp_path).nodes
    assert first.labels == {"pilothouse.io/local-cluster": "t", INGRESS_NODE_LABEL: "true"}
    assert second.labels == {"pilothouse.io/local-cluster": "t"}
