"""Ingress end to end (issue 12): `pilothouse up --nodes 3`, whose first node
is the ingress node, two busybox httpd Deployments (alpha and bravo) whose
every file holds their own name, Ingresses in front of them, and what a client
on the host sees at the ingress node's address: routing by host and path, TLS
chosen by SNI with a Secret's certificate, the redirect to HTTPS, broken
Ingresses that warn without disturbing the others, the Ingress status, a
rolling update under load that fails no request, an HTTPRoute's 90/10 weights
through a Gateway's HTTP listener and its certificate on the Gateway's HTTPS
listener, the real console (in tmux) showing the route's live traffic and
moving it to 80/20 with `+`, and no HAProxy left after `down`.

One cluster serves the whole module (tests.localcluster.clicluster); the tests
run in order. Every request goes to the ingress node's own address and every
wait has a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from agent.ingress.selfsigned import self_signed_pem
from agent.protocol.ingress import HTTP_PORT, HTTPS_PORT
from console.bench import netprobe
from control.nodes.ingressroutes import CLASS_NAME, TLS_SECRET_TYPE
from control.nodes.nodeaddress import internal_ip
from control.objects.kinds import DEPLOYMENT, EVENT, HTTPROUTE, INGRESS, NODE, POD
from control.objects.routes import INGRESS_NODE_LABEL
from tests.localcluster import tmuxconsole
from tests.localcluster.clicluster import Cluster, cli_cluster, ok, poll, running_ready
from tests.localcluster.names import SHARED_CLUSTER_MODULE, unique
from tests.localcluster.traces import leftovers, running

pytestmark = SHARED_CLUSTER_MODULE

NAMES = unique("ing")
APPS = ("alpha", "bravo")
FILES = ("index.html", "api/x", "apiv2")  # what each app serves: its name, at every path
ROUTED = "a.example.test"  # / -> alpha, /api -> bravo
SECURE = "b.example.test"  # TLS, / -> bravo
NO_BACKEND = "c.example.test"  # -> a Service that does not exist
NO_SECRET = "d.example.test"  # TLS with a Secret that does not exist
SECRET_NAME = "secure-tls"
INGRESSES = ("routes", "secure")
ROLLING = "r.example.test"  # -> the `rolling` Deployment, updated under load
WEIGHTED = "w.example.test"  # an HTTPRoute: alpha 90, bravo 10; `+` in the console: 80/20
GATEWAY_SECRET = "gateway-tls"  # the Gateway's HTTPS listener's certificate, for WEIGHTED
# From `+` in the console to the data plane serving the new split.
SHIFT_SEEN_WITHIN = 10.0
# The load through a rolling update: a few clients until the update is over,
# bounded in count and time all the same.
ROLLOUT_CLIENTS = 4
ROLLOUT_MAX_REQUESTS = 20000
ROLLOUT_WITHIN = 90.0


def _meta(kind: str, name: str, api_version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}


def app(name: str, replicas: int = 1, pre_stop: int = 0) -> list[dict[str, Any]]:
    """A Deployment of busybox httpds answering `name` at every FILES path, and its
    Service. With `pre_stop`, a terminating pod keeps serving that many seconds
    (a preStop sleep, as real deployments have) while the proxies drop it."""
    labels = {"app": name}
    files = " ".join(FILES)
    script = (
        f"mkdir -p /tmp/www/api && for f in {files}; do echo {name} > /tmp/www/$f; done"
        # httpd as PID 1 would ignore SIGTERM; an app stops at once, as real ones do.
        " && httpd -f -p 80 -h /tmp/www & trap 'kill $!; exit 0' TERM; wait"
    )
    httpd = {
        "name": "httpd",
        "image": "pilothouse/busybox:latest",
        "command": ["sh", "-c", script],
        "ports": [{"containerPort": 80}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1},
    }
    if pre_stop:
        httpd["lifecycle"] = {"preStop": {"sleep": {"seconds": pre_stop}}}
    pod_spec = {"terminationGracePeriodSeconds": 2 + pre_stop, "containers": [httpd]}
    deployment = _meta("Deployment", name, "apps/v1") | {
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        }
    }
    service = _meta("Service", name) | {
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 80}]}
    }
    return [deployment, service]


def ingress(
    name: str, host: str, paths: dict[str, str], tls_secret: str | None = None
) -> dict[str, Any]:
    """An Ingress for one host: path (Prefix) -> Service name, port 80."""
    rule = {
        "host": host,
        "http": {
            "paths": [
                {
                    "path": path,
                    "pathType": "Prefix",
                    "backend": {"service": {"name": service, "port": {"number": 80}}},
                }
                for path, service in paths.items()
            ]
        },
    }
    spec: dict[str, Any] = {"rules": [rule]}
    if tls_secret:
        spec["tls"] = [{"hosts": [host], "secretName": tls_secret}]
    return _meta("Ingress", name, "networking.k8s.io/v1") | {"spec": spec}


def certificate_of(pem: str) -> str:
    """The certificate of a certificate-then-key PEM."""
    return pem[: pem.index("-----BEGIN PRIVATE KEY")]


def tls_secret(name: str, pem: str) -> dict[str, Any]:
    """A kubernetes.io/tls Secret from a certificate-then-key PEM."""
    split = pem.index("-----BEGIN PRIVATE KEY")
    data = {"tls.crt": pem[:split], "tls.key": pem[split:]}
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return _meta("Secret", name) | {"type": TLS_SECRET_TYPE, "data": encoded}


@dataclass
class Ingresses:
    """What the tests talk to, once the apps are Ready."""

    ip: str  # the ingress node's
    certificate: str  # the Secret's certificate, PEM
    gateway_pem: str  # the Gateway's HTTPS listener's certificate and key, PEM


@dataclass
class Answer:
    status: int
    location: str
    body: str


def ask(ip: str, host: str, path: str) -> Answer:
    """GET http://ip/path with Host: host (redirects not followed)."""
    conn = http.client.HTTPConnection(ip, HTTP_PORT, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host})
        return answer(conn.getresponse())
    finally:
        conn.close()


