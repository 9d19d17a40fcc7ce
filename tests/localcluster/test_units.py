"""Fast checks of the local cluster's generated files and helpers (no root needed)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from control.config import load_config
from control.localcluster import cluster as lc
from control.localcluster import cri, files
from control.localcluster.agent_launcher import agent_argv
from control.localcluster.cluster import Layout, NodeState, State
from control.localcluster.proc import processes_named


def _state() -> State:
    s = State("t", "phbr-t", "172.31.240.0/24", "10.250.0.0/16", 24, preexisting=["x"])
    s.nodes["node1"] = NodeState(
        1, "node1", "ph-t-node1", "phtn1", "172.31.240.11", "10.250.1.0/24", "/pilothouse-t-node1"
    )
    return s


def test_state_round_trips(tmp_path: Path) -> None:
    s = _state()
    s.iptables_rules.append(["FORWARD", "-j", "ACCEPT"])
    s.save(tmp_path / "state.json")
    assert State.load(tmp_path / "state.json") == s
    assert State.load(tmp_path / "missing.json") is None


def test_written_config_loads(tmp_path: Path) -> None:
    lay = Layout(tmp_path)
    s = _state()
    cmd = [sys.executable, "-m", lc.AGENT_LAUNCHER, *lc.agent_flags(12.0, 3.0)]
    assert lc._write_config(lay, s, list(s.nodes.values()), cmd, "", 12.0)
    assert not lc._write_config(lay, s, list(s.nodes.values()), cmd, "", 12.0)  # unchanged
    config = load_config(None, data_dir=tmp_path)
    assert config.api.listen == ""
    assert config.ssh.agent_command == tuple(cmd)
    assert config.controllers.node_monitor_grace_period == 12.0
    assert config.ssh.identity_files == (lay.client_key,)
    assert config.ssh.known_hosts == lay.known_hosts
    assert config.network.pod_cidr == "10.250.0.0/16"
    (node,) = config.nodes
    assert (node.name, node.host, node.port, node.user) == ("node1", "172.31.240.11", 22, "root")
    lc._check_config_is_ours(lay.config)


def test_local_agents_never_pull_and_beat_four_times_per_grace_period() -> None:
    flags = lc.agent_flags(12.0, 3.0)
    assert "--offline-registry" in flags
    assert flags[flags.index("--heartbeat-interval") + 1] == "3"
    assert flags[flags.index("--backoff-base") + 1] == "3"
    # Kubernetes' defaults: a 40 s grace period keeps the agent's 10 s heartbeat.
    default = lc.agent_flags(lc.DEFAULT_NODE_GRACE_PERIOD, lc.DEFAULT_BACKOFF_BASE)
    assert default[default.index("--heartbeat-interval") + 1] == "10"
    assert default[default.index("--backoff-base") + 1] == "10"


def test_a_foreign_config_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[api]\n")
    with pytest.raises(lc.LocalClusterError, match="not written by `pilothouse up`"):
        lc._check_config_is_ours(tmp_path / "config.toml")


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
    import tomllib

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
    msg = cri._field_bytes(1, long_id.encode()) + cri._field_bool(2, True)
    assert list(cri._fields(msg)) == [(1, long_id.encode()), (2, 1)]
    nested = cri._field_bytes(1, cri._field_bytes(1, b"id1")) + cri._field_bytes(
        1, cri._field_bytes(1, b"id2")
    )
    ids = [
        v
        for n, item in cri._fields(nested)
        if isinstance(item, bytes)
        for _, v in cri._fields(item)
    ]
    assert ids == [b"id1", b"id2"]


async def test_forwarding_rule_only_when_the_host_drops(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    policy = "-P FORWARD ACCEPT\n"

    async def fake_run(argv: Sequence[str], *, check: bool = True, within: float = 60.0) -> str:
        calls.append(list(argv))
        return policy if list(argv[1:]) == ["-S", "FORWARD"] else ""

    monkeypatch.setattr(lc, "run", fake_run)
    monkeypatch.setattr(lc.shutil, "which", lambda _: "/usr/sbin/iptables")
    monkeypatch.setattr(lc, "BR_NETFILTER", Path(__file__))  # exists
    s = _state()
    await lc._ensure_forwarding_rule(s)
    assert s.iptables_rules == []
    policy = "-P FORWARD DROP\n"
    await lc._ensure_forwarding_rule(s)
    rule = ["FORWARD", "-i", "phbr-t", "-o", "phbr-t", "-j", "ACCEPT"]
    assert s.iptables_rules == [rule]
    assert calls[-1] == ["iptables", "-I", *rule]
    await lc._ensure_forwarding_rule(s)  # idempotent
    assert s.iptables_rules == [rule]


def test_processes_named_finds_this_process() -> None:
    comm = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert os.getpid() in processes_named(comm)
    assert processes_named("no-such-command-here") == []
