"""`pilothouse bench ingress`: the Ingress data plane on a throwaway local
cluster of its own (brought up as `bench net` does, and always taken down).

Busybox httpd replicas behind a Service and an Ingress with an HTTP host and
a TLS host (a Secret holding a certificate made here), and a client pod.
Traffic comes from inside the client pod's network namespace (console.bench.
netprobe under nsenter), is bounded in count and time, and goes only to the
ingress node's address. Measures:

- ingress_ratio: requests/s through the Ingress over requests/s through a
  hand-configured HAProxy (a minimal config written here, pointing at the same
  pod IPs, run in the ingress node's network namespace on other ports, started
  and stopped by pid), same generator, one connection per request; rounds of
  one run each way, which side goes first alternating, and the figures of the
  round of median ratio, so that both sides see the same load and one noisy
  round does not decide; ingress_p99_ms;
- tls_handshakes_per_s: new TLS connections (one request each) per second
  through the Ingress's HTTPS frontend, against the hand HAProxy's with the
  same certificate;
- rollout_failed_requests: a rolling update of the Deployment (preStop sleep)
  while a load runs through the Ingress until the update is over.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from console.bench.net import Say, _netprobe, _say, _wait_pods, on_throwaway_cluster
from console.bench.pods import NODES_READY_WITHIN, _wait_nodes_ready
from control.client import Client
from control.localcluster.layout import Layout
from control.localcluster.plan import NodeState
from control.localcluster.proc import run
from control.localcluster.runcstate import container_netns
from control.localcluster.state import read_state
from control.objects.kinds import DEPLOYMENT, INGRESS, NAMESPACE, NODE, POD, SECRET, SERVICE
from control.operations.rollout import restart

NODES = 2
REPLICAS = 3
IMAGE = "pilothouse/busybox:latest"
HTTP_HOST = "web.bench.test"
TLS_HOST = "secure.bench.test"
HAND_HTTP_PORT = 18080  # the hand-configured HAProxy's, beside the Ingress's 80 and 443
HAND_HTTPS_PORT = 18443
PRE_STOP_SECONDS = 2
ROLLOUT_WITHIN = 120.0
SERVING_WITHIN = 60.0
GOAL_RATIO = 0.95
GOAL_FAILED = 0
STOP_WITHIN = 10.0  # a child asked to stop, before it is killed


@dataclass(frozen=True)
class Counts:
    http_requests: int = 2000  # per run; one run each way per round
    tls_requests: int = 300  # per run; one run each way per round
    # Many short rounds: the two runs of a round are a second or two apart, so the
    # machine's other jobs weigh on both alike, and the median drops the odd round.
    rounds: int = 9
    concurrency: int = 8
    within: float = 30.0  # seconds: the most one traffic run may take
    rollout_max_requests: int = 50000  # the load through the update stops when it is over


# -- objects ---------------------------------------------------------------------------


def certificate_pem(host: str) -> tuple[str, str]:
    """A new self-signed certificate for `host` and its key, PEM each."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    valid = (now - dt.timedelta(minutes=5), now + dt.timedelta(days=1))  # the bench's day
    serial = x509.random_serial_number()
    builder = x509.CertificateBuilder(name, name, key.public_key(), serial, *valid)
    sans = x509.SubjectAlternativeName([x509.DNSName(host)])
    cert = builder.add_extension(sans, critical=False).sign(key, hashes.SHA256())
    encoding = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(encoding).decode(), key_pem.decode()


def _objects(ns: str, cert: str, key: str) -> list[tuple[Any, dict[str, Any]]]:
    labels = {"app": "web"}
    meta = {"namespace": ns}
    # httpd as PID 1 would ignore SIGTERM: the shell stops it at once, as real apps stop.
    serve = (
        "mkdir -p /tmp/www && hostname > /tmp/www/index.html"
        " && httpd -f -p 80 -h /tmp/www & trap 'kill $!; exit 0' TERM; wait"
    )
    httpd = {
        "name": "httpd",
        "image": IMAGE,
        "command": ["sh", "-c", serve],
        "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1},
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
    }
    template = {
        "metadata": {"labels": labels},
        "spec": {"terminationGracePeriodSeconds": PRE_STOP_SECONDS + 3, "containers": [httpd]},
    }
    sleeper = {
        "name": "main",
        "image": IMAGE,
        "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
    }
    tls_data = {"tls.crt": cert, "tls.key": key}

    def rule(host: str) -> dict[str, Any]:
        backend = {"service": {"name": "web", "port": {"number": 80}}}
        path = {"path": "/", "pathType": "Prefix", "backend": backend}
        return {"host": host, "http": {"paths": [path]}}

    return [
        (
            DEPLOYMENT,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {**meta, "name": "web"},
                "spec": {
                    "replicas": REPLICAS,
                    "selector": {"matchLabels": labels},
                    "template": template,
                },
            },
        ),
        (
            SERVICE,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {**meta, "name": "web"},
                "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 80}]},
            },
        ),
        (
            SECRET,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {**meta, "name": "web-tls"},
                "type": "kubernetes.io/tls",
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in tls_data.items()},
            },
        ),
        (
            INGRESS,
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {**meta, "name": "web"},
                "spec": {
                    "tls": [{"hosts": [TLS_HOST], "secretName": "web-tls"}],
                    "rules": [rule(HTTP_HOST), rule(TLS_HOST)],
                },
            },
        ),
        (
            POD,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {**meta, "name": "client"},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [sleeper]},
            },
        ),
    ]


