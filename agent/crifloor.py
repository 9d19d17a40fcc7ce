"""`python3 -m agent.crifloor`: the bare CRI cost of starting one pod, for benchmarks.

Each sample is what the pod worker asks containerd for a one-container pod,
with the same sandbox and container configs: RunPodSandbox, then
CreateContainer and StartContainer (no image pull: the image must be here).
It works in rounds: each round starts N pods at once (N = 1 for the single-pod
floor; a node's share of a scale-up for the other) and prints one JSON line,
`{"wall_ms": ..., "samples": [{"sandbox_ms", "create_ms", "start_ms", "total_ms"}, ...]}`;
then it stops and removes what the round made, also when a call fails. The
rounds come from `--pods`, or one per line on stdin, so that a benchmark can
interleave them with its own measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.cri.client import CRIClient, CRIError
from agent.pods import spec as S

MAX_ROUNDS = 1000
MAX_PODS = 200
Obj = dict[str, Any]


def _pod(i: int, image: str, command: list[str]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"crifloor-{i}",
            "namespace": "pilothouse-crifloor",
            "uid": f"crifloor-{secrets.token_hex(8)}",
        },
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": image, "command": command}],
        },
    }


@dataclass(frozen=True)
class Setup:
    node: S.NodeConfig
    image: str
    command: list[str]


async def _sample(
    cri: CRIClient, setup: Setup, i: int, made: list[tuple[str, str]]
) -> dict[str, float]:
    """One pod; what it made goes into `made` as (sandbox id, container id)."""
    node, image = setup.node, setup.image
    pod = _pod(i, image, setup.command)
    cfg = S.sandbox_config(pod, node, 0)
    Path(cfg.log_directory, "app").mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - tiny
    t0 = time.perf_counter()
    sandbox_id = await cri.run_pod_sandbox(cfg)
    made.append((sandbox_id, ""))
    t1 = time.perf_counter()
    ip = (await cri.pod_sandbox_status(sandbox_id)).network.ip
    container = S.container_config(pod["spec"]["containers"][0], pod, image, 0, ip, node)
    t2 = time.perf_counter()
    cid = await cri.create_container(sandbox_id, container, cfg)
    made.append(("", cid))
    t3 = time.perf_counter()
    await cri.start_container(cid)
    t4 = time.perf_counter()
    return {
        "sandbox_ms": round((t1 - t0) * 1000, 2),
        "create_ms": round((t3 - t2) * 1000, 2),
        "start_ms": round((t4 - t3) * 1000, 2),
        "total_ms": round((t1 - t0 + t4 - t2) * 1000, 2),
    }


async def _clean(cri: CRIClient, made: list[tuple[str, str]]) -> None:
    for _, cid in made:
        if cid:
            with contextlib.suppress(CRIError):
                await cri.stop_container(cid, 0)
            with contextlib.suppress(CRIError):
                await cri.remove_container(cid)
    for sandbox_id, _ in made:
        if sandbox_id:
            with contextlib.suppress(CRIError):
                await cri.stop_pod_sandbox(sandbox_id)
            with contextlib.suppress(CRIError):
                await cri.remove_pod_sandbox(sandbox_id)
    made.clear()


async def _round(cri: CRIClient, setup: Setup, pods: int) -> Obj:
    """`pods` pods at once; then everything they made is removed."""
    made: list[tuple[str, str]] = []
    t0 = time.perf_counter()
    try:
        out = await asyncio.gather(*(_sample(cri, setup, i, made) for i in range(pods)))
        wall = time.perf_counter() - t0
    finally:
        await _clean(cri, made)
    return {"wall_ms": round(wall * 1000, 2), "samples": list(out)}


async def serve(
    socket: str,
    image: str,
    cgroup_parent: str,
    command: list[str],
    rounds: list[int] | None = None,
) -> None:
    """One round per entry of `rounds`, or else per line on stdin (the number of
    pods to start at once, until EOF); prints one JSON line per round."""
    image = S.normalize_image(image)
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="pilothouse-crifloor-") as tmp:
        node = S.NodeConfig(name="crifloor", state_dir=Path(tmp), cgroup_parent=cgroup_parent)
        setup = Setup(node, image, command)
        async with CRIClient(socket) as cri:
            if await cri.image_status(image) is None:
                raise SystemExit(f"image {image} is not present on {socket}")
            for n in range(MAX_ROUNDS):
                if rounds is not None:
                    if n >= len(rounds):
                        return
                    pods = rounds[n]
                else:
                    line = await loop.run_in_executor(None, sys.stdin.readline)
                    if not line.strip():
                        return
                    pods = int(line)
                if not 1 <= pods <= MAX_PODS:
                    raise SystemExit(f"pods per round must be between 1 and {MAX_PODS}")
                print(json.dumps(await _round(cri, setup, pods)), flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python3 -m agent.crifloor", description=__doc__)
    p.add_argument("--containerd-socket", required=True)
    p.add_argument("--image", default="docker.io/pilothouse/busybox:latest")
    p.add_argument("--cgroup-parent", default="")
    p.add_argument(
        "--command-json",
        default='["sleep", "3600"]',
        help="the container's command, as a JSON array",
    )
    p.add_argument(
        "--pods",
        type=int,
        action="append",
        help="run one round of this many pods at once (repeatable); default: read "
        "each round's count from stdin, one per line, until EOF",
    )
    args = p.parse_args(argv)
    try:
        command = [str(a) for a in json.loads(args.command_json)]
        asyncio.run(
            serve(args.containerd_socket, args.image, args.cgroup_parent, command, args.pods)
        )
    except CRIError as e:
        sys.exit(f"crifloor: {e}")


if __name__ == "__main__":
    main()
