"""What `pilothouse get` loads: the client side and its own command, nothing
else. (Every module a command imports is start-up time a user waits for.)"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path

from console.cli.main import Command, build_parser
from control.client import Client
from control.controlplane import ControlPlane
from tests.conftest import REPO
from tests.tui.helpers import make_pod

# Run `main` as the `pilothouse` script does, then print the modules loaded.
PROGRAM = """
import json, sys
from console.cli.main import main
code = None
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

SERVER_SIDE = (
    "control.api",
    "control.store",
    "control.machinery",
    "control.controllers",
    "control.scheduler",
    "control.nodes",
    "control.controlplane",
    "control.localcluster",
)
HEAVY = (
    "textual",
    "asyncssh",
    "cryptography",
    "pydantic",
    "uvloop",
    "console.tui",
    "console.bench",
)
OTHER_COMMANDS = (
    "console.cli.bench",
    "console.cli.cluster",
    "console.cli.nodes",
    "console.cli.pods",
    "console.cli.rollout",
    "console.cli.interactive",
    "console.cli.jobs",
    "control.operations.jobs",
    "control.operations.nodes",
    "control.operations.rollout",
    "control.operations.scale",
)


async def test_get_loads_no_server_side_and_no_heavy_modules(
    plane: ControlPlane, client: Client, tmp_path: Path
) -> None:
    await make_pod(client, "web-1")
    # The data dir's socket, found as `get` finds it with no flags.
    env = {**os.environ, "PILOTHOUSE_HOME": str(plane.socket_path.parent), "PYTHONPATH": str(REPO)}
    env.pop("KUBECONFIG", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PROGRAM,
        "get",
        "pods",
        "-A",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    *table, last = out.decode().splitlines()
    result = json.loads(last)
    assert result["code"] == 0, err.decode()
    assert table[0].split()[:2] == ["NAMESPACE", "NAME"] and "web-1" in table[1]
    modules = set(result["modules"])
    assert {"control.client", "console.cli.resources"} <= modules  # it did load what get needs
    loaded = sorted(
        m
        for m in modules
        if any(m == f or m.startswith(f + ".") for f in SERVER_SIDE + HEAVY + OTHER_COMMANDS)
    )
    assert loaded == []


def _commands(parser: argparse.ArgumentParser) -> list[Command]:
    """Every Command the parser (and the parsers under it) can run."""
    found = [parser.get_default("func")]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _commands(sub)
    return [c for c in found if c is not None]


def test_every_command_names_a_handler() -> None:
    commands = _commands(build_parser())
    assert len(commands) == 33  # create job is the 30th, migrate, bench failover, bench load
    for command in commands:
        handler = getattr(import_module(f"console.cli.{command.module}"), command.name)
        assert inspect.iscoroutinefunction(handler), command


def test_commands_print_no_library_warnings(tmp_path: Path) -> None:
    """asyncssh's import warns of DSA on the current cryptography: `down` (and
    every command that reaches a node) would print it on the user's terminal."""
    env = {**os.environ, "PILOTHOUSE_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    env.pop("PYTHONWARNINGS", None)
    # What `up`, `serve` and `node check` import, with every warning shown.
    imports = "import console.cli.cluster, console.cli.nodes, control.localcluster.cluster"
    imports += ", control.localcluster.files, control.nodes.ssh, control.controlplane"
    down, imported = (
        subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=60)
        for argv in (["-m", "console", "down"], ["-W", "always", "-c", imports])
    )
    assert (down.returncode, down.stderr) == (0, "")
    assert down.stdout.startswith("no local cluster")
    assert (imported.returncode, imported.stderr) == (0, "")
