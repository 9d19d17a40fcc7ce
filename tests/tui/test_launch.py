"""`pilothouse` with no command: attach when the data dir's socket answers, else host."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.cli.main import build_parser
from console.tui import launch
from console.tui.app import PilothouseApp
from console.tui.hosted import socket_answers
from control.api.pki import write_kubeconfig
from control.controlplane import ControlPlane
from control.localcluster.layout import Layout
from control.localcluster.state import State
from control.objects import kinds

REPO = Path(__file__).resolve().parents[2]


def test_help_still_works_and_lists_the_console_flags() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "console", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert out.returncode == 0
    assert "--readonly" in out.stdout and "--server URL|SOCKET" in out.stdout
    assert "serve" in out.stdout and "apply" in out.stdout


def test_subcommands_keep_their_flags() -> None:
    args = build_parser().parse_args(["get", "pods", "--server", "/x.sock"])
    assert args.server == "/x.sock" and args.command == "get"
    args = build_parser().parse_args(["--readonly", "--server", "/y.sock"])
    assert args.command is None and args.readonly and args.tui_server == "/y.sock"


async def test_attaches_when_the_data_dir_socket_answers(
    plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[PilothouseApp] = []

    async def fake_run(self: PilothouseApp) -> None:
        seen.append(self)
        await self.client.list(kinds.NAMESPACE)
        await self.client.close()

    monkeypatch.setattr(PilothouseApp, "run_async", fake_run)
    args = build_parser().parse_args(["--data-dir", str(plane.config.data_dir), "--readonly"])
    assert await launch.run_console(args) == 0
    (app,) = seen
    assert app.client.server == str(plane.socket_path)
    assert app.readonly and app.info.startswith("attached")


async def test_hosts_a_control_plane_when_none_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text('[api]\nlisten = ""\n')
    names: list[str] = []

    async def fake_run(self: PilothouseApp) -> None:
        listed = await self.client.list(kinds.NAMESPACE)
        names.extend(n["metadata"]["name"] for n in listed["items"])
        await self.client.close()

    monkeypatch.setattr(PilothouseApp, "run_async", fake_run)
    monkeypatch.setattr(launch, "_log_to_file", lambda path: None)
    args = build_parser().parse_args(["--data-dir", str(tmp_path)])
    assert await launch.run_console(args) == 0
    assert "default" in names
    assert not socket_answers(tmp_path / "api.sock")  # stopped with the console


async def test_attaches_through_haproxy_to_a_local_cluster_of_several_control_planes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`up --control-planes 3` leaves no socket in the data dir: the console
    goes through the kubeconfig to HAProxy rather than host a control plane."""
    lay = Layout(tmp_path)
    state = State("t", "phbr-t", "172.31.240.0/24", "10.250.0.0/16", 24)
    state.control_planes, state.api_listen = 3, "127.0.0.1:7000"
    lay.root.mkdir()
    state.save(lay.state)
    write_kubeconfig(lay.kubeconfig, "https://127.0.0.1:7000", None, "token")
    seen: list[PilothouseApp] = []

    async def fake_run(self: PilothouseApp) -> None:
        seen.append(self)

    monkeypatch.setattr(PilothouseApp, "run_async", fake_run)
    args = build_parser().parse_args(["--data-dir", str(tmp_path)])
    assert await launch.run_console(args) == 0
    (app,) = seen
    assert app.client.server == "https://127.0.0.1:7000"
    assert app.info == f"attached to {tmp_path}"
    assert not (tmp_path / "config.toml").exists() and not (tmp_path / "state.db").exists()
