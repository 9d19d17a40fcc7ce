"""`pilothouse bench net`: Services on a throwaway local cluster of its own
(brought up as `bench pods` does, and always taken down).

Three busybox httpd replicas behind a ClusterIP Service, and a client pod.
Traffic comes from inside the client pod's network namespace (console.bench.
netprobe under nsenter), is bounded in count and time, and goes only to the
cluster's own addresses. Measures:

- clusterip_ratio: requests/s through the ClusterIP over requests/s straight
  to the pod IPs (the baseline), same generator, one connection per request,
  runs alternated so that both see the same load;
- dns_qps, dns_p99_ms: A queries for the Service's name to the cluster DNS;
- propagation_p99_ms: an endpoint change in the API (the EndpointSlice of a
  selector-less Service, rewritten with a new address) until every node's
  nftables rules hold it (`nft list` in each node's namespace);
- sync_1k_services_ms: one full `services_sync` of 1,000 Services x 10
  endpoints, to a proxy-only agent in a network namespace of its own, until
  it answers (its rules are in place then).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.protocol.hello import hello
from agent.protocol.peer import Peer
from console.bench.machine import describe_machine
from console.bench.pods import NODES_READY_WITHIN, _wait_nodes_ready, throwaway_cluster
from console.bench.report import median, percentile, print_report
from control.client import Client
from control.config import load_config
from control.localcluster.layout import Layout
from control.localcluster.proc import capture, run
from control.localcluster.runcstate import container_netns
from control.localcluster.state import read_state
from control.objects.discovery import LABEL_SERVICE_NAME
from control.objects.kinds import DEPLOYMENT, ENDPOINTSLICE, NAMESPACE, POD, SERVICE

NODES = 3
REPLICAS = 3
IMAGE = "pilothouse/busybox:latest"
HTTP_REQUESTS = 1500  # per run; two runs each way
HTTP_CONCURRENCY = 8
DNS_QUERIES = 5000
DNS_CONCURRENCY = 16
RUN_WITHIN = 30.0  # seconds: the most one traffic run may take
PROPAGATION_SAMPLES = 20
PROPAGATION_WITHIN = 30.0
SYNC_SERVICES = 1000
SYNC_ENDPOINTS = 10
SYNC_SAMPLES = 3
PODS_WITHIN = 120.0
# Kubernetes' network programming latency SLO: p99 <= 30 s.
K8S_PROGRAMMING_SLO_MS = 30000.0
GOAL_PROPAGATION_P99_MS = 1000.0
GOAL_DNS_P99_MS = 5.0
GOAL_SYNC_1K_MS = 1000.0

Say = Callable[[str], None]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- objects ---------------------------------------------------------------------------


def _objects(ns: str) -> list[tuple[Any, dict[str, Any]]]:
    labels = {"app": "web"}
    meta = {"namespace": ns}
    port = [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"}]
    serve = "mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"
    web = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**meta, "name": "web", "labels": labels},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [
                        {
                            "name": "httpd",
                            "image": IMAGE,
                            "command": ["sh", "-c", serve],
                            "readinessProbe": {
                                "httpGet": {"path": "/", "port": 80},
                                "periodSeconds": 1,
                            },
                        }
                    ],
                },
            },
        },
    }
    client = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**meta, "name": "client"},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "main",
                    "image": IMAGE,
                    "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                }
            ],
        },
    }
    return [
        (DEPLOYMENT, web),
        (POD, client),
        (
            SERVICE,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {**meta, "name": "web"},
                "spec": {"selector": labels, "ports": port},
            },
        ),
        # No selector: its EndpointSlice is this bench's to write.
        (
            SERVICE,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {**meta, "name": "moving"},
                "spec": {"ports": port},
            },
        ),
    ]


def _slice(ns: str, address: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"namespace": ns, "name": "moving-1", "labels": {LABEL_SERVICE_NAME: "moving"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
    }


def _ready(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
    )


async def _wait_pods(client: Client, ns: str, want: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + PODS_WITHIN
    while True:
        pods = (await client.list(POD, ns))["items"]
        ready = [p for p in pods if _ready(p) and not p["metadata"].get("deletionTimestamp")]
        if len(ready) >= want:
            return ready
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(ready)} of {want} pods Ready after {PODS_WITHIN:.0f} s")
        await asyncio.sleep(0.2)


# -- traffic from the client pod ----------------------------------------------------------


async def _netprobe(netns: Path, *args: str) -> dict[str, Any]:
    argv = ["nsenter", f"--net={netns}", "--", sys.executable, "-m", "console.bench.netprobe"]
    code, out, err = await capture([*argv, *args], within=RUN_WITHIN + 30)
    if code != 0:
        raise RuntimeError(f"netprobe {args[0]}: exit {code}: {err.strip()}")
    result: dict[str, Any] = json.loads(out)
    return result


def _bounds(count: int, concurrency: int) -> list[str]:
    return ["--count", str(count), "--concurrency", str(concurrency), "--within", f"{RUN_WITHIN:g}"]


@dataclass
class Http:
    direct_rps: float
    clusterip_rps: float
    clusterip_p99_ms: float
    direct_p99_ms: float
    backends: int  # replicas that answered through the ClusterIP


async def measure_http(netns: Path, cluster_ip: str, pod_ips: list[str]) -> Http:
    direct_urls = [f"http://{ip}/" for ip in pod_ips]
    runs: dict[str, list[dict[str, Any]]] = {"direct": [], "clusterip": []}
    for _ in range(2):
        for kind, urls in (("direct", direct_urls), ("clusterip", [f"http://{cluster_ip}/"])):
            result = await _netprobe(
                netns, "http", *urls, *_bounds(HTTP_REQUESTS, HTTP_CONCURRENCY)
            )
            if result["errors"]:
                raise RuntimeError(f"{kind} requests failed: {result['errors']}")
            runs[kind].append(result)

    def rps(kind: str) -> float:
        done = sum(r["requests"] for r in runs[kind])
        return round(done / sum(r["seconds"] for r in runs[kind]), 1)

    return Http(
        direct_rps=rps("direct"),
        clusterip_rps=rps("clusterip"),
        clusterip_p99_ms=max(r["p99_ms"] for r in runs["clusterip"]),
        direct_p99_ms=max(r["p99_ms"] for r in runs["direct"]),
        backends=len({b for r in runs["clusterip"] for b in r["bodies"]}),
    )


# -- endpoint change -> rules on every node ------------------------------------------------


def _mentions(rules: str, ip: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(ip)}(?![\d])", rules) is not None


async def _rules_hold(netns: str, ip: str, deadline: float) -> float:
    """Polls the node's rules until they name `ip`; the perf_counter time it saw that."""
    argv = ["ip", "netns", "exec", netns, "nft", "list", "table", "ip", "pilothouse"]
    while True:
        _, out, _ = await capture(argv)
        if _mentions(out, ip):
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ip} not in the service rules of {netns} in time")


