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

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.localcluster.names import NEEDS_LOCAL_CLUSTER, cli, unique
from tests.localcluster.tmuxconsole import (
    NEEDS_TMUX,
    Tmux,
    attached,
    console_in_tmux,
    poll,
    prompt,
    rows,
    view,
)

NAMES = unique("tx")
# `e` runs $EDITOR on the object's YAML: this one raises a deployment from 1 to 3 replicas.
EDITOR = "sed -i -e 's/^  replicas: 1$/  replicas: 3/'"

pytestmark = [*NEEDS_LOCAL_CLUSTER, NEEDS_TMUX]

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


def _get(home: Path, *args: str) -> Any:
    r = cli(home, "get", *args, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


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
    with console_in_tmux(home, tmp_path, NAMES.cluster, editor=EDITOR) as tmux:
        yield tmux


def _select_deployment(tmux: Tmux, name: str) -> None:
    """The Deployments view, filtered to deployment `name` (the row under the cursor) at 1/1."""
    attached(tmux)
    view(tmux, "deploy", "Deployments")
    prompt(tmux, "/", name)
    poll(
        lambda: (
            f" Deployments  /{name}  1 rows" in (screen := tmux.screen())
            and [r[:3] for r in rows(screen, name)] == [["default", name, "1/1"]]
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

    view(console, "po", "Pods")

    def new_pod_running_on_screen() -> bool:
        shown = {c for row in rows(console.screen(), "Running") for c in row}
        pods = {c for c in shown if c.startswith(f"{name}-")}
        return first in pods and len(pods) == 2

    # No key pressed from here on: the view follows the watch.
    poll(
        new_pod_running_on_screen, "a second Running pod in the Pods view", describe=console.screen
    )
    assert len(running_pods()) == 2

    view(console, "no", "Nodes")
    poll(
        lambda: (
            [r[:2] for r in rows(console.screen(), "Ready")]
            == [["node1", "Ready"], ["node2", "Ready"]]
        ),
        "node1 and node2 Ready",
        describe=console.screen,
    )
    console.type("c")  # the cursor is on the first row, node1

    def cordoned_on_screen() -> bool:
        node1 = rows(console.screen(), "node1")
        return any(r[1] == "Ready,SchedulingDisabled" and "cordoned" in r for r in node1)

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
        lambda: any(r[2].endswith("/3") for r in rows(console.screen(), name)),
        f"{name} wanting 3",
        describe=console.screen,
    )
