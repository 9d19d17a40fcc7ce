"""Several control planes for a local cluster, without root: the plan's ports,
each control plane's config, and HAProxy's config (checked by HAProxy itself)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from control.api.pki import ensure_ca
from control.config import LeaderElectionConfig, load_config
from control.localcluster import clusterconfig as cc
from control.localcluster.apiproxy import render_haproxy_config
from control.localcluster.controlplanes import extra_names, member_configs
from control.localcluster.etcd import member_argv
from control.localcluster.layout import Layout
from control.localcluster.plan import make_ha_plan, make_plan
from control.localcluster.proc import LocalClusterError

SHORT = LeaderElectionConfig(enabled=True, lease_duration=4, renew_deadline=3, retry_period=1)


def test_one_control_plane_has_no_ha_plan() -> None:
    assert make_ha_plan("t", 1, None) is None
    assert make_ha_plan("t", 1, "") is None  # today's path: no TLS listener is fine


def test_ports_follow_the_api_address() -> None:
    ha = make_ha_plan("t", 3, "127.0.0.1:7000")
    assert ha is not None
    assert ha.api_url == "https://127.0.0.1:7000"
    assert [m.name for m in ha.members] == ["t-cp1", "t-cp2", "t-cp3"]
    assert [m.https_url for m in ha.members] == [
        "https://127.0.0.1:7001",
        "https://127.0.0.1:7002",
        "https://127.0.0.1:7003",
    ]
    assert ha.etcd_endpoints == (
        "http://127.0.0.1:7010",
        "http://127.0.0.1:7012",
        "http://127.0.0.1:7014",
    )
    assert ha.initial_cluster == (
        "t-cp1=http://127.0.0.1:7011,t-cp2=http://127.0.0.1:7013,t-cp3=http://127.0.0.1:7015"
    )
    default = make_ha_plan("t", 3, None)
    assert default is not None and default.port == 6443
    wildcard = make_ha_plan("t", 3, "0.0.0.0:6443")
    assert wildcard is not None and wildcard.api_url == "https://127.0.0.1:6443"
    assert extra_names(wildcard) == ()
    public = make_ha_plan("t", 3, "192.0.2.7:6443")
    assert public is not None and extra_names(public) == ("192.0.2.7",)


@pytest.mark.parametrize(
    ("count", "listen", "message"),
    [
        (2, None, "must be odd"),
        (9, None, "at most 7"),
        (0, None, "must be odd"),
        (3, "", "need an address for HAProxy"),
        (3, "127.0.0.1:0", "fixed port"),
        (3, "nonsense", "HOST:PORT"),
        (3, "127.0.0.1:65530", "no room"),
    ],
)
def test_bad_options_name_the_flag(count: int, listen: str | None, message: str) -> None:
    with pytest.raises(LocalClusterError, match=message):
        make_ha_plan("t", count, listen)


def test_each_control_plane_config_loads(tmp_path: Path) -> None:
    lay = Layout(tmp_path)
    plan = make_plan("t", 2, node_subnet="172.31.240.0/24", pod_cidr="10.250.0.0/16")
    ha = make_ha_plan("t", 3, "127.0.0.1:7000")
    assert ha is not None
    configs = member_configs(lay, plan, ha, plan.nodes, ["agent"], 12.0, SHORT)
    assert sorted(configs) == ["t-cp1", "t-cp2", "t-cp3"]
    for i, m in enumerate(ha.members, start=1):
        cl = lay.control_plane(m.name)
        cc.check_config(configs[m.name], cl.config)
        cc.write_config(cl.config, configs[m.name])
        config = load_config(None, data_dir=cl.data_dir)
        assert config.api.listen == f"127.0.0.1:{7000 + i}"
        assert (config.api.pki_dir, config.api.tokens_file) == (lay.pki_dir, lay.tokens)
        assert config.api.socket == cl.api_socket
        assert config.store.backend == "etcd"
        assert config.store.etcd_endpoints == ha.etcd_endpoints
        e = config.leader_election
        assert (e.enabled, e.identity, e.advertise_url) == (True, m.name, "")
        assert (e.lease_duration, e.renew_deadline, e.retry_period) == (4, 3, 1)
        assert [n.name for n in config.nodes] == ["node1", "node2"]
        assert [p.name for p in config.service_proxies] == [cc.HOST_PROXY]


def test_bad_election_timings_are_refused_before_anything_starts(tmp_path: Path) -> None:
    lay = Layout(tmp_path)
    plan = make_plan("t", 1, node_subnet="172.31.240.0/24", pod_cidr="10.250.0.0/16")
    ha = make_ha_plan("t", 3, "127.0.0.1:7000")
    assert ha is not None
    bad = LeaderElectionConfig(enabled=True, lease_duration=4, renew_deadline=5)
    configs = member_configs(lay, plan, ha, plan.nodes, ["agent"], 12.0, bad)
    with pytest.raises(LocalClusterError, match=r"leader_election\.renew_deadline"):
        cc.check_config(configs["t-cp1"], lay.control_plane("t-cp1").config)


def test_etcd_member_command_line() -> None:
    argv = member_argv(
        "etcd",
        "t-cp2",
        Path("/d"),
        client_url="http://127.0.0.1:7012",
        peer_url="http://127.0.0.1:7013",
        initial_cluster="t-cp1=a,t-cp2=b",
        cluster_token="pilothouse-t",
    )
    assert argv[:3] == ["etcd", "--name=t-cp2", "--data-dir=/d"]
    assert "--initial-cluster=t-cp1=a,t-cp2=b" in argv
    assert "--initial-cluster-token=pilothouse-t" in argv
    assert "--listen-peer-urls=http://127.0.0.1:7013" in argv


@pytest.mark.skipif(shutil.which("haproxy", path="/usr/sbin:/usr/bin") is None, reason="haproxy")
def test_haproxy_accepts_its_config(tmp_path: Path) -> None:
    ha = make_ha_plan("t", 3, "127.0.0.1:7000")
    assert ha is not None
    ensure_ca(tmp_path / "pki")
    text = render_haproxy_config(ha, tmp_path / "pki" / "ca.crt")
    assert "bind 127.0.0.1:7000" in text and "option httpchk GET /readyz" in text
    assert text.count("server t-cp") == 3
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    haproxy = shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    assert haproxy is not None
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr
