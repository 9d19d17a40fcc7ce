"""The real agent (`python -m agent --proxy-only --dns`) in a network namespace made
here (and always deleted), spoken to over its stdio: the service table it is sent
becomes nft rules in that namespace, and its cluster DNS answers from the table
at the clusterDNS address."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.protocol import Peer, hello
from agent.protocol.services import SERVICES_SYNC, SERVICES_UPDATE, ServiceTableWire

REPO = Path(__file__).resolve().parents[2]
CLUSTER_DNS = "10.96.0.10"

# Asks the cluster DNS for an A record over UDP or TCP; prints the answers as JSON.
DIG = """
import json, sys
from dnslib import DNSRecord
name, server, tcp = sys.argv[1], sys.argv[2], sys.argv[3] == "tcp"
reply = DNSRecord.parse(DNSRecord.question(name, "A").send(server, 53, tcp=tcp, timeout=5))
print(json.dumps({"rcode": reply.header.rcode, "answers": [str(rr.rdata) for rr in reply.rr]}))
"""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=60)


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    name = f"phproxy-{os.getpid()}"
    _run("ip", "netns", "add", name)
    try:
        _run("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        _run("ip", "netns", "del", name, check=False)


@pytest.fixture
async def proxy(netns: str, tmp_path: Path) -> AsyncIterator[tuple[Peer, Path]]:
    """The proxy-only agent in `netns`, and our end of its protocol (hello done)."""
    log = tmp_path / "agent.log"
    with log.open("w") as err:
        proc = await asyncio.create_subprocess_exec(
            *("ip", "netns", "exec", netns, sys.executable, "-m", "agent"),
            *("--proxy-only", "--dns", "--node-name", "host", "-v"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    assert proc.stdin is not None and proc.stdout is not None
    peer = Peer(proc.stdout, proc.stdin, name="test-control", request_timeout=30)
    reading = asyncio.create_task(peer.run())
    try:
        info = await hello(peer, "host")
        assert info.get("proxyOnly") is True
        yield peer, log
    finally:
        peer.close()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading


def table(*endpoint_ips: str) -> ServiceTableWire:
    return {
        "services": [
            {
                "namespace": "default",
                "name": "web",
                "type": "ClusterIP",
                "clusterIP": "10.96.0.20",
                "ports": [{"name": "http", "protocol": "TCP", "port": 80}],
                "sessionAffinity": "None",
                "sessionAffinityTimeoutSeconds": 10800,
            }
        ],
        "endpoints": [
            {
                "namespace": "default",
                "name": "web",
                "endpoints": [
                    {
                        "ip": ip,
                        "ready": True,
                        "serving": True,
                        "terminating": False,
                        "ports": {"http": 8080},
                    }
                    for ip in endpoint_ips
                ],
            }
        ],
    }


def nft_table(netns: str) -> str:
    return _run("ip", "netns", "exec", netns, "nft", "list", "table", "ip", "pilothouse").stdout


def dig(netns: str, name: str, transport: str) -> Any:
    out = _run(
        "ip", "netns", "exec", netns, sys.executable, "-c", DIG, name, CLUSTER_DNS, transport
    )
    return json.loads(out.stdout)


@pytest.mark.e2e
async def test_proxy_only_agent_loads_rules_and_answers_dns_in_its_netns(
    netns: str, proxy: tuple[Peer, Path]
) -> None:
    peer, log = proxy
    config = {
        "podCIDR": "",
        "nodeIP": "",
        "clusterCIDR": "10.244.0.0/16",
        "serviceCIDR": "10.96.0.0/16",
        "clusterDNS": CLUSTER_DNS,
        "clusterDomain": "cluster.local",
        "routes": [],
    }
    assert await peer.request("network_config", config) == {}, log.read_text()
    addresses = _run("ip", "-n", netns, "-4", "-o", "addr", "show", "dev", "ph-dns").stdout
    assert f"{CLUSTER_DNS}/32" in addresses
    # Idempotent: the same config again changes nothing and fails nothing.
    assert await peer.request("network_config", config) == {}

    sync = {"generation": 1, "table": table("10.244.1.2")}
    assert await peer.request(SERVICES_SYNC, sync) == {"generation": 1}
    rules = nft_table(netns)
    assert "10.96.0.20" in rules and "10.244.1.2" in rules and "10.244.0.0/16" in rules
    for transport in ("udp", "tcp"):
        reply = dig(netns, "web.default.svc.cluster.local", transport)
        assert reply == {"rcode": 0, "answers": ["10.96.0.20"]}, log.read_text()

    changes = [{"op": "setEndpoints", "endpoints": table("10.244.1.3")["endpoints"][0]}]
    update = {"generation": 2, "base": 1, "changes": changes}
    assert await peer.request(SERVICES_UPDATE, update) == {"generation": 2}
    rules = nft_table(netns)
    assert "10.244.1.3" in rules and "10.244.1.2" not in rules