def _unused_addresses(pod_cidr: str, node_cidr_mask: int) -> list[str]:
    """Addresses in the pod CIDR's first node-sized slice, which no node gets
    (slice N is node N's): the cluster's, and no pod's."""
    pods = ipaddress.ip_network(pod_cidr)
    size = 2 ** (pods.max_prefixlen - node_cidr_mask)
    start = pods.network_address + 2
    return [str(start + k) for k in range(min(size - 4, 1 + PROPAGATION_SAMPLES))]


async def measure_propagation(
    client: Client, ns: str, netns: list[str], addresses: list[str], say: Say
) -> list[float]:
    """ms from each EndpointSlice write to the last node's rules holding its new address."""
    samples: list[float] = []
    for address in addresses:
        t0 = time.perf_counter()
        endpoints = _slice(ns, address)["endpoints"]
        await client.patch(ENDPOINTSLICE, "moving-1", {"endpoints": endpoints}, ns)
        deadline = time.monotonic() + PROPAGATION_WITHIN
        seen = await asyncio.gather(*(_rules_hold(n, address, deadline) for n in netns))
        samples.append(round((max(seen) - t0) * 1000, 1))
    say(f"  propagation: {', '.join(f'{s:.0f}' for s in samples)} ms")
    return samples


# -- one node's full sync ----------------------------------------------------------------


def _table(service_cidr: str, pod_cidr: str, shift: int) -> dict[str, Any]:
    """1,000 Services x 10 endpoints in the cluster's ranges; `shift` moves the
    endpoints so that each sync loads different rules."""
    services, endpoints = [], []
    svc_net = ipaddress.ip_network(service_cidr)
    pod_net = ipaddress.ip_network(pod_cidr)
    if svc_net.num_addresses < 1000 + SYNC_SERVICES or pod_net.num_addresses < 61000:
        raise RuntimeError(f"{service_cidr} or {pod_cidr} is too small for the sync table")
    for i in range(SYNC_SERVICES):
        name = f"svc-{i}"
        services.append(
            {
                "namespace": "bench",
                "name": name,
                "type": "ClusterIP",
                "clusterIP": str(svc_net.network_address + 1000 + i),
                "ports": [{"name": "", "protocol": "TCP", "port": 80}],
                "sessionAffinity": "None",
                "sessionAffinityTimeoutSeconds": 10800,
            }
        )
        offsets = sorted((i * SYNC_ENDPOINTS + j + shift) % 60000 for j in range(SYNC_ENDPOINTS))
        eps = [
            {
                "ip": str(pod_net.network_address + 256 + offset),
                "ready": True,
                "serving": True,
                "terminating": False,
                "ports": {"": 8080},
            }
            for offset in offsets
        ]
        endpoints.append({"namespace": "bench", "name": name, "endpoints": eps})
    return {"services": services, "endpoints": endpoints}


