"""The control plane's config file for a local cluster, its agents' command,
and the service proxy that lets the host itself reach ClusterIPs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from control.config import ConfigError, LeaderElectionConfig, parse_config
from control.localcluster import files
from control.localcluster.layout import Layout
from control.localcluster.plan import SSH_PORT, NodeState, Plan
from control.localcluster.proc import LocalClusterError
from control.objects.routes import INGRESS_NODE_LABEL

CONFIG_MARKER = "# Written by `pilothouse up`"
DEFAULT_NODE_GRACE_PERIOD = 40.0  # Kubernetes' node-monitor-grace-period
DEFAULT_BACKOFF_BASE = 10.0  # kubelet's first CrashLoopBackOff delay
AGENT_LAUNCHER = "control.localcluster.agent_launcher"
HOST_PROXY = "host"

# A `[[service_proxies]]` entry: its name and the argv the control plane runs locally.
ServiceProxy = tuple[str, Sequence[str]]


def agent_flags(node_grace_period: float, backoff_base: float) -> list[str]:
    """The agent options every local node runs with.

    - `--offline-registry`: the nodes have no route to any registry, so the
      agent never tries a pull; the images `up` imported are used as they are.
    - `--heartbeat-interval`: four heartbeats per grace period, as a node link's
      status writes, so that a live node never looks stale.
    - `--backoff-base`: the first restart back-off.
    - `--ingress`: every node can be an ingress node (harmless when no route
      table comes).
    """
    beat = min(10.0, node_grace_period / 4)
    return [
        "--offline-registry",
        "--heartbeat-interval",
        f"{beat:g}",
        "--backoff-base",
        f"{backoff_base:g}",
        "--ingress",
    ]


def default_agent_command(node_grace_period: float, backoff_base: float) -> list[str]:
    """The local launcher, which passes each node's settings on to `python3 -m agent`."""
    return [sys.executable, "-m", AGENT_LAUNCHER, *agent_flags(node_grace_period, backoff_base)]


def host_service_proxy() -> ServiceProxy:
    """An agent with no pods on the host itself, which keeps the host's service
    rules, so that an operator on the machine reaches ClusterIPs."""
    return HOST_PROXY, [sys.executable, "-m", "agent", "--proxy-only"]


@dataclass(frozen=True)
class SharedStore:
    """What the config of one of several control planes adds: the etcd cluster
    they share, the CA and tokens they share (for forwarding to the leader), and
    its own identity in the leader election."""

    etcd_endpoints: Sequence[str]
    pki_dir: Path
    tokens_file: Path
    identity: str
    election: LeaderElectionConfig
    tls_san: Sequence[str] = ()


def _shared_store_lines(shared: SharedStore) -> list[str]:
    e = shared.election
    lines = [
        f"pki_dir = {files.toml_str(str(shared.pki_dir))}",
        f"tokens_file = {files.toml_str(str(shared.tokens_file))}",
    ]
    if shared.tls_san:
        lines.append(f"tls_san = {files.toml_list(shared.tls_san)}")
    return [
        *lines,
        "",
        "[store]",
        'backend = "etcd"',
        f"etcd_endpoints = {files.toml_list(shared.etcd_endpoints)}",
        "",
        "[leader_election]",
        "enabled = true",
        f"identity = {files.toml_str(shared.identity)}",
        f"lease_duration = {e.lease_duration:g}",
        f"renew_deadline = {e.renew_deadline:g}",
        f"retry_period = {e.retry_period:g}",
        "",
    ]


def render_config(
    lay: Layout,
    plan: Plan,
    nodes: Sequence[NodeState],
    agent_command: Sequence[str],
    api_listen: str | None,
    node_grace_period: float,
    service_proxies: Sequence[ServiceProxy] = (),
    store_path: Path | None = None,
    shared: SharedStore | None = None,
) -> str:
    """The config that reaches `nodes` over SSH (none: a control plane with no
    node links), and runs `service_proxies`; its store at `store_path` (None:
    the data dir's), or in the etcd cluster of `shared`."""
    lines = [
        f"{CONFIG_MARKER} for local cluster {plan.cluster!r}; `pilothouse down` removes it.",
        "",
    ]
    if api_listen is not None or shared is not None:
        lines += ["[api]"]
        if api_listen is not None:
            lines += [f"listen = {files.toml_str(api_listen)}"]
        lines += _shared_store_lines(shared) if shared is not None else [""]
    if store_path is not None:
        lines += ["[store]", f"path = {files.toml_str(str(store_path))}", ""]
    lines += [
        "[ssh]",
        'user = "root"',
        f"identity_files = {files.toml_list([str(lay.client_key)])}",
        f"known_hosts = {files.toml_str(str(lay.known_hosts))}",
        "use_agent = false",
        f"agent_command = {files.toml_list(agent_command)}",
        "",
        "[network]",
        f"pod_cidr = {files.toml_str(plan.pod_cidr)}",
        f"node_cidr_mask = {plan.node_cidr_mask}",
        f"service_cidr = {files.toml_str(plan.service_cidr)}",
        "",
        "[controllers]",
        f'node_monitor_grace_period = "{node_grace_period:g}s"',
        "",
    ]
    for i, n in enumerate(nodes):
        labels = {"pilothouse.io/local-cluster": plan.cluster}
        if i == 0:  # the first node runs the ingress proxy
            labels[INGRESS_NODE_LABEL] = "true"
        lines += [
            "[[nodes]]",
            f"name = {files.toml_str(n.name)}",
            f"host = {files.toml_str(n.ip)}",
            f"port = {SSH_PORT}",
            'user = "root"',
            f"pod_cidr = {files.toml_str(n.pod_cidr)}",
            "labels = { "
            + ", ".join(f"{files.toml_str(k)} = {files.toml_str(v)}" for k, v in labels.items())
            + " }",
            "",
        ]
    for name, command in service_proxies:
        lines += [
            "[[service_proxies]]",
            f"name = {files.toml_str(name)}",
            f"command = {files.toml_list(command)}",
            "",
        ]
    return "\n".join(lines)


def check_config(text: str, path: Path) -> None:
    """Refuse a config the control plane would refuse, before starting anything."""
    try:
        parse_config(text, src=str(path), data_dir=path.parent)
    except ConfigError as e:
        raise LocalClusterError(str(e)) from None


def write_config(path: Path, text: str) -> bool:
    """Write the config; True when it changed."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    files.write_private(path, text)
    return True


def check_config_is_ours(path: Path) -> None:
    """Refuse to overwrite a config that `up` did not write."""
    try:
        first = path.read_text().splitlines()[:1]
    except FileNotFoundError:
        return
    if not first or not first[0].startswith(CONFIG_MARKER):
        raise LocalClusterError(
            f"{path} exists and was not written by `pilothouse up`; "
            "move it away or use another --data-dir"
        )
