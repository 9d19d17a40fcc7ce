"""`python3 -m agent.crifloor`: the bare CRI cost of starting one pod, for benchmarks.

Each sample is what the pod worker asks containerd for a one-container pod,
with the same sandbox and container configs: RunPodSandbox, then
CreateContainer and StartContainer (no image pull: the image must be here).
Each sample's sandbox and container are stopped and removed before the next
one starts, also when a call fails. Prints one JSON object:
`{"samples": [{"sandbox_ms", "create_ms", "start_ms", "total_ms"}, ...]}`.
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
from pathlib import Path
from typing import Any

from agent.cri.client import CRIClient, CRIError
from agent.pods import spec as S

MAX_SAMPLES = 200


def _pod(i: int, image: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"crifloor-{i}",
            "namespace": "pilothouse-crifloor",
            "uid": f"crifloor-{secrets.token_hex(8)}",
        },
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": image, "command": ["sleep", "3600"]}],
        },
    }


async def _sample(cri: CRIClient, node: S.NodeConfig, i: int, image: str) -> dict[str, float]:
    pod = _pod(i, image)
    cfg = S.sandbox_config(pod, node, 0)
    Path(cfg.log_directory, "app").mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - tiny
    t0 = time.perf_counter()
    sandbox_id = await cri.run_pod_sandbox(cfg)
    cid = ""
    try:
        t1 = time.perf_counter()
        ip = (await cri.pod_sandbox_status(sandbox_id)).network.ip
        container = S.container_config(pod["spec"]["containers"][0], pod, image, 0, ip, node)
        t2 = time.perf_counter()
        cid = await cri.create_container(sandbox_id, container, cfg)
        t3 = time.perf_counter()
        await cri.start_container(cid)
        t4 = time.perf_counter()
    finally:
        if cid:
            with contextlib.suppress(CRIError):
                await cri.stop_container(cid, 0)
            with contextlib.suppress(CRIError):
                await cri.remove_container(cid)
        with contextlib.suppress(CRIError):
            await cri.stop_pod_sandbox(sandbox_id)
        with contextlib.suppress(CRIError):
            await cri.remove_pod_sandbox(sandbox_id)
    return {
        "sandbox_ms": round((t1 - t0) * 1000, 2),
        "create_ms": round((t3 - t2) * 1000, 2),
        "start_ms": round((t4 - t3) * 1000, 2),
        "total_ms": round((t1 - t0 + t4 - t2) * 1000, 2),
    }


async def measure(
    socket: str, image: str, samples: int, cgroup_parent: str
) -> list[dict[str, float]]:
    image = S.normalize_image(image)
    with tempfile.TemporaryDirectory(prefix="pilothouse-crifloor-") as tmp:
        node = S.NodeConfig(name="crifloor", state_dir=Path(tmp), cgroup_parent=cgroup_parent)
        async with CRIClient(socket) as cri:
            if await cri.image_status(image) is None:
                raise SystemExit(f"image {image} is not present on {socket}")
            return [await _sample(cri, node, i, image) for i in range(samples)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python3 -m agent.crifloor", description=__doc__)
    p.add_argument("--containerd-socket", required=True)
    p.add_argument("--image", default="docker.io/pilothouse/busybox:latest")
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--cgroup-parent", default="")
    args = p.parse_args(argv)
    if not 1 <= args.samples <= MAX_SAMPLES:
        p.error(f"--samples must be between 1 and {MAX_SAMPLES}")
    try:
        out = asyncio.run(
            measure(args.containerd_socket, args.image, args.samples, args.cgroup_parent)
        )
    except CRIError as e:
        sys.exit(f"crifloor: {e}")
    print(json.dumps({"samples": out}))


if __name__ == "__main__":
    main()
