"""Several control planes for a local cluster (`up --control-planes N`): N
`pilothouse serve` processes on an N-member etcd cluster, with leader election,
behind HAProxy.

Each control plane has a data dir of its own under the cluster's (config, API
socket, log) and its own HTTPS port, which it advertises to the others as the
leader. They share the CA, the server certificate and the tokens at the top of
the data dir, made here before any of them starts, so that a follower can pass
requests on to the leader and clients trust every one of them. The data dir's
kubeconfig points at HAProxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from control.api.pki import ensure_pki, ensure_tokens, write_kubeconfig
from control.config import LeaderElectionConfig
from control.localcluster.apiproxy import ensure_api_proxy, stop_api_proxy
from control.localcluster.clusterconfig import SharedStore, host_service_proxy, render_config
from control.localcluster.etcdmembers import ensure_members, stop_members
from control.localcluster.layout import Layout
from control.localcluster.plan import LOOPBACK, HaPlan, NodeState, Plan
from control.localcluster.proc import Progress, read_pid, stop_pid
from control.localcluster.serve import ensure_serving

WILDCARDS = ("", "0.0.0.0", "::")


def extra_names(ha: HaPlan) -> tuple[str, ...]:
    """Names the control planes' certificate needs besides loopback: HAProxy's
    address, which clients connect to (TLS passes through to the control plane)."""
    return () if ha.host in (*WILDCARDS, LOOPBACK) else (ha.host,)


def member_configs(
    lay: Layout,
    plan: Plan,
    ha: HaPlan,
    nodes: Sequence[NodeState],
    agent_command: Sequence[str],
    node_grace_period: float,
    leader_election: LeaderElectionConfig | None,
) -> dict[str, str]:
    """Each control plane's config, by member name: the same nodes, its own
    HTTPS port and identity, the shared etcd, CA and tokens."""
    election = leader_election or LeaderElectionConfig(enabled=True)
    return {
        m.name: render_config(
            lay,
            plan,
            nodes,
            agent_command,
            f"{LOOPBACK}:{m.https_port}",
            node_grace_period,
            service_proxies=[host_service_proxy()],
            shared=SharedStore(
                etcd_endpoints=ha.etcd_endpoints,
                pki_dir=lay.pki_dir,
                tokens_file=lay.tokens,
                identity=m.name,
                election=election,
                tls_san=extra_names(ha),
            ),
        )
        for m in ha.members
    }


async def ensure_control_planes(
    lay: Layout,
    ha: HaPlan,
    cluster: str,
    configs: Mapping[str, str],
    serve_command: Sequence[str],
    progress: Progress,
) -> tuple[int, ...]:
    """etcd, then each control plane on its config (`configs` by member name;
    `serve_command` with its own `--data-dir`), then HAProxy and the kubeconfigs;
    returns the control planes' pids."""
    pki = ensure_pki(lay.pki_dir, [LOOPBACK, *extra_names(ha)])
    tokens = ensure_tokens(lay.tokens)
    await ensure_members(lay, ha, cluster, progress)
    pids = []
    for m in ha.members:
        cl = lay.control_plane(m.name)
        argv = [*serve_command, "--data-dir", str(cl.data_dir)]
        pid = await ensure_serving(cl, argv, config=configs[m.name])
        progress(f"control plane {m.name}: serving on {m.https_url} (pid {pid})")
        pids.append(pid)
    await ensure_api_proxy(lay, ha, progress)
    write_kubeconfig(lay.kubeconfig, ha.api_url, pki.ca_pem, tokens.require_token("admin"))
    write_kubeconfig(
        lay.readonly_kubeconfig,
        ha.api_url,
        pki.ca_pem,
        tokens.require_token("readonly"),
        user="readonly",
    )
    return tuple(pids)


async def stop_control_planes(lay: Layout, ha: HaPlan, progress: Progress) -> None:
    """The control planes, HAProxy, then etcd: each by its pid. The control
    planes all at once: one by one, each would lead in turn, the leader
    releasing its lease as it stops, and reach for the nodes again."""

    async def stop(name: str) -> None:
        cl = lay.control_plane(name)
        pid = read_pid(cl.serve_pid)
        if pid is not None and await stop_pid(pid, str(cl.data_dir)):
            progress(f"control plane {name}: stopped (pid {pid})")

    await asyncio.gather(*(stop(m.name) for m in ha.members))
    await stop_api_proxy(lay, progress)
    await stop_members(lay, ha, progress)
