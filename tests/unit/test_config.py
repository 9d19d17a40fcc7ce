from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from control.config import (
    ApiConfig,
    ApiLimits,
    Config,
    ConfigError,
    ControllersConfig,
    LeaderElectionConfig,
    NetworkConfig,
    NodeConfig,
    SchedulerConfig,
    ServiceProxyConfig,
    SshConfig,
    StoreConfig,
    Taint,
    default_data_dir,
    load_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def load_text(tmp_path: Path, text: str, name: str = "config.toml") -> Config:
    path = tmp_path / name
    path.write_text(text)
    return load_config(path, data_dir=tmp_path / "data")


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text)
    return str(e.value)


def test_default_data_dir_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PILOTHOUSE_HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home"
    monkeypatch.delenv("PILOTHOUSE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / ".pilothouse"


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    d = tmp_path / "data"
    c = load_config(tmp_path / "nope.toml", data_dir=d)
    assert c.data_dir == d
    assert c.store == StoreConfig(path=d / "state.db")
    assert c.store.backend == "sqlite"
    assert c.api.socket == d / "api.sock"
    assert c.api.listen == "127.0.0.1:6443"
    assert c.api.listen_address == ("127.0.0.1", 6443)
    assert c.api.tls_cert is None and c.api.tls_key is None
    assert c.api.pki_dir == d / "pki"
    assert c.api.tokens_file == d / "tokens.csv"
    assert c.ssh == SshConfig(known_hosts=d / "known_hosts")
    assert c.ssh.user == "root" and c.ssh.use_agent
    assert c.ssh.keepalive_interval == 15 and c.ssh.connect_timeout == 10
    assert (c.ssh.reconnect_backoff_initial, c.ssh.reconnect_backoff_max) == (1, 30)
    assert c.ssh.agent_command == ("python3", "-m", "agent")
    assert c.nodes == ()
    assert c.service_proxies == ()
    assert c.network == NetworkConfig()
    assert c.network.cluster_dns == "10.96.0.10"
    assert c.controllers == ControllersConfig(40, 300)
    assert c.scheduler == SchedulerConfig(0)


def test_none_path_reads_config_toml_in_data_dir(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[ssh]\nuser = "core"\n')
    assert load_config(None, data_dir=tmp_path).ssh.user == "core"
    assert load_config(None, data_dir=tmp_path / "empty").ssh.user == "root"


def test_data_dir_from_file_and_relative_paths(tmp_path: Path) -> None:
    c = load_text(
        tmp_path,
        'data_dir = "state"\n[store]\npath = "db/s.db"\n[api]\nsocket = "/run/p.sock"\n'
        '[ssh]\nidentity_files = ["id_ed25519", "~/k"]\n',
    )
    # The data_dir argument wins over the file's key.
    assert c.data_dir == tmp_path / "data"
    assert c.store.path == tmp_path / "data" / "db" / "s.db"
    assert c.api.socket == Path("/run/p.sock")
    assert c.ssh.identity_files == (tmp_path / "data" / "id_ed25519", Path("~/k").expanduser())

    path = tmp_path / "config.toml"
    c = load_config(path)
    assert c.data_dir == tmp_path / "state"  # relative to the config file
    assert c.store.path == tmp_path / "state" / "db" / "s.db"


def test_cluster_dns_follows_service_cidr(tmp_path: Path) -> None:
    c = load_text(tmp_path, '[network]\nservice_cidr = "172.20.0.0/16"\n')
    assert c.network.cluster_dns == "172.20.0.10"


def test_durations_and_overrides(tmp_path: Path) -> None:
    c = load_text(
        tmp_path,
        """
[ssh]
keepalive_interval = 5
connect_timeout = 2.5
reconnect_backoff_initial = "250ms"
reconnect_backoff_max = "1m30s"
[controllers]
node_monitor_grace_period = "2s"
pod_eviction_timeout = "1h"
[api]
listen = ""
tls_cert = "c.pem"
tls_key = "k.pem"
[store]
etcd_endpoints = ["https://10.0.0.1:2379", "10.0.0.2:2379"]
""",
    )
    assert c.ssh.keepalive_interval == 5.0
    assert c.ssh.connect_timeout == 2.5
    assert c.ssh.reconnect_backoff_initial == 0.25
    assert c.ssh.reconnect_backoff_max == 90.0
    assert c.controllers == ControllersConfig(2.0, 3600.0)
    assert c.api.listen_address is None
    assert c.api.tls_cert == tmp_path / "data" / "c.pem"
    assert c.store.etcd_endpoints == ("https://10.0.0.1:2379", "10.0.0.2:2379")


def test_etcd_backend_with_tls(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("ca.crt", "client.crt", "client.key"):
        (data / name).write_text("pem")
    text = """
[store]
backend = "etcd"
etcd_endpoints = ["https://10.0.0.1:2379", "10.0.0.2:2379"]
etcd_prefix = "/prod/"
etcd_ca_file = "ca.crt"
etcd_cert_file = "client.crt"
etcd_key_file = "client.key"
"""
    c = load_text(tmp_path, text)
    assert c.store.backend == "etcd"
    assert c.store.etcd_prefix == "/prod"
    assert c.store.etcd_ca_file == data / "ca.crt"
    assert (c.store.etcd_cert_file, c.store.etcd_key_file) == (
        data / "client.crt",
        data / "client.key",
    )
    (data / "client.key").unlink()
    assert error_of(tmp_path, text).endswith(
        f"store.etcd_key_file: no such file: {data / 'client.key'}"
    )


def test_ipv6_listen_address(tmp_path: Path) -> None:
    assert load_text(tmp_path, '[api]\nlisten = "[::]:6443"\n').api.listen_address == ("::", 6443)


def test_nodes(tmp_path: Path) -> None:
    c = load_text(
        tmp_path,
        """
[ssh]
user = "core"
[[nodes]]
name = "n1"
host = "10.0.0.1"
[[nodes]]
name = "n2"
host = "n2.lan"
port = 2200
user = "ops"
labels = { "topology.kubernetes.io/zone" = "z1" }
taints = ["gpu:NoSchedule", "a=b:NoExecute"]
""",
    )
    assert c.nodes == (
        NodeConfig("n1", "10.0.0.1"),
        NodeConfig(
            "n2",
            "n2.lan",
            2200,
            "ops",
            {"topology.kubernetes.io/zone": "z1"},
            (Taint("gpu", "NoSchedule"), Taint("a", "NoExecute", "b")),
        ),
    )
    assert c.nodes[1].taints[1].to_dict() == {"key": "a", "value": "b", "effect": "NoExecute"}
    assert c.nodes[1].taints[0].to_dict() == {"key": "gpu", "effect": "NoSchedule"}


def test_example_file_equals_defaults(tmp_path: Path) -> None:
    c = load_config(EXAMPLE, data_dir=tmp_path)
    defaults = load_config(None, data_dir=tmp_path / "absent")
    defaults = dataclasses.replace(
        defaults,
        data_dir=tmp_path,
        store=dataclasses.replace(defaults.store, path=tmp_path / "state.db"),
        api=load_config(None, data_dir=tmp_path).api,
        ssh=load_config(None, data_dir=tmp_path).ssh,
    )
    assert dataclasses.replace(c, nodes=(), service_proxies=()) == defaults
    assert [n.name for n in c.nodes] == ["node-1", "node-2"]
    assert c.nodes[0].port == 22 and c.nodes[0].user is None and c.nodes[0].taints == ()
    assert c.nodes[1].taints == (
        Taint("dedicated", "NoSchedule", "db"),
        Taint("maintenance", "NoExecute"),
    )
    assert c.service_proxies == (
        ServiceProxyConfig("gateway", ("python3", "-m", "agent", "--proxy-only")),
    )


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_example_file_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    # Keys appear set (`key = ...`) or commented out (`# key = ...`).
    documented = set(re.findall(r"^(?:# )?([a-z_]+) = ", text, re.M))
    expected = (
        {"data_dir"}
        | _fields(StoreConfig)
        | (_fields(ApiConfig) - {"limits"})
        | _fields(ApiLimits)
        | _fields(SshConfig)
        | _fields(NodeConfig)
        | _fields(NetworkConfig)
        | _fields(ControllersConfig)
        | _fields(SchedulerConfig)
        | _fields(ServiceProxyConfig)
        | _fields(LeaderElectionConfig)
    )
    assert expected - documented == set()
    sections = set(re.findall(r"^\[+(\w+)\]+", text, re.M))
    assert sections == _fields(Config) - {"data_dir"}
    assert "\n[api.limits]\n" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[network]\nservice_cidr = "10.96.0.0/40"\n',
            "config.toml: network.service_cidr: not a valid CIDR: '10.96.0.0/40'",
        ),
        (
            '[network]\npod_cidr = "10.244.1.0/16"\n',
            "config.toml: network.pod_cidr: host bits set in CIDR: '10.244.1.0/16'",
        ),
        (
            '[network]\npod_cidr = "10.96.0.0/16"\n',
            "config.toml: network.service_cidr: overlaps pod_cidr 10.96.0.0/16",
        ),
        (
            "[network]\nnode_cidr_mask = 8\n",
            "config.toml: network.node_cidr_mask: must be between 16 (the pod_cidr prefix) and 30, got 8",
        ),
        (
            '[network]\ncluster_dns = "10.0.0.10"\n',
            "config.toml: network.cluster_dns: 10.0.0.10 is not inside service_cidr 10.96.0.0/12",
        ),
        (
            '[network]\ncluster_dns = "dns"\n',
            "config.toml: network.cluster_dns: not a valid IP address: 'dns'",
        ),
        (
            "[network]\npod_cdir = 1\n",
            "config.toml: network.pod_cdir: unknown key (did you mean 'pod_cidr'?)",
        ),
        ("colour = 1\n", "config.toml: colour: unknown key"),
        ("[ssh]\nuser = 5\n", "config.toml: ssh.user: expected a string, got integer 5"),
        ("[ssh]\nuse_agent = 1\n", "config.toml: ssh.use_agent: expected a boolean, got integer 1"),
        (
            '[ssh]\nagent_command = "python3 -m agent"\n',
            "config.toml: ssh.agent_command: expected an array of strings, got string 'python3 -m agent'",
        ),
        (
            '[ssh]\nconnect_timeout = "10 s"\n',
            'config.toml: ssh.connect_timeout: not a valid duration: \'10 s\' (use e.g. "15s", "5m", "1m30s")',
        ),
        (
            "[ssh]\nkeepalive_interval = 0\n",
            "config.toml: ssh.keepalive_interval: must be positive, got 0",
        ),
        (
            '[ssh]\nreconnect_backoff_max = "500ms"\n',
            "config.toml: ssh.reconnect_backoff_max: must not be less than reconnect_backoff_initial (0.5 < 1.0)",
        ),
        ("ssh = 3\n", "config.toml: ssh: expected a table, got integer 3"),
        (
            '[store]\nbackend = "redis"\n',
            'config.toml: store.backend: unknown backend \'redis\' (want "sqlite" or "etcd")',
        ),
        (
            '[store]\netcd_cert_file = "c.pem"\n',
            "config.toml: store.etcd_key_file: etcd_cert_file and etcd_key_file must be set together",
        ),
        (
            '[store]\netcd_ca_file = "ca.pem"\netcd_endpoints = ["http://127.0.0.1:2379"]\n',
            "config.toml: store.etcd_endpoints: 'http://127.0.0.1:2379' is plain HTTP but etcd TLS files are set (use https://)",
        ),
        (
            '[store]\netcd_endpoints = ["ftp://etcd:2379"]\n',
            "config.toml: store.etcd_endpoints: not a valid endpoint (want host:port): 'ftp://etcd:2379'",
        ),
        (
            '[store]\netcd_endpoints = ["http://etcd"]\n',
            "config.toml: store.etcd_endpoints: not a valid endpoint (want host:port): 'http://etcd'",
        ),
        (
            "[store]\ncompaction_keep = true\n",
            "config.toml: store.compaction_keep: expected an integer, got boolean True",
        ),
        (
            "[store]\ncompaction_keep = 0\n",
            "config.toml: store.compaction_keep: must be at least 1, got 0",
        ),
        (
            '[api]\nlisten = "6443"\n',
            'config.toml: api.listen: not a valid address (want "host:port", or "" to disable): \'6443\'',
        ),
        (
            '[api]\ntls_cert = "c.pem"\n',
            "config.toml: api.tls_key: tls_cert and tls_key must be set together",
        ),
        (
            "[scheduler]\npercentage_of_nodes_to_score = 101\n",
            "config.toml: scheduler.percentage_of_nodes_to_score: must be between 0 and 100, got 101",
        ),
        ('[[nodes]]\nhost = "h"\n', "config.toml: nodes[0].name: required"),
        ('[[nodes]]\nname = "n"\n', "config.toml: nodes[0].host: required"),
        (
            '[[nodes]]\nname = "Node_1"\nhost = "h"\n',
            "config.toml: nodes[0].name: not a valid node name (lowercase DNS subdomain): 'Node_1'",
        ),
        (
            '[[nodes]]\nname = "a"\nhost = "h"\n[[nodes]]\nname = "a"\nhost = "h"\n',
            "config.toml: nodes[1].name: duplicate node name 'a'",
        ),
        (
            '[[nodes]]\nname = "a"\nhost = "h"\nport = 70000\n',
            "config.toml: nodes[0].port: must be between 1 and 65535, got 70000",
        ),
        (
            '[[nodes]]\nname = "a"\nhost = "h"\nhostname = "x"\n',
            "config.toml: nodes[0].hostname: unknown key (did you mean 'host'?)",
        ),
        (
            '[[nodes]]\nname = "a"\nhost = "h"\nlabels = { "bad key" = "x" }\n',
            "config.toml: nodes[0].labels.bad key: not a valid label key",
        ),
        (
            '[[nodes]]\nname = "a"\nhost = "h"\ntaints = ["k=v:Sometimes"]\n',
            "config.toml: nodes[0].taints[0]: effect must be one of NoSchedule, PreferNoSchedule, NoExecute, got 'Sometimes'",
        ),
        (
            '[[nodes]]\nname = "a"\nhost = "h"\ntaints = ["novalue"]\n',
            "config.toml: nodes[0].taints[0]: expected \"key[=value]:Effect\", got 'novalue'",
        ),
        (
            '[nodes]\nname = "a"\n',
            "config.toml: nodes: expected an array of tables ([[nodes]]), got table",
        ),
        (
            '[[service_proxies]]\ncommand = ["p"]\n',
            "config.toml: service_proxies[0].name: required",
        ),
        ('[[service_proxies]]\nname = "p"\n', "config.toml: service_proxies[0].command: required"),
        (
            '[[service_proxies]]\nname = "Host"\ncommand = ["p"]\n',
            "config.toml: service_proxies[0].name: not a valid proxy name (lowercase DNS subdomain): 'Host'",
        ),
        (
            '[[service_proxies]]\nname = "h"\ncommand = ["p"]\n'
            '[[service_proxies]]\nname = "h"\ncommand = ["q"]\n',
            "config.toml: service_proxies[1].name: duplicate service proxy name 'h'",
        ),
        (
            '[[service_proxies]]\nname = "h"\ncommand = "python3 -m agent"\n',
            "config.toml: service_proxies[0].command: expected an array of strings, got string 'python3 -m agent'",
        ),
        (
            '[[service_proxies]]\nname = "h"\ncommand = []\n',
            'config.toml: service_proxies[0].command: must name a program: an argv array like ["python3", "-m", "agent"]',
        ),
        (
            '[[service_proxies]]\nname = "h"\ncommand = ["p"]\nargs = ["x"]\n',
            "config.toml: service_proxies[0].args: unknown key",
        ),
        (
            "[api.limits]\nwatch_buffer_bytes = 10\n",
            "config.toml: api.limits.watch_buffer_bytes: must be at least 65536, got 10",
        ),
        (
            '[api.limits]\nheader_timeout = "0s"\n',
            "config.toml: api.limits.header_timeout: must be positive, got 0.0",
        ),
        (
            'service_proxies = ["h"]\n',
            "config.toml: service_proxies[0]: expected a table, got string 'h'",
        ),
        (
            '[leader_election]\nrenew_deadline = "15s"\n',
            "config.toml: leader_election.renew_deadline: must be less than "
            "leader_election.lease_duration (15.0 >= 15.0)",
        ),
        (
            '[leader_election]\nretry_period = "9s"\n',
            "config.toml: leader_election.retry_period: must be less than "
            "leader_election.renew_deadline / 1.2 (9.0 * 1.2 >= 10.0)",
        ),
        (
            '[leader_election]\nlease_duration = "15.5s"\n',
            "config.toml: leader_election.lease_duration: must be a whole number of seconds, got 15.5",
        ),
        (
            '[leader_election]\nadvertise_url = "http://cp:6443"\n',
            "config.toml: leader_election.advertise_url: want \"https://host:port\": 'http://cp:6443'",
        ),
        (
            '[leader_election]\nidentity = "a b"\n',
            "config.toml: leader_election.identity: must be printable, without spaces, "
            "at most 253 characters: 'a b'",
        ),
    ],
)
def test_errors_name_key_and_reason(tmp_path: Path, text: str, message: str) -> None:
    msg = error_of(tmp_path, text)
    assert msg == f"{tmp_path / 'config.toml'}: {message.removeprefix('config.toml: ')}"


