"""The commands as a user runs them: `pilothouse up`, `get nodes`, `node check`, `down`.

`up` leaves `pilothouse serve` running; its node links reach the agents over
SSH, so the node turns Ready. `down` always runs, even when a step fails.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.localcluster.names import NEEDS_LOCAL_CLUSTER, cli, unique

NAMES = unique("cli")

pytestmark = [
    *NEEDS_LOCAL_CLUSTER,
]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    try:
        yield home
    finally:
        r = cli(home, "down")
        assert r.returncode == 0, r.stderr


def test_up_serves_a_ready_node_then_down_removes_it(home: Path) -> None:
    r = cli(home, "up", "--nodes", "1", "--no-console", *NAMES.up_args())
    assert r.returncode == 0, r.stderr
    assert f"config: {home / 'config.toml'}" in r.stdout
    assert f"node1: sshd listening on {NAMES.node_ip(1)}:22" in r.stderr

    # No flags: the CLI finds the cluster that `up` made, through PILOTHOUSE_HOME.
    deadline = time.monotonic() + 45
    while True:
        got = cli(home, "get", "nodes")
        assert got.returncode == 0, got.stderr
        if " Ready " in got.stdout:
            break
        assert time.monotonic() < deadline, got.stdout
        time.sleep(0.5)

    check = cli(home, "node", "check", "node1")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "MISSING" not in check.stdout

    again = cli(home, "up", "--nodes", "1", "--no-console", "--name", NAMES.cluster, "--listen", "")
    assert again.returncode == 0, again.stderr

    down = cli(home, "down")
    assert down.returncode == 0, down.stderr
    assert "removed" in down.stdout
    assert (
        f"ph-{NAMES.cluster}-node1"
        not in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert list(home.iterdir()) == []
    assert "no local cluster" in cli(home, "down").stdout


def test_node_check_names_what_is_missing(tmp_path: Path) -> None:
    # A node nobody listens for: the check stops at SSH with a fix.
    (tmp_path / "known_hosts").write_text("")
    (tmp_path / "config.toml").write_text(
        '[ssh]\nconnect_timeout = "2s"\n\n[[nodes]]\nname = "gone"\nhost = "127.0.0.1"\nport = 1\n'
    )
    r = cli(tmp_path, "node", "check", "gone")
    assert r.returncode == 1
    assert "MISSING  ssh" in r.stdout
    assert "fix:" in r.stdout
    r = cli(tmp_path, "node", "check", "nope")
    assert r.returncode == 1
    assert "no node 'nope'" in r.stderr