@contextlib.asynccontextmanager
async def proxy_agent(say: Say) -> AsyncIterator[Peer]:
    """`python3 -m agent --proxy-only` in a network namespace of its own (so
    that its rules touch nothing else); the namespace always goes afterwards."""
    netns = f"ph-bench-{secrets.token_hex(3)}"
    await run(["ip", "netns", "add", netns])
    proc: asyncio.subprocess.Process | None = None
    try:
        proc = await asyncio.create_subprocess_exec(
            *["ip", "netns", "exec", netns, sys.executable, "-m", "agent", "--proxy-only"],
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdin is not None and proc.stdout is not None
        peer = Peer(proc.stdout, proc.stdin, name="bench proxy agent", request_timeout=120)
        task = asyncio.create_task(peer.run())
        try:
            yield peer
        finally:
            peer.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    finally:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await run(["ip", "netns", "delete", netns], check=False)
        say(f"  namespace {netns}: removed")


async def measure_sync(service_cidr: str, pod_cidr: str, say: Say) -> list[float]:
    samples: list[float] = []
    async with proxy_agent(say) as peer:
        await hello(peer, "bench-proxy")
        await peer.request(
            "network_config",
            {
                "podCIDR": "",
                "nodeIP": "",
                "clusterCIDR": pod_cidr,
                "serviceCIDR": service_cidr,
                "clusterDNS": "",
                "clusterDomain": "cluster.local",
                "routes": [],
            },
        )
        for generation in range(1, SYNC_SAMPLES + 1):
            table = _table(service_cidr, pod_cidr, shift=generation)
            t0 = time.perf_counter()
            answer = await peer.request(
                "services_sync", {"generation": generation, "table": table}, timeout=120
            )
            samples.append(round((time.perf_counter() - t0) * 1000, 1))
            if not isinstance(answer, dict) or answer.get("generation") != generation:
                raise RuntimeError(f"services_sync answered {answer!r} for {generation}")
    say(f"  full sync: {', '.join(f'{s:.0f}' for s in samples)} ms")
    return samples


# -- the run -------------------------------------------------------------------------------


async def _bench(client: Client, data_dir: Path, say: Say) -> dict[str, Any]:
    await _wait_nodes_ready(client, NODES, NODES_READY_WITHIN)
    state = read_state(data_dir)
    if state is None:
        raise RuntimeError(f"no local cluster state in {data_dir}")
    network = load_config(None, data_dir=data_dir).network
    ns = f"bench-net-{secrets.token_hex(3)}"
    await client.create(
        NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    for rt, obj in _objects(ns):
        await client.create(rt, obj, ns)
    addresses = _unused_addresses(state.pod_cidr, state.node_cidr_mask)
    await client.create(ENDPOINTSLICE, _slice(ns, addresses[0]), ns)
    pods = await _wait_pods(client, ns, REPLICAS + 1)
    web = [p for p in pods if (p["metadata"].get("labels") or {}).get("app") == "web"]
    pod = next(p for p in pods if p["metadata"]["name"] == "client")
    cid = pod["status"]["containerStatuses"][0]["containerID"]
    netns = await asyncio.to_thread(container_netns, Layout(data_dir), pod["spec"]["nodeName"], cid)
    svc = await client.get(SERVICE, "web", ns)
    cluster_ip = svc["spec"]["clusterIP"]
    say(f"{len(web)} web pods and a client pod Ready; ClusterIP {cluster_ip}")

    say(f"http: {HTTP_REQUESTS} requests x 2, straight to the pods and through {cluster_ip} ...")
    http = await measure_http(netns, cluster_ip, [p["status"]["podIP"] for p in web])
    say(f"dns: {DNS_QUERIES} queries to {network.cluster_dns} ...")
    name = f"web.{ns}.svc.{network.cluster_domain}"
    dns = await _netprobe(
        netns, "dns", network.cluster_dns, name, *_bounds(DNS_QUERIES, DNS_CONCURRENCY)
    )
    if dns["answers"].get(name, {}).get("a") != [cluster_ip]:
        raise RuntimeError(f"the cluster DNS answered {dns['answers']} for {name}")
    say(f"propagation: {PROPAGATION_SAMPLES} endpoint changes ...")
    node_netns = [n.netns for n in state.nodes.values()]
    await measure_propagation(client, ns, node_netns, addresses[:1], _quiet)  # settle
    propagation = await measure_propagation(client, ns, node_netns, addresses[1:], say)
    say(f"sync: {SYNC_SERVICES} Services x {SYNC_ENDPOINTS} endpoints, {SYNC_SAMPLES} times ...")
    sync = await measure_sync(state.service_cidr, state.pod_cidr, say)
    return {
        "nodes": NODES,
        "replicas": len(web),
        "clusterip_ratio": round(http.clusterip_rps / http.direct_rps, 3),
        "clusterip_rps": http.clusterip_rps,
        "direct_rps": http.direct_rps,
        "clusterip_p99_ms": http.clusterip_p99_ms,
        "direct_p99_ms": http.direct_p99_ms,
        "clusterip_backends": http.backends,
        "dns_qps": dns["qps"],
        "dns_p50_ms": dns["p50_ms"],
        "dns_p99_ms": dns["p99_ms"],
        "dns_errors": sum(dns["errors"].values()),
        "propagation_p50_ms": round(percentile(propagation, 50), 1),
        "propagation_p99_ms": round(percentile(propagation, 99), 1),
        "propagation_samples": len(propagation),
        "sync_1k_services_ms": round(median(sync), 1),
        "sync_samples_ms": sync,
    }


def _quiet(_: str) -> None:
    pass


def _rows(f: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (
            "ClusterIP / pod IPs, requests/s",
            f"{f['clusterip_ratio']:.2f}",
            f"{f['clusterip_rps']:.0f} vs {f['direct_rps']:.0f} req/s straight to the pods "
            f"(baseline, 1.00 = free); {f['clusterip_backends']} replicas answered",
        ),
        (
            "  p99 per request, ClusterIP / pod IPs",
            f"{f['clusterip_p99_ms']:.1f} / {f['direct_p99_ms']:.1f} ms",
            f"one connection per request, {HTTP_CONCURRENCY} in flight, from a pod",
        ),
        (
            "cluster DNS queries/s",
            f"{f['dns_qps']:.0f}",
            f"A queries from a pod, {DNS_CONCURRENCY} in flight; {f['dns_errors']} unanswered",
        ),
        (
            "cluster DNS p50 / p99",
            f"{f['dns_p50_ms']:.2f} / {f['dns_p99_ms']:.2f} ms",
            f"goal p99 <= {GOAL_DNS_P99_MS:.0f} ms",
        ),
        (
            "endpoint change -> all nodes' rules p50 / p99",
            f"{f['propagation_p50_ms']:.0f} / {f['propagation_p99_ms']:.0f} ms",
            f"Kubernetes SLO p99 <= {K8S_PROGRAMMING_SLO_MS / 1000:.0f} s; goal p99 <= "
            f"{GOAL_PROPAGATION_P99_MS:.0f} ms ({f['propagation_samples']} changes, {f['nodes']} nodes)",
        ),
        (
            f"full sync, {SYNC_SERVICES:,} Services x {SYNC_ENDPOINTS} endpoints",
            f"{f['sync_1k_services_ms']:.0f} ms",
            f"median of {SYNC_SAMPLES}; request -> rules in place; goal <= {GOAL_SYNC_1K_MS:.0f} ms",
        ),
        ("load average (1 min) before / after", f"{f['load_before']} / {f['load_after']}", ""),
    ]


async def on_throwaway_cluster(
    title: str,
    nodes: int,
    bench: Callable[[Client, Path], Awaitable[dict[str, Any]]],
    rows: Callable[[dict[str, Any]], list[tuple[str, str, str]]],
    *,
    as_json: bool,
    say: Say,
) -> int:
    """Runs `bench` on a throwaway local cluster of `nodes` (always taken down)
    and prints its figures, with the load average before and after."""
    if os.geteuid() != 0:
        raise RuntimeError("needs root: it brings up a local cluster")
    load_before = round(os.getloadavg()[0], 2)
    async with throwaway_cluster(nodes, say) as target:
        assert target.data_dir is not None
        figures = await bench(target.client, target.data_dir)
    figures["load_before"] = load_before
    figures["load_after"] = round(os.getloadavg()[0], 2)
    print_report(title, describe_machine(), rows(figures), figures, as_json)
    return 0


async def run_bench_net(*, as_json: bool, say: Say = _say) -> int:
    return await on_throwaway_cluster(
        "pilothouse bench net (throwaway local cluster: nftables service rules, cluster DNS)",
        NODES,
        lambda client, data_dir: _bench(client, data_dir, say),
        _rows,
        as_json=as_json,
        say=say,
    )
