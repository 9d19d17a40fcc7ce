"""`bench net`'s pure parts (no root): the addresses it moves an endpoint to,
the 1,000-Service table it syncs, and its report."""

from __future__ import annotations

import ipaddress

from console.bench import net
from control.localcluster.plan import make_plan


def test_propagation_addresses_are_the_clusters_but_no_nodes() -> None:
    plan = make_plan("t", 3, pod_cidr="10.250.0.0/16")
    addresses = net._unused_addresses(plan.pod_cidr, plan.node_cidr_mask)
    assert len(addresses) == len(set(addresses)) == 1 + net.PROPAGATION_SAMPLES
    pods = ipaddress.ip_network(plan.pod_cidr)
    slices = [ipaddress.ip_network(n.pod_cidr) for n in plan.nodes]
    for a in map(ipaddress.ip_address, addresses):
        assert a in pods and not any(a in s for s in slices)


def test_the_sync_table_is_1000_services_of_10_endpoints_in_the_clusters_ranges() -> None:
    table = net._table("10.96.0.0/12", "10.244.0.0/16", shift=1)
    assert len(table["services"]) == net.SYNC_SERVICES == 1000
    ips = [s["clusterIP"] for s in table["services"]]
    assert len(set(ips)) == 1000
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/12") for ip in ips)
    for entry in table["endpoints"]:
        got = [e["ip"] for e in entry["endpoints"]]
        assert len(got) == 10 and got == sorted(got, key=ipaddress.ip_address)
        assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.244.0.0/16") for ip in got)
    # Each sample loads different rules: the endpoints move.
    assert net._table("10.96.0.0/12", "10.244.0.0/16", shift=2) != table


def test_the_report_shows_each_figure_next_to_its_baseline() -> None:
    figures = {
        "nodes": 3,
        "clusterip_ratio": 0.91,
        "clusterip_rps": 910.0,
        "direct_rps": 1000.0,
        "clusterip_backends": 3,
        "clusterip_p99_ms": 12.0,
        "direct_p99_ms": 10.0,
        "dns_qps": 5000.0,
        "dns_errors": 0,
        "dns_p50_ms": 0.4,
        "dns_p99_ms": 2.5,
        "propagation_p50_ms": 120.0,
        "propagation_p99_ms": 300.0,
        "propagation_samples": 20,
        "sync_1k_services_ms": 450.0,
        "load_before": 1.0,
        "load_after": 2.0,
    }
    rows = {name.strip(): (value, base) for name, value, base in net._rows(figures)}
    value, base = rows["ClusterIP / pod IPs, requests/s"]
    assert value == "0.91" and "1000 req/s straight to the pods" in base
    assert rows["endpoint change -> all nodes' rules p50 / p99"][0] == "120 / 300 ms"
    assert "Kubernetes SLO p99 <= 30 s" in rows["endpoint change -> all nodes' rules p50 / p99"][1]
    assert rows["full sync, 1,000 Services x 10 endpoints"][0] == "450 ms"
