"""`pilothouse node check`: what a node lacks to run the agent, each with its fix.

It logs in over SSH, as the node link will, and runs a probe with the node's
python3: the CRI calls of `control.nodes.cri` (its source, sent along: the
node need not have pilothouse installed), then the checks below, printed as
one JSON line.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from control.config import NodeConfig, SshConfig
from control.errors import TransportError
from control.nodes import cri
from control.nodes.ssh import AuthError, HostKeyError, SshTransport

CNI_PLUGINS = ("bridge", "host-local", "loopback")

# Runs after the source of control.nodes.cri, which defines CriClient,
# DEFAULT_CONTAINERD_SOCKET and rpc_error_detail.
# argv: agent module, socket (or ""), pause image, CNI dir, CNI plugin names...
_PROBE_MAIN = r"""
import importlib.util, os, sys
mod, sock, pause, cni_dir = sys.argv[1:5]
plugins = sys.argv[5:]
sock = sock or os.environ.get("PILOTHOUSE_CONTAINERD_SOCKET") or DEFAULT_CONTAINERD_SOCKET
out = {"python": sys.version.split()[0], "socket": sock}
out["agent"] = True
for m in dict.fromkeys([mod, "agent"]):
    try:
        found = importlib.util.find_spec(m)
    except Exception:
        found = None
    if found is None:
        out["agent"] = False
        out["agent_missing"] = m
out["socket_ok"] = os.path.exists(sock)
out["cni_missing"] = [p for p in plugins if not os.access(os.path.join(cni_dir, p), os.X_OK)]
try:
    import grpc
except ImportError as e:
    out["grpc_error"] = str(e)
else:
    if out["socket_ok"]:
        with CriClient(sock, timeout=5) as runtime:
            try:
                v = runtime.version()
                out["cri"] = "%s %s (CRI %s)" % (
                    v.get("runtime_name", "?"),
                    v.get("runtime_version", "?"),
                    v.get("runtime_api_version", "?"),
                )
            except Exception as e:
                out["cri_error"] = rpc_error_detail(e)
            try:
                out["pause"] = runtime.image_present(pause)
            except Exception as e:
                out["pause_error"] = rpc_error_detail(e)
print(json.dumps(out))
"""


def probe_script() -> str:
    """The probe's Python source: the CRI client, then the checks."""
    return inspect.getsource(cri) + _PROBE_MAIN


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _agent_module(command: Sequence[str]) -> str:
    args = list(command)
    if "-m" in args and args.index("-m") + 1 < len(args):
        return args[args.index("-m") + 1]
    return "agent"


async def check_node(
    node: NodeConfig,
    ssh: SshConfig,
    *,
    containerd_socket: str = "",
    pause_image: str = cri.PAUSE_IMAGE,
    cni_dir: str = cri.CNI_BIN_DIR,
) -> list[CheckResult]:
    """What `node` lacks to run the agent; each failed item carries a one-line fix."""
    transport = SshTransport(node, ssh)
    results: list[CheckResult] = []
    try:
        conn = await transport.connect()
    except TransportError as e:
        fix = "fix the SSH access first (host, port, known_hosts, authorized_keys)"
        if isinstance(e, HostKeyError):
            fix = "check the node's host key and add it to known_hosts"
        elif isinstance(e, AuthError):
            fix = f"add our public key to ~{transport.user}/.ssh/authorized_keys on the node"
        return [CheckResult("ssh", False, str(e), fix)]
    results.append(
        CheckResult("ssh", True, f"{transport.describe()}: connected, host key verified")
    )
    python = transport.command[0]
    try:
        args = [
            python,
            "-c",
            probe_script(),
            _agent_module(transport.command),
            containerd_socket,
            pause_image,
            cni_dir,
            *CNI_PLUGINS,
        ]
        r = await asyncio.wait_for(conn.run(shlex.join(args)), 30)
    finally:
        conn.close()
    if r.exit_status == 127 or (r.exit_status and not r.stdout):
        err = str(r.stderr or "").strip().splitlines()
        results.append(
            CheckResult(
                "python3",
                False,
                f"{python}: {err[-1] if err else f'exit {r.exit_status}'}",
                "apt-get install python3 python3-grpcio python3-protobuf",
            )
        )
        return results
    try:
        info: dict[str, Any] = json.loads(str(r.stdout).strip().splitlines()[-1])
    except (ValueError, IndexError):
        results.append(CheckResult("python3", False, f"unexpected output: {r.stdout!r}"))
        return results
    results.append(CheckResult("python3", True, f"{python}: Python {info['python']}"))
    results += _interpret(info, _agent_module(transport.command), pause_image, cni_dir)
    return results


def _interpret(info: dict[str, Any], mod: str, pause_image: str, cni_dir: str) -> list[CheckResult]:
    """The probe's findings as check results."""
    results = [
        CheckResult(
            "agent",
            bool(info.get("agent")),
            f"module {mod}"
            + ("" if info.get("agent") else f": {info.get('agent_missing', mod)} not found"),
            "install pilothouse on the node (pip install pilothouse), or put agent/ on its PYTHONPATH",
        )
    ]
    if "grpc_error" in info:
        results.append(
            CheckResult(
                "grpcio",
                False,
                info["grpc_error"],
                "apt-get install python3-grpcio python3-protobuf",
            )
        )
    sock = info.get("socket", "")
    results.append(
        CheckResult(
            "containerd",
            bool(info.get("socket_ok")),
            f"socket {sock}" + ("" if info.get("socket_ok") else " missing"),
            "apt-get install containerd runc && systemctl enable --now containerd",
        )
    )
    if info.get("socket_ok") and "grpc_error" not in info:
        results.append(
            CheckResult(
                "cri",
                "cri" in info,
                info.get("cri") or f"CRI runtime.v1 unavailable: {info.get('cri_error', '?')}",
                'remove "cri" from disabled_plugins in /etc/containerd/config.toml; '
                "restart containerd",
            )
        )
        results.append(
            CheckResult(
                "pause image",
                bool(info.get("pause")),
                pause_image
                + ("" if info.get("pause") else " not in containerd's k8s.io namespace"),
                f"import it: python3 -m agent.images /tmp/ph-images --import-to {sock}",
            )
        )
    missing = info.get("cni_missing") or []
    results.append(
        CheckResult(
            "cni plugins",
            not missing,
            f"{cni_dir}: "
            + (f"missing {', '.join(missing)}" if missing else ", ".join(CNI_PLUGINS)),
            "apt-get install containernetworking-plugins",
        )
    )
    return results