def ask_tls(ip: str, host: str, path: str, trusted: str) -> tuple[bytes, Answer]:
    """GET https://ip/path with SNI and Host `host`, verified against the
    `trusted` certificate: the certificate received (DER) and the answer."""
    context = ssl.create_default_context(cadata=trusted)
    with (
        socket.create_connection((ip, HTTPS_PORT), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        resp = http.client.HTTPResponse(tls)
        resp.begin()
        return der, answer(resp)


def answer(resp: http.client.HTTPResponse) -> Answer:
    return Answer(resp.status, resp.getheader("Location") or "", resp.read().decode().strip())


async def answered(ip: str, host: str, path: str, status: int, body: str | None = None) -> None:
    """Wait until http://host/path answers `status` (and `body`)."""

    async def probe() -> bool:
        try:
            got = await asyncio.to_thread(ask, ip, host, path)
        except OSError as e:  # the proxy not listening yet
            raise AssertionError(f"{host}{path}: {e}") from e
        assert got.status == status and body in (None, got.body), got
        return True

    await poll(probe, f"{host}{path} -> {status} {body or ''}", within=60)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with cli_cluster(tmp_path_factory.mktemp("ing") / "home", NAMES, 3) as c:
        yield c


async def apply(cluster: Cluster, name: str, objects: list[dict[str, Any]]) -> None:
    path = cluster.data_dir.parent / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    await ok(cluster.data_dir, "apply", "-f", str(path))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ingresses(cluster: Cluster) -> Ingresses:
    pem = self_signed_pem(SECURE, [SECURE])
    await apply(
        cluster,
        "ingresses",
        [
            *app("alpha"),
            *app("bravo"),
            tls_secret(SECRET_NAME, pem),
            ingress("routes", ROUTED, {"/": "alpha", "/api": "bravo"}),
            ingress("secure", SECURE, {"/": "bravo"}, tls_secret=SECRET_NAME),
        ],
    )

    async def apps_ready() -> bool:
        pods = (await cluster.api.list(POD, "default"))["items"]
        ready = {(p["metadata"].get("labels") or {}).get("app") for p in pods if running_ready(p)}
        return set(APPS) <= ready

    await poll(apps_ready, "the alpha and bravo pods Ready", within=120)
    nodes = (await cluster.api.list(NODE, label_selector=f"{INGRESS_NODE_LABEL}=true"))["items"]
    assert [internal_ip(n) for n in nodes] == [NAMES.node_ip(1)], (
        "the ingress nodes are not the first node alone"
    )
    return Ingresses(
        ip=NAMES.node_ip(1),
        certificate=certificate_of(pem),
        gateway_pem=self_signed_pem(WEIGHTED, [WEIGHTED]),
    )


async def routes_as_applied(s: Ingresses) -> None:
    """The `routes` Ingress: / -> alpha, /api (whole path elements) -> bravo."""
    await answered(s.ip, ROUTED, "/", 200, "alpha")
    for path, body in (("/api/x", "bravo"), ("/apiv2", "alpha"), ("/", "alpha")):
        got = await asyncio.to_thread(ask, s.ip, ROUTED, path)
        assert (got.status, got.body) == (200, body), (path, got)


async def tls_as_applied(s: Ingresses) -> None:
    """b.example.test over TLS: the Secret's certificate, and bravo behind it."""
    await answered(s.ip, SECURE, "/", 308)  # its table is served
    der, got = await asyncio.to_thread(ask_tls, s.ip, SECURE, "/", s.certificate)
    assert der == ssl.PEM_cert_to_DER_cert(s.certificate)
    assert (got.status, got.body) == (200, "bravo"), got


# -- the tests, in order ---------------------------------------------------------------------


async def test_an_ingress_routes_by_host_and_path(ingresses: Ingresses) -> None:
    # Both backends' endpoints have reached the proxy (each on its own push).
    await answered(ingresses.ip, ROUTED, "/api/x", 200, "bravo")
    await routes_as_applied(ingresses)
    unknown = await asyncio.to_thread(ask, ingresses.ip, "unknown.example.test", "/")
    assert unknown.status == 404, unknown


async def test_tls_serves_the_secrets_certificate_by_sni(ingresses: Ingresses) -> None:
    await tls_as_applied(ingresses)


async def test_plain_http_to_a_tls_host_redirects_to_https(ingresses: Ingresses) -> None:
    got = await asyncio.to_thread(ask, ingresses.ip, SECURE, "/x?y=1")
    assert got.status == 308, got
    assert got.location == f"https://{SECURE}/x?y=1", got


async def test_broken_ingresses_warn_and_leave_the_others_routing(
    cluster: Cluster, ingresses: Ingresses
) -> None:
    broken = {
        "no-backend": ("BackendNotFound", ingress("no-backend", NO_BACKEND, {"/": "missing"})),
        "no-secret": (
            "SecretNotFound",
            ingress("no-secret", NO_SECRET, {"/": "alpha"}, tls_secret="missing-tls"),
        ),
    }
    await apply(cluster, "broken", [obj for _, obj in broken.values()])

    async def warned() -> bool:
        events = (await cluster.api.list(EVENT, "default"))["items"]
        seen = {
            (e["involvedObject"]["name"], e["reason"])
            for e in events
            if e.get("type") == "Warning" and e["involvedObject"].get("kind") == "Ingress"
        }
        assert {(name, reason) for name, (reason, _) in broken.items()} <= seen, seen
        return True

    await poll(warned, "a Warning Event on each broken Ingress", within=30)
    await answered(ingresses.ip, NO_BACKEND, "/", 503)  # their table is served
    await routes_as_applied(ingresses)
    await tls_as_applied(ingresses)


async def test_the_ingress_status_lists_the_ingress_nodes_ip(
    cluster: Cluster, ingresses: Ingresses
) -> None:
    async def listed() -> bool:
        for name in INGRESSES:
            obj = await cluster.api.get(INGRESS, name, "default")
            status = (obj.get("status") or {}).get("loadBalancer") or {}
            assert status.get("ingress") == [{"ip": ingresses.ip}], (name, status)
        return True

    await poll(listed, "the ingress node's IP in each Ingress's status", within=30)


# -- rolling update under load, weights --------------------------------------------------------


def gateway_api(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _meta(kind, name, "gateway.networking.k8s.io/v1") | {"spec": spec}


async def load(
    ip: str,
    host: str,
    requests: int,
    clients: int,
    within: float,
    stop: asyncio.Event | None = None,
) -> dict[str, Any]:
    """GETs of http://ip/ with Host `host`, one connection each (netprobe's http
    mode): counts by body, errors by kind."""
    return await netprobe.http_load(
        [f"http://{ip}/"], requests, clients, within, host=host, stop=stop
    )


async def split(ip: str, host: str, requests: int = 1000) -> dict[str, float]:
    """The share of `requests` (in points, 0-100) each app answered; none may fail."""
    got = await load(ip, host, requests, 4, 60)
    assert got["errors"] == {} and got["requests"] == requests, got
    return {body: 100 * n / requests for body, n in got["bodies"].items()}


async def rolled_out(cluster: Cluster, name: str) -> bool:
    """The Deployment's update is over: every replica is new and available, and
    no old pod is left (terminating ones included)."""
    d = await cluster.api.get(DEPLOYMENT, name, "default")
    st, want = d.get("status") or {}, d["spec"]["replicas"]
    assert st.get("observedGeneration") == d["metadata"]["generation"], st
    assert st.get("updatedReplicas") == st.get("availableReplicas") == want, st
    pods = (await cluster.api.list(POD, "default", label_selector=f"app={name}"))["items"]
    assert len(pods) == want, [p["metadata"]["name"] for p in pods]
    return True


async def test_a_rolling_update_under_load_fails_no_request(
    cluster: Cluster, ingresses: Ingresses
) -> None:
    """Terminating pods leave the EndpointSlice's ready endpoints at once and keep
    serving through their preStop sleep, so HAProxy stops choosing them before
    they stop; a connection that fails anyway is retried on another server."""
    await apply(
        cluster,
        "rolling",
        [*app("rolling", replicas=3, pre_stop=2), ingress("rolling", ROLLING, {"/": "rolling"})],
    )
    await poll(lambda: rolled_out(cluster, "rolling"), "3 rolling pods Ready", within=120)
    await answered(ingresses.ip, ROLLING, "/", 200, "rolling")
    stop = asyncio.Event()
    traffic = asyncio.create_task(
        load(ingresses.ip, ROLLING, ROLLOUT_MAX_REQUESTS, ROLLOUT_CLIENTS, ROLLOUT_WITHIN, stop)
    )
    try:
        await asyncio.sleep(1)  # the load is on before the update starts
        await ok(cluster.data_dir, "rollout", "restart", "deployment/rolling")
        await poll(lambda: rolled_out(cluster, "rolling"), "the rolling update over", within=80)
        assert not traffic.done(), "the load ended before the update did"
    finally:
        stop.set()
        got = await traffic
    assert got["errors"] == {}, got
    assert got["requests"] >= 100 and got["bodies"] == {"rolling": got["requests"]}, got


async def test_an_httproute_splits_by_its_weights(cluster: Cluster, ingresses: Ingresses) -> None:
    """Through the Gateway's HTTP listener (its HTTPS one is the next test's)."""
    listeners = [
        {"name": "http", "port": HTTP_PORT, "protocol": "HTTP"},
        {
            "name": "https",
            "port": HTTPS_PORT,
            "protocol": "HTTPS",
            "hostname": WEIGHTED,
            "tls": {"mode": "Terminate", "certificateRefs": [{"name": GATEWAY_SECRET}]},
        },
    ]
    refs = [
        {"name": "alpha", "port": 80, "weight": 90},
        {"name": "bravo", "port": 80, "weight": 10},
    ]
    route_spec = {
        "parentRefs": [{"name": "gw"}],
        "hostnames": [WEIGHTED],
        "rules": [{"backendRefs": refs}],
    }
    await apply(
        cluster,
        "weighted",
        [
            tls_secret(GATEWAY_SECRET, ingresses.gateway_pem),
            gateway_api("Gateway", "gw", {"gatewayClassName": CLASS_NAME, "listeners": listeners}),
            gateway_api("HTTPRoute", "weighted", route_spec),
        ],
    )
    await answered(ingresses.ip, WEIGHTED, "/", 200)
    shares = await split(ingresses.ip, WEIGHTED)
    assert set(shares) == set(APPS) and abs(shares["alpha"] - 90) <= 5, shares


async def test_an_https_gateway_listener_serves_its_secrets_certificate(
    ingresses: Ingresses,
) -> None:
    """The HTTPRoute on the Gateway's HTTPS listener: the client checks the
    listener's Secret's certificate for the route's hostname."""
    trusted = certificate_of(ingresses.gateway_pem)

    async def served() -> bool:
        der, got = await asyncio.to_thread(ask_tls, ingresses.ip, WEIGHTED, "/", trusted)
        assert der == ssl.PEM_cert_to_DER_cert(trusted)
        assert got.status == 200 and got.body in APPS, got
        return True

    await poll(served, f"https://{WEIGHTED}/ with the Gateway's certificate", within=30)


# -- the console's `+` on the weighted route --------------------------------------------------


def route_cells(screen: str, route: str) -> list[list[str]]:
    """The Ingress routes view's rows of `route` ("httproute/NAME"), split into words."""
    return tmuxconsole.rows(screen, route)


def requests_per_second(cells: list[str]) -> float:
    """A route row's REQ/S: its first word of the form 12.3."""
    return next(float(c) for c in cells if re.fullmatch(r"\d+\.\d", c))


def toasts(screen: str) -> str:
    """The text of the screen's right half (where notifications show), wrapped
    lines joined: a notification wider than its toast is found whole."""
    return " ".join(" ".join(line[len(line) // 2 :].split()) for line in screen.splitlines())


async def stored_weights(cluster: Cluster, name: str) -> list[int]:
    obj = await cluster.api.get(HTTPROUTE, name, "default")
    return [int(r["weight"]) for r in obj["spec"]["rules"][0]["backendRefs"]]


@tmuxconsole.NEEDS_TMUX
async def test_plus_in_the_console_moves_the_split_to_80_20(
    cluster: Cluster, ingresses: Ingresses, tmp_path: Path
) -> None:
    """The real console, attached to this cluster: its Ingress routes view shows
    the weighted route's live traffic, and `+` on it moves 10 points to the
    last backend: stored, notified, and served within seconds."""
    route = "httproute/weighted"
    with tmuxconsole.console_in_tmux(cluster.data_dir, tmp_path, NAMES.cluster) as console:

        async def screen() -> str:
            return await asyncio.to_thread(console.screen)

        await asyncio.to_thread(tmuxconsole.attached, console)
        await asyncio.to_thread(tmuxconsole.view, console, "ing", "Ingress routes")
        await asyncio.to_thread(tmuxconsole.prompt, console, "/", "weighted")

        async def shown_at(percents: tuple[int, int]) -> bool:
            text = await screen()
            assert " Ingress routes  /weighted  " in text, text
            found = route_cells(text, route)
            want = ["alpha:80", f"{percents[0]}%,", "bravo:80", f"{percents[1]}%"]
            assert found and all(want == c[5:9] for c in found), found or text
            return True

        await poll(lambda: shown_at((90, 10)), f"{route} at 90/10 in the view", within=60)

        # Live traffic: the route's REQ/S turns non-zero while a load runs.
        stop = asyncio.Event()
        traffic = asyncio.create_task(load(ingresses.ip, WEIGHTED, 20000, 2, 60, stop))

        async def busy() -> bool:
            found = route_cells(await screen(), route)
            assert found and all(requests_per_second(c) > 0 for c in found), found
            return True

        try:
            await poll(busy, f"{route}'s req/s above 0 in the view", within=20)
        finally:
            stop.set()
            got = await traffic
        assert got["errors"] == {} and got["requests"] > 0, got

        pressed = time.monotonic()
        await asyncio.to_thread(console.type, "+")
        notified = f"{route} rule 0: alpha:80 80% / bravo:80 20%"
        await poll(
            lambda: notified in toasts(console.screen()),
            f"the notification {notified!r}",
            within=10,
        )
        assert await stored_weights(cluster, "weighted") == [80, 20]
        await poll(lambda: shown_at((80, 20)), f"{route} at 80/20 in the view", within=10)

    async def served_at_80_20() -> bool:
        probe = await split(ingresses.ip, WEIGHTED, 100)
        assert abs(probe.get("alpha", 0) - 80) <= 5, probe
        return True

    await poll(served_at_80_20, "the data plane at 80/20", within=SHIFT_SEEN_WITHIN)
    seen = time.monotonic() - pressed
    assert seen <= SHIFT_SEEN_WITHIN, f"80/20 served {seen:.1f} s after `+`"
    shares = await split(ingresses.ip, WEIGHTED)
    assert set(shares) == set(APPS) and abs(shares["alpha"] - 80) <= 5, shares


def haproxies(pids: set[int]) -> set[int]:
    found = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "haproxy":
                found.add(pid)
        except OSError:
            continue
    return found


async def test_down_leaves_no_haproxy(cluster: Cluster, ingresses: Ingresses) -> None:
    """Runs last: the ingress node's HAProxy runs until `down`, and nothing is left after it."""
    pids, pod_netns = await running(cluster.data_dir)
    assert haproxies(pids), "no HAProxy among the cluster's processes"
    await ok(cluster.data_dir, "down", "--data-dir", str(cluster.data_dir), within=180)
    assert leftovers(NAMES, cluster.data_dir, cluster.before, pids=pids, pod_netns=pod_netns) == {}
