"""The real `pilothouse` console in tmux, on a real `pilothouse up --nodes 2` cluster.

`up --no-console` leaves the control plane serving the test's own data dir;
plain `pilothouse`, started in a tmux server of the test's own (`tmux -L`) with
the same `PILOTHOUSE_HOME`, attaches to it. The test types keys with
`send-keys` and reads the screen with `capture-pane -p`, as a person would:

- `+` on a deployment adds a pod that turns Running, and the Pods view shows
  it without any refresh key;
- `c` on a node cordons it: the Nodes view shows SchedulingDisabled and the
  API agrees.

The tmux server is always killed and `down` always runs, even on failure.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.localcluster.names import NEEDS_LOCAL_CLUSTER, cli, unique
from tests.polling import eventually_blocking

NAMES = unique("tx")
PILOTHOUSE = Path(sys.executable).with_name("pilothouse")
# `e` runs $EDITOR on the object's YAML: this one raises a deployment from 1 to 3 replicas.
EDITOR = "sed -i -e 's/^  replicas: 1$/  replicas: 3/'"
DEADLINE = 60.0  # an offline node's first pod of a :latest image can take a while

pytestmark = [
    *NEEDS_LOCAL_CLUSTER,
    pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux"),
    pytest.mark.skipif(not PILOTHOUSE.exists(), reason="needs the installed pilothouse script"),
]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: sleep
        image: pilothouse/busybox:latest
        command: ["sleep", "3600"]
        resources:
          requests: {{cpu: 10m, memory: 16Mi}}
"""


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "PILOTHOUSE_HOME": str(home), "EDITOR": EDITOR}
    env.pop("KUBECONFIG", None)
    env.pop("VISUAL", None)
    return env


