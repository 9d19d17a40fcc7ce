"""HAProxy in front of a local cluster's control planes: one address for the
API, whichever control planes are up.

TCP mode with TLS passed through (clients check the control planes' own
certificate, signed by the shared CA); each control plane is health-checked
on `/readyz` over TLS. A connection that a dead control plane refuses is
retried on another (`option redispatch`), so a new request never waits for
the health checks to notice.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import time
import urllib.request
from pathlib import Path

from control.localcluster import files
from control.localcluster.layout import Layout
from control.localcluster.plan import LOOPBACK, HaPlan
from control.localcluster.proc import (
    LocalClusterError,
    Progress,
    alive,
    read_pid,
    run,
    start_daemon,
    stop_pid,
)

START_TIMEOUT = 30.0
CHECK_INTERVAL = "1s"


def haproxy_binary() -> str:
    found = shutil.which("haproxy", path="/usr/sbin:/usr/bin:/sbin")
    if found is None:
        raise LocalClusterError("haproxy is not installed: apt-get install haproxy")
    return found


def render_haproxy_config(ha: HaPlan, ca_file: Path) -> str:
    servers = [
        f"    server {m.name} {LOOPBACK}:{m.https_port} check check-ssl verify required "
        f"ca-file {ca_file} inter {CHECK_INTERVAL} fall 2 rise 2"
        for m in ha.members
    ]
    return "\n".join(
        [
            "# Written by `pilothouse up`: the API of the local cluster's control planes.",
            "global",
            "    maxconn 4096",
            "",
            "defaults",
            "    mode tcp",
            "    timeout connect 2s",
            # Watches stay open for long.
            "    timeout client 1h",
            "    timeout server 1h",
            "    timeout check 2s",
            "    retries 3",
            "    option redispatch 1",
            "",
            "frontend api",
            f"    bind {ha.host}:{ha.port}",
            "    default_backend control_planes",
            "",
            "backend control_planes",
            "    balance roundrobin",
            "    option httpchk GET /readyz",
            "    http-check expect status 200",
            *servers,
            "",
        ]
    )


def _ready(url: str, ca_file: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2, context=context) as resp:
            return resp.status == 200
    except OSError:
        return False


async def ensure_api_proxy(lay: Layout, ha: HaPlan, progress: Progress) -> int:
    """HAProxy running on this config (restarted when it changed), and the API
    answering through it; returns its pid."""
    ca_file = lay.pki_dir / "ca.crt"
    config = render_haproxy_config(ha, ca_file)
    marker = str(lay.haproxy_config)
    pid = read_pid(lay.haproxy_pid)
    running = pid is not None and alive(pid, marker)
    same = lay.haproxy_config.exists() and lay.haproxy_config.read_text() == config
    if pid is not None and running and not same:
        await stop_pid(pid, marker)
        running = False
    if not running:
        files.write_private(lay.haproxy_config, config, 0o644)
        binary = haproxy_binary()
        await run([binary, "-c", "-q", "-f", str(lay.haproxy_config)])
        pid = start_daemon(
            [binary, "-db", "-f", str(lay.haproxy_config)], lay.haproxy_log, lay.haproxy_pid
        )
    assert pid is not None
    deadline = time.monotonic() + START_TIMEOUT
    while not await asyncio.to_thread(_ready, ha.api_url, ca_file):
        if not alive(pid, marker):
            raise LocalClusterError(f"haproxy exited; see {lay.haproxy_log}")
        if time.monotonic() > deadline:
            raise LocalClusterError(
                f"no API through haproxy at {ha.api_url}; see {lay.haproxy_log}"
            )
        await asyncio.sleep(0.2)
    progress(
        f"haproxy: the API at {ha.api_url} (pid {pid}), in front of "
        f"{len(ha.members)} control planes"
    )
    return pid


async def stop_api_proxy(lay: Layout, progress: Progress) -> None:
    pid = read_pid(lay.haproxy_pid)
    if pid is not None and await stop_pid(pid, str(lay.haproxy_config)):
        progress(f"haproxy: stopped (pid {pid})")
