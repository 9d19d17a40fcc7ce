"""`pilothouse serve` as a separate process, driven through the CLI as a user would."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import yaml

from tests.conftest import REPO, Served, pilothouse, start_serve, stop_serve

MANIFEST = textwrap.dedent(
    """\
    # A real-world shaped app: Deployment, Service and Ingress in one file.
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: {app: web}
      annotations:
        example.com/owner: team-a
    spec:
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: httpd
            image: pilothouse/busybox:latest
            imagePullPolicy: IfNotPresent
            command: ["httpd", "-f", "-p", "8080"]
            ports:
            - containerPort: 8080
              name: http
            env:
            - name: GREETING
              value: hello
            resources:
              requests: {cpu: 50m, memory: 32Mi}
              limits: {memory: 64Mi}
            readinessProbe:
              httpGet: {path: /, port: http}
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: web
    spec:
      selector: {app: web}
      ports:
      - name: http
        port: 80
        targetPort: http
    ---
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata:
      name: web
      annotations:
        nginx.ingress.kubernetes.io/rewrite-target: /
    spec:
      ingressClassName: pilothouse
      tls:
      - hosts: [web.example.test]
        secretName: web-tls
      rules:
      - host: web.example.test
        http:
          paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: web
                port: {number: 80}
    """
)


def test_apply_multi_document_and_get_defaults(served: Served, tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(MANIFEST)
    r = pilothouse(served, "apply", "-f", str(f))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "deployment.apps/web created",
        "service/web created",
        "ingress.networking.k8s.io/web created",
    ]

    d = yaml.safe_load(pilothouse(served, "get", "deploy", "web", "-o", "yaml").stdout)
    assert d["spec"]["replicas"] == 1
    assert d["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert d["spec"]["revisionHistoryLimit"] == 10
    pod_spec = d["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always"
    c = pod_spec["containers"][0]
    assert c["resources"]["limits"] == {"memory": "64Mi"}  # unknown-to-us fields are kept
    assert c["env"] == [{"name": "GREETING", "value": "hello"}]
    assert c["readinessProbe"]["periodSeconds"] == 10
    assert d["metadata"]["annotations"]["example.com/owner"] == "team-a"

    s = yaml.safe_load(pilothouse(served, "get", "svc", "web", "-o", "yaml").stdout)
    assert s["spec"]["type"] == "ClusterIP" and s["spec"]["clusterIP"].startswith("10.")
    assert s["spec"]["ports"][0]["protocol"] == "TCP"
    i = yaml.safe_load(pilothouse(served, "get", "ing", "web", "-o", "yaml").stdout)
    assert i["spec"]["rules"][0]["http"]["paths"][0]["pathType"] == "Prefix"

    # Applying again changes nothing; a changed file is configured.
    assert pilothouse(served, "apply", "-f", str(f)).stdout.count("unchanged") == 3
    f.write_text(MANIFEST.replace("value: hello", "value: bye"))
    assert "deployment.apps/web configured" in pilothouse(served, "apply", "-f", str(f)).stdout

    table = pilothouse(served, "get", "deployments").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:2] == ["web", "0/1"]

    r = pilothouse(served, "scale", "deployment/web", "--replicas=3")
    assert r.returncode == 0 and "scaled" in r.stdout
    assert (
        json.loads(pilothouse(served, "get", "deploy", "web", "-o", "json").stdout)["spec"][
            "replicas"
        ]
        == 3
    )
    # Apply does not take back replicas that the file never set.
    pilothouse(served, "apply", "-f", str(f))
    assert (
        json.loads(pilothouse(served, "get", "deploy", "web", "-o", "json").stdout)["spec"][
            "replicas"
        ]
        == 3
    )


def test_bad_manifest_is_rejected_with_field_path_and_store_unchanged(
    served: Served, tmp_path: Path
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(
        MANIFEST.replace("name: web\n  labels", "name: Web_Bad\n  labels", 1).replace(
            "        image: pilothouse/busybox:latest\n", "", 1
        )
    )
    before = pilothouse(served, "get", "deploy", "-o", "json").stdout
    r = pilothouse(served, "apply", "-f", str(f))
    assert r.returncode != 0
    assert "metadata.name: must be a DNS-1123 subdomain" in r.stderr
    assert "spec.template.spec.containers[0].image: required" in r.stderr
    assert "Traceback" not in r.stderr
    assert pilothouse(served, "get", "deploy", "-o", "json").stdout == before

    f.write_text("kind: [unclosed\n")
    r = pilothouse(served, "apply", "-f", str(f))
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_user_errors_are_one_line(served: Served) -> None:
    r = pilothouse(served, "get", "pods", "nope")
    assert r.returncode == 1
    assert r.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    r = pilothouse(served, "get", "widgets")
    assert (
        r.returncode == 1
        and r.stderr.strip() == 'error: the server doesn\'t have a resource type "widgets"'
    )
    r = pilothouse(served, "apply", "-f", "/nonexistent.yaml")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1


def test_more_user_errors_are_one_line(served: Served, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n---\n")
    r = pilothouse(served, "apply", "-f", str(empty))
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "error: no objects passed to apply\n")

    r = pilothouse(served, "get", "pods", "-n", "nowhere")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == 'Error from server (NotFound): namespaces "nowhere" not found\n'
    # An empty namespace that exists is no error, as kubectl says it.
    quiet = tmp_path / "quiet.yaml"
    quiet.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: quiet}\n")
    assert pilothouse(served, "apply", "-f", str(quiet)).returncode == 0
    r = pilothouse(served, "get", "pods", "-n", "quiet")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "No resources found in quiet namespace.\n")
    r = pilothouse(served, "get", "pods", "-n", "quiet", "-o", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["items"] == []

    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nclusters:\n- cluster: {server: [\n")
    r = pilothouse(served, "--kubeconfig", str(broken), "get", "pods")
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: {broken}: not valid YAML: line ")
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr


def test_second_serve_on_same_data_dir_fails_at_once(served: Served, tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "console",
            "serve",
            "--data-dir",
            str(served.data_dir),
            "--listen",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert r.returncode == 1
    assert str(served.data_dir) in r.stderr and "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 20
    # The first server is unharmed.
    assert pilothouse(served, "get", "ns").returncode == 0


def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    data = tmp_path / "data"
    served = start_serve(data, tmp_path / "serve.log")
    acked: list[str] = []
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from control.client import Client
        from control.objects.kinds import by_name
        CM = by_name("configmaps")
        async def main():
            async with Client({str(served.socket)!r}) as c:
                for i in range(100000):
                    await c.create(CM, {{"metadata": {{"name": f"cm-{{i}}"}}, "data": {{"i": str(i)}}}})
                    print(f"cm-{{i}}", flush=True)
        asyncio.run(main())
        """
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert writer.stdout is not None

    def read() -> None:
        assert writer.stdout is not None
        for line in writer.stdout:
            acked.append(line.strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while len(acked) < 300 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(acked) >= 300, "the writer made too little progress"
        stop_serve(served, signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
        reader.join(timeout=10)
    served = start_serve(data, tmp_path / "serve2.log")
    try:
        r = pilothouse(served, "get", "configmaps", "-o", "name")
        stored = {line.split("/", 1)[1] for line in r.stdout.splitlines()}
        missing = [name for name in acked if name not in stored]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    finally:
        stop_serve(served)