def _get(home: Path, *args: str) -> Any:
    r = cli(home, "get", *args, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# The screen follows the cluster within DEADLINE; tmux is read twice a second.
poll = functools.partial(eventually_blocking, within=DEADLINE, every=0.5)


@dataclass
class Tmux:
    """A tmux server of the test's own, running one program in session `ph`."""

    name: str
    path: Path | None = None  # the server's socket, known once it runs

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        r = subprocess.run(
            ["tmux", "-L", self.name, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        assert r.returncode == 0, f"tmux {' '.join(args)}: {r.stderr}"
        return r.stdout

    def keys(self, *keys: str) -> None:
        """Key names, as tmux names them (Enter, Escape)."""
        self.run("send-keys", "-t", "ph", *keys)

    def type(self, text: str) -> None:
        """Literal text, one key per character."""
        self.run("send-keys", "-t", "ph", "-l", text)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "ph")

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.name, "kill-server"],
            capture_output=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        if self.path is not None:
            self.path.unlink(missing_ok=True)  # kill-server leaves it behind


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running `up --nodes 2` cluster in its own data dir; always brought down."""
    home = tmp_path_factory.mktemp("tmux") / "home"
    try:
        r = cli(home, "up", "--nodes", "2", "--no-console", *NAMES.up_args(), timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        yield home
    finally:
        r = cli(home, "down")
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture
def console(home: Path, tmp_path: Path) -> Iterator[Tmux]:
    """The real `pilothouse` binary in a 200x50 tmux pane, attached to `home`'s cluster."""
    tmux = Tmux(f"ph-test-{NAMES.cluster}-{secrets.token_hex(2)}")
    conf = tmp_path / "tmux.conf"
    # Keep the pane after an exit, so that a crash leaves its traceback to read.
    conf.write_text("set -g remain-on-exit on\n")
    try:
        tmux.run(
            "-f",
            str(conf),
            "new-session",
            "-d",
            "-s",
            "ph",
            "-x",
            "200",
            "-y",
            "50",
            "-e",
            f"PILOTHOUSE_HOME={home}",
            "-e",
            f"EDITOR={EDITOR}",
            str(PILOTHOUSE),
            env=_env(home),
        )
        tmux.path = Path(tmux.run("display-message", "-p", "#{socket_path}").strip())
        yield tmux
    finally:
        tmux.kill()


def _rows(screen: str, word: str) -> list[list[str]]:
    """The screen's lines that hold `word` as a cell, split into cells."""
    rows = [line.replace("│", " ").split() for line in screen.splitlines()]
    return [r for r in rows if word in r]


def _prompt(tmux: Tmux, key: str, text: str) -> None:
    """`:` or `/`, `text` and Enter, sent at once: the console takes keys typed ahead."""
    tmux.type(key + text)
    tmux.keys("Enter")


def _view(tmux: Tmux, alias: str, title: str) -> None:
    _prompt(tmux, ":", alias)
    poll(lambda: f" {title} " in tmux.screen(), f"the {title} view", describe=tmux.screen)


def _select_deployment(tmux: Tmux, name: str) -> None:
    """The Deployments view, filtered to deployment `name` (the row under the cursor) at 1/1."""
    # The console attached to the cluster that `up` started, rather than hosting one.
    poll(lambda: "attached to" in tmux.screen(), "the console", describe=tmux.screen)
    _view(tmux, "deploy", "Deployments")
    _prompt(tmux, "/", name)
    poll(
        lambda: (
            f" Deployments  /{name}  1 rows" in (screen := tmux.screen())
            and [r[:3] for r in _rows(screen, name)] == [["default", name, "1/1"]]
        ),
        f"deployment {name} alone, at 1/1",
        describe=tmux.screen,
    )


def _apply_deployment(home: Path, tmp_path: Path, name: str) -> None:
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(DEPLOYMENT.format(name=name))
    r = cli(home, "apply", "-f", str(manifest))
    assert r.returncode == 0, r.stderr


def test_plus_adds_a_running_pod_and_cordon_shows(
    home: Path, console: Tmux, tmp_path: Path
) -> None:
    name = f"tx{NAMES.cluster[-4:]}"
    _apply_deployment(home, tmp_path, name)

    def running_pods() -> set[str]:
        return {
            p["metadata"]["name"]
            for p in _get(home, "pods", "-l", f"app={name}")["items"]
            if p.get("status", {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        }

    def pods_text() -> str:
        return cli(home, "get", "pods", "-o", "wide").stdout

    (first,) = poll(running_pods, "the first pod Running", describe=pods_text)

    _select_deployment(console, name)
    console.type("+")
    poll(
        lambda: _get(home, "deploy", name)["spec"]["replicas"] == 2,
        "replicas 2 in the API",
        describe=console.screen,
    )

    _view(console, "po", "Pods")

    def new_pod_running_on_screen() -> bool:
        shown = {c for row in _rows(console.screen(), "Running") for c in row}
        pods = {c for c in shown if c.startswith(f"{name}-")}
        return first in pods and len(pods) == 2

    # No key pressed from here on: the view follows the watch.
    poll(
        new_pod_running_on_screen, "a second Running pod in the Pods view", describe=console.screen
    )
    assert len(running_pods()) == 2

    _view(console, "no", "Nodes")
    poll(
        lambda: (
            [r[:2] for r in _rows(console.screen(), "Ready")]
            == [["node1", "Ready"], ["node2", "Ready"]]
        ),
        "node1 and node2 Ready",
        describe=console.screen,
    )
    console.type("c")  # the cursor is on the first row, node1

    def cordoned_on_screen() -> bool:
        rows = _rows(console.screen(), "node1")
        return any(r[1] == "Ready,SchedulingDisabled" and "cordoned" in r for r in rows)

    poll(cordoned_on_screen, "node1 cordoned in the Nodes view", describe=console.screen)
    assert _get(home, "node", "node1")["spec"].get("unschedulable") is True
    assert not _get(home, "node", "node2")["spec"].get("unschedulable")


def test_e_edits_in_the_editor_and_applies(home: Path, console: Tmux, tmp_path: Path) -> None:
    """The terminal goes to $EDITOR and back; the edited object is sent to the API."""
    name = f"ed{NAMES.cluster[-4:]}"
    _apply_deployment(home, tmp_path, name)
    _select_deployment(console, name)  # at 1/1: settled, no status write races the edit
    console.type("e")
    poll(
        lambda: _get(home, "deploy", name)["spec"]["replicas"] == 3,
        "replicas 3 in the API",
        describe=console.screen,
    )
    poll(
        lambda: f"deployment.apps/{name} edited" in console.screen(),
        "the edit's notification",
        describe=console.screen,
    )
    # The console has its screen back, live.
    poll(
        lambda: any(r[2].endswith("/3") for r in _rows(console.screen(), name)),
        f"{name} wanting 3",
        describe=console.screen,
    )
