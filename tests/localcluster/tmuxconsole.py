"""The real `pilothouse` console in a tmux server of the test's own (`tmux -L`),
attached to a running cluster through `PILOTHOUSE_HOME`: keys typed with
`send-keys`, the screen read with `capture-pane -p`, as a person would.
The tmux server is always killed."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.polling import eventually_blocking

PILOTHOUSE = Path(sys.executable).with_name("pilothouse")
DEADLINE = 60.0  # an offline node's first pod of a :latest image can take a while

NEEDS_TMUX = pytest.mark.skipif(
    not shutil.which("tmux") or not PILOTHOUSE.exists(),
    reason="needs tmux and the installed pilothouse script",
)

# The screen follows the cluster within DEADLINE; tmux is read twice a second.
poll = functools.partial(eventually_blocking, within=DEADLINE, every=0.5)


def console_env(home: Path, editor: str = "") -> dict[str, str]:
    env = {**os.environ, "PILOTHOUSE_HOME": str(home)}
    if editor:
        env["EDITOR"] = editor
    env.pop("KUBECONFIG", None)
    env.pop("VISUAL", None)
    return env


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


@contextlib.contextmanager
def console_in_tmux(home: Path, workdir: Path, tag: str, editor: str = "") -> Iterator[Tmux]:
    """The real `pilothouse` binary in a 200x50 tmux pane, attached to `home`'s
    cluster (with `editor` as $EDITOR when given)."""
    tmux = Tmux(f"ph-test-{tag}-{secrets.token_hex(2)}")
    conf = workdir / "tmux.conf"
    # Keep the pane after an exit, so that a crash leaves its traceback to read.
    conf.write_text("set -g remain-on-exit on\n")
    env_args = ["-e", f"PILOTHOUSE_HOME={home}"]
    if editor:
        env_args += ["-e", f"EDITOR={editor}"]
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
            *env_args,
            str(PILOTHOUSE),
            env=console_env(home, editor),
        )
        tmux.path = Path(tmux.run("display-message", "-p", "#{socket_path}").strip())
        yield tmux
    finally:
        tmux.kill()


def rows(screen: str, word: str) -> list[list[str]]:
    """The screen's lines that hold `word` as a cell, split into cells."""
    split = [line.replace("│", " ").split() for line in screen.splitlines()]
    return [r for r in split if word in r]


def prompt(tmux: Tmux, key: str, text: str) -> None:
    """`:` or `/`, `text` and Enter, sent at once: the console takes keys typed ahead."""
    tmux.type(key + text)
    tmux.keys("Enter")


def attached(tmux: Tmux) -> None:
    """The console attached to the running cluster, rather than hosting one."""
    poll(lambda: "attached to" in tmux.screen(), "the console", describe=tmux.screen)


def view(tmux: Tmux, alias: str, title: str) -> None:
    prompt(tmux, ":", alias)
    poll(lambda: f" {title} " in tmux.screen(), f"the {title} view", describe=tmux.screen)