# -- the hand-configured HAProxy -----------------------------------------------------------


def hand_config(node_ip: str, pod_ips: list[str], crt: Path) -> str:
    """The least a person would write: the same pods, round robin, HTTP and TLS."""
    servers = "".join(f"    server p{i} {ip}:80\n" for i, ip in enumerate(pod_ips))
    return f"""defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend plain
    bind {node_ip}:{HAND_HTTP_PORT}
    bind {node_ip}:{HAND_HTTPS_PORT} ssl crt {crt}
    default_backend pods

backend pods
    balance roundrobin
{servers}"""


@contextlib.asynccontextmanager
async def hand_haproxy(
    node: NodeState, pod_ips: list[str], pem: str, workdir: Path, say: Say
) -> AsyncIterator[None]:
    """HAProxy on `hand_config` in the node's network namespace; stopped by its pid."""
    crt = workdir / "hand.pem"
    crt.write_text(pem)
    cfg = workdir / "hand.cfg"
    cfg.write_text(hand_config(node.ip, pod_ips, crt))
    await run(["haproxy", "-c", "-q", "-f", str(cfg)])
    argv = ["ip", "netns", "exec", node.netns, "haproxy", "-db", "-f", str(cfg)]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL
    )
    say(
        f"hand-configured HAProxy: pid {proc.pid}, {node.ip}:{HAND_HTTP_PORT} and :{HAND_HTTPS_PORT}"
    )
    try:
        yield
    finally:
        await _stop(proc, signal.SIGTERM)
        say(f"hand-configured HAProxy: pid {proc.pid} stopped")


async def _stop(proc: asyncio.subprocess.Process, how: signal.Signals) -> tuple[bytes, bytes]:
    """Sends `how` to the child (by its pid) and reads what it printed; kills it
    when it has not ended within STOP_WITHIN."""
    if proc.returncode is None:
        proc.send_signal(how)
    try:
        return await asyncio.wait_for(proc.communicate(), STOP_WITHIN)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"pid {proc.pid} did not end within {STOP_WITHIN:g} s") from None


# -- traffic from the client pod ---------------------------------------------------------


def _bounds(count: int, concurrency: int, within: float) -> list[str]:
    return ["--count", str(count), "--concurrency", str(concurrency), "--within", f"{within:g}"]


async def _serving(netns: Path, url: str, host: str, cafile: Path) -> None:
    """Until one GET of `url` with Host `host` answers 2xx."""
    deadline = time.monotonic() + SERVING_WITHIN
    while True:
        args = ["http", url, "--host", host, "--cafile", str(cafile), *_bounds(1, 1, 5)]
        result = await _netprobe(netns, *args)
        if result["requests"] == 1:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} (Host {host}) not answering: {result['errors']}")
        await asyncio.sleep(0.3)


@dataclass
class Round:
    """One run through the Ingress and one through the hand HAProxy, back to back."""

    ingress: dict[str, Any]
    hand: dict[str, Any]

    @property
    def ratio(self) -> float:
        return float(self.ingress["rps"]) / float(self.hand["rps"])