def test_relative_config_path_is_named_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("config.toml").write_text('[network]\nservice_cidr = "10.96.0.0/40"\n')
    with pytest.raises(
        ConfigError,
        match=re.escape("config.toml: network.service_cidr: not a valid CIDR: '10.96.0.0/40'"),
    ) as e:
        load_config(Path("config.toml"), data_dir=tmp_path)
    assert str(e.value).startswith("config.toml: ")


def test_invalid_toml(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "[ssh\nuser = 1\n")
    assert msg.startswith(f"{tmp_path / 'config.toml'}: invalid TOML: ")


def test_a_node_pod_cidr_is_one_free_block_of_the_cluster_range(tmp_path: Path) -> None:
    def nodes(*cidrs: str) -> str:
        return "".join(
            f'[[nodes]]\nname = "n{i}"\nhost = "h{i}"\npod_cidr = "{c}"\n'
            for i, c in enumerate(cidrs)
        )

    ok = tmp_path / "ok.toml"
    ok.write_text(nodes("10.244.3.0/24", "10.244.7.0/24"))
    assert [n.pod_cidr for n in load_config(ok).nodes] == ["10.244.3.0/24", "10.244.7.0/24"]
    for cidrs, why in (
        (("10.245.0.0/24",), "is not a /24 block of network.pod_cidr"),
        (("10.244.0.0/25",), "is not a /24 block of network.pod_cidr"),
        (("10.244.0.0/24", "10.244.0.0/24"), "is already another node's"),
        (("nope",), "not a valid CIDR"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(nodes(*cidrs))
        with pytest.raises(ConfigError, match="pod_cidr") as info:
            load_config(bad)
        assert why in str(info.value)


def test_the_cluster_dns_ttl_defaults_to_five_seconds_and_is_bounded(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    assert load_config(cfg).network.dns_ttl == 5
    cfg.write_text("[network]\ndns_ttl = 30\n")
    assert load_config(cfg).network.dns_ttl == 30
    cfg.write_text("[network]\ndns_ttl = -1\n")
    with pytest.raises(ConfigError, match="dns_ttl"):
        load_config(cfg)


def test_leader_election_defaults_and_durations(tmp_path: Path) -> None:
    assert load_config(None, data_dir=tmp_path).leader_election == LeaderElectionConfig(
        enabled=False, lease_duration=15.0, renew_deadline=10.0, retry_period=2.0
    )
    (tmp_path / "config.toml").write_text(
        '[leader_election]\nenabled = true\nlease_duration = 2\nrenew_deadline = "1500ms"\n'
        'retry_period = "0.3s"\nadvertise_url = "https://[::1]:6443/"\n'
    )
    le = load_config(None, data_dir=tmp_path).leader_election
    assert (le.enabled, le.lease_duration, le.renew_deadline, le.retry_period) == (
        True,
        2.0,
        1.5,
        0.3,
    )
    assert le.advertise_url == "https://[::1]:6443"
