"""`pilothouse` with no command: attach to a serving control plane, or host one, and open the console.

Order: `--server`, then `--kubeconfig`, then the configured data dir's socket
if it answers, then the HAProxy of a local cluster of several control planes
in the data dir (`up --control-planes`); otherwise the control plane starts in this process, on its own
thread and loop (hosted.py), and stops when the console exits.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from console.cli.target import make_client
from console.tui.app import PilothouseApp
from console.tui.bindings import load_keymap
from console.tui.hosted import HostedControlPlane, socket_answers
from control.client import Client
from control.config import load_config
from control.localcluster.layout import Layout
from control.localcluster.state import read_state


def _local_api_proxy(data_dir: Path) -> str | None:
    """The kubeconfig of a local cluster of several control planes in `data_dir`
    (their API is behind HAProxy, with no socket in the data dir), or None."""
    state = read_state(data_dir)
    if state is None or state.control_planes < 2:
        return None
    kubeconfig = Layout(data_dir).kubeconfig
    return str(kubeconfig) if kubeconfig.exists() else None


def _log_to_file(path: Path) -> None:
    """Logs would tear the screen: send them to a file while the console runs."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)


async def run_console(args: argparse.Namespace) -> int:
    data_dir = Path(args.tui_data_dir).expanduser().absolute() if args.tui_data_dir else None  # noqa: ASYNC240
    config = load_config(Path(args.tui_config) if args.tui_config else None, data_dir=data_dir)
    hosted: HostedControlPlane | None = None
    server, kubeconfig = args.tui_server, args.tui_kubeconfig
    info = ""
    if server or kubeconfig:
        make_client(server, kubeconfig)  # fail early, with the CLI's message
        factory = lambda: make_client(server, kubeconfig)  # noqa: E731
        info = "attached"
        target = ["--server", server] if server else ["--kubeconfig", kubeconfig]
    elif socket_answers(config.api.socket):
        socket = str(config.api.socket)
        factory = lambda: Client(socket)  # noqa: E731
        info = f"attached to {config.data_dir}"
        target = ["--server", socket]
    elif (behind := _local_api_proxy(config.data_dir)) is not None:
        factory = lambda: make_client(None, behind)  # noqa: E731
        info = f"attached to {config.data_dir}"
        target = ["--kubeconfig", behind]
    else:
        _log_to_file(config.data_dir / "console.log")
        hosted = HostedControlPlane(config)
        socket = str(hosted.start())
        factory = lambda: Client(socket)  # noqa: E731
        info = f"store {config.store.backend} · leader: this process (embedded)"
        target = ["--server", socket]
    try:
        app = PilothouseApp(
            factory,
            readonly=args.readonly,
            info=info,
            keymap=load_keymap(config.data_dir),
            target=target,
        )
        await app.run_async()
    finally:
        if hosted is not None:
            hosted.stop()
    return 0