@dataclass
class Rounds:
    """Rounds of alternated runs; the figures are the median round's, so that one
    round disturbed by the machine's other jobs does not decide."""

    rounds: list[Round]

    def median(self) -> Round:
        """The round of the median ratio (the lower one of an even count)."""
        ordered = sorted(self.rounds, key=lambda r: r.ratio)
        return ordered[(len(ordered) - 1) // 2]

    def ratio(self) -> float:
        middle = self.median()
        return round(float(middle.ingress["rps"]) / float(middle.hand["rps"]), 3)

    def ratios(self) -> list[float]:
        return [round(r.ratio, 3) for r in self.rounds]

    def runs(self, side: str) -> list[dict[str, Any]]:
        return [getattr(r, side) for r in self.rounds]

    def p99(self, side: str) -> float:
        return max(float(r["p99_ms"]) for r in self.runs(side))

    def cpu_share(self) -> float:
        """The generator's CPU time over the runs' time: near 1, it limits the rate."""
        runs = self.runs("ingress") + self.runs("hand")
        return round(sum(r["cpu_seconds"] for r in runs) / sum(r["seconds"] for r in runs), 2)


async def measure(
    netns: Path, urls: tuple[str, str], host: str, cafile: Path, count: int, counts: Counts
) -> Rounds:
    """`counts.rounds` rounds of one run each way; which side goes first alternates."""
    rounds = []
    for i in range(counts.rounds):
        result: dict[str, dict[str, Any]] = {}
        sides = [("ingress", urls[0]), ("hand", urls[1])]
        for side, url in sides if i % 2 == 0 else sides[::-1]:
            args = ["http", url, "--host", host, "--cafile", str(cafile)]
            run_result = await _netprobe(
                netns, *args, *_bounds(count, counts.concurrency, counts.within)
            )
            if run_result["errors"]:
                raise RuntimeError(f"{url}: requests failed: {run_result['errors']}")
            result[side] = run_result
        rounds.append(Round(result["ingress"], result["hand"]))
    return Rounds(rounds)


async def _rolled_out(client: Client, ns: str) -> bool:
    d = await client.get(DEPLOYMENT, "web", ns)
    st = d.get("status") or {}
    pods = (await client.list(POD, ns, label_selector="app=web"))["items"]
    return (
        st.get("observedGeneration") == d["metadata"]["generation"]
        and st.get("updatedReplicas") == st.get("availableReplicas") == REPLICAS
        and len(pods) == REPLICAS
    )


async def rollout_under_load(
    client: Client, ns: str, netns: Path, url: str, counts: Counts
) -> tuple[dict[str, Any], float]:
    """A load through the Ingress from before `rollout restart` until the update is
    over (netprobe ends on SIGTERM with its figures); and the update's seconds."""
    args = ["http", url, "--host", HTTP_HOST]
    bounds = _bounds(counts.rollout_max_requests, counts.concurrency, ROLLOUT_WITHIN)
    argv = ["nsenter", f"--net={netns}", "--", sys.executable, "-m", "console.bench.netprobe"]
    proc = await asyncio.create_subprocess_exec(
        *argv, *args, *bounds, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        await asyncio.sleep(1)  # the load is on before the update starts
        t0 = time.monotonic()
        await restart(client, "web", ns)
        await asyncio.sleep(0.5)
        while not await _rolled_out(client, ns):
            if time.monotonic() - t0 > ROLLOUT_WITHIN or proc.returncode is not None:
                raise RuntimeError("the rolling update did not end while the load ran")
            await asyncio.sleep(0.2)
        seconds = time.monotonic() - t0
    except BaseException:
        await _stop(proc, signal.SIGKILL)
        raise
    out, err = await _stop(proc, signal.SIGTERM)
    if proc.returncode != 0:
        raise RuntimeError(f"netprobe: exit {proc.returncode}: {err.decode().strip()}")
    result: dict[str, Any] = json.loads(out)
    return result, round(seconds, 1)


# -- the run -------------------------------------------------------------------------------


async def _ingress_node(client: Client, data_dir: Path) -> NodeState:
    state = read_state(data_dir)
    if state is None:
        raise RuntimeError(f"no local cluster state in {data_dir}")
    nodes = (await client.list(NODE, label_selector="pilothouse.io/ingress=true"))["items"]
    names = [n["metadata"]["name"] for n in nodes if n["metadata"]["name"] in state.nodes]
    if not names:
        raise RuntimeError("no ingress node in the local cluster")
    return state.nodes[names[0]]


async def _bench(
    client: Client, data_dir: Path, workdir: Path, counts: Counts, say: Say
) -> dict[str, Any]:
    await _wait_nodes_ready(client, NODES, NODES_READY_WITHIN)
    node = await _ingress_node(client, data_dir)
    ns = f"bench-ing-{secrets.token_hex(3)}"
    await client.create(
        NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    cert, key = certificate_pem(TLS_HOST)
    cafile = workdir / "ca.pem"
    cafile.write_text(cert)
    for rt, obj in _objects(ns, cert, key):
        await client.create(rt, obj, ns)
    pods = await _wait_pods(client, ns, REPLICAS + 1)
    web = [p["status"]["podIP"] for p in pods if p["metadata"]["name"] != "client"]
    pod = next(p for p in pods if p["metadata"]["name"] == "client")
    cid = pod["status"]["containerStatuses"][0]["containerID"]
    netns = await asyncio.to_thread(container_netns, Layout(data_dir), pod["spec"]["nodeName"], cid)
    ip = node.ip
    http = (f"http://{ip}/", f"http://{ip}:{HAND_HTTP_PORT}/")
    https = (f"https://{ip}/", f"https://{ip}:{HAND_HTTPS_PORT}/")
    say(f"{len(web)} web pods and a client pod Ready; the ingress node {ip}")
    async with hand_haproxy(node, web, cert + key, workdir, say):
        for urls, host in ((http, HTTP_HOST), (https, TLS_HOST)):
            for url in urls:
                await _serving(netns, url, host, cafile)
        say(
            f"http: {counts.rounds} rounds of {counts.http_requests} requests through the Ingress"
            " and through the hand HAProxy, alternated ..."
        )
        plain = await measure(netns, http, HTTP_HOST, cafile, counts.http_requests, counts)
        say(
            f"tls: {counts.rounds} rounds of {counts.tls_requests} new TLS connections each way ..."
        )
        tls = await measure(netns, https, TLS_HOST, cafile, counts.tls_requests, counts)
    say("rollout: a rolling update of the web Deployment under load ...")
    rollout, rollout_s = await rollout_under_load(client, ns, netns, http[0], counts)
    middle, tls_middle = plain.median(), tls.median()
    return {
        "nodes": NODES,
        "replicas": REPLICAS,
        "rounds": counts.rounds,
        "ingress_ratio": plain.ratio(),
        "ingress_ratio_rounds": plain.ratios(),
        "ingress_rps": middle.ingress["rps"],
        "hand_rps": middle.hand["rps"],
        "ingress_p99_ms": plain.p99("ingress"),
        "hand_p99_ms": plain.p99("hand"),
        "generator_cpu_share": plain.cpu_share(),
        "ingress_backends": len({b for r in plain.runs("ingress") for b in r["bodies"]}),
        "tls_handshakes_per_s": tls_middle.ingress["rps"],
        "hand_tls_handshakes_per_s": tls_middle.hand["rps"],
        "tls_generator_cpu_share": tls.cpu_share(),
        "rollout_failed_requests": sum(rollout["errors"].values()),
        "rollout_errors": rollout["errors"],
        "rollout_requests": rollout["requests"],
        "rollout_seconds": rollout_s,
        "rollout_p99_ms": rollout["p99_ms"],
        "concurrency": counts.concurrency,
    }


def _rows(f: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (
            "Ingress / hand HAProxy, requests/s",
            f"{f['ingress_ratio']:.2f}",
            f"{f['ingress_rps']:.0f} vs {f['hand_rps']:.0f} req/s through a minimal HAProxy "
            f"on the same pods (baseline), median of {f['rounds']} rounds "
            f"({', '.join(f'{r:.2f}' for r in f['ingress_ratio_rounds'])}); goal >= {GOAL_RATIO}; "
            f"{f['ingress_backends']} replicas answered",
        ),
        (
            "  p99 per request, Ingress / hand",
            f"{f['ingress_p99_ms']:.1f} / {f['hand_p99_ms']:.1f} ms",
            f"one connection per request, {f['concurrency']} in flight, from a pod; "
            f"the generator used {f['generator_cpu_share']:.0%} of a core",
        ),
        (
            "new TLS connections/s, Ingress / hand",
            f"{f['tls_handshakes_per_s']:.0f} / {f['hand_tls_handshakes_per_s']:.0f}",
            f"P-256 certificate by SNI, one request each; "
            f"the generator used {f['tls_generator_cpu_share']:.0%} of a core",
        ),
        (
            "failed requests through a rolling update",
            f"{f['rollout_failed_requests']}",
            f"goal {GOAL_FAILED}; {f['rollout_requests']} requests in {f['rollout_seconds']:.0f} s, "
            f"{REPLICAS} replicas, preStop sleep {PRE_STOP_SECONDS} s; p99 {f['rollout_p99_ms']:.0f} ms",
        ),
        ("load average (1 min) before / after", f"{f['load_before']} / {f['load_after']}", ""),
    ]


async def run_bench_ingress(*, counts: Counts, as_json: bool, say: Say = _say) -> int:
    with tempfile.TemporaryDirectory(prefix="pilothouse-bench-ingress-") as tmp:
        return await on_throwaway_cluster(
            "pilothouse bench ingress (throwaway local cluster: HAProxy from Ingress objects)",
            NODES,
            lambda client, data_dir: _bench(client, data_dir, Path(tmp), counts, say),
            _rows,
            as_json=as_json,
            say=say,
        )
