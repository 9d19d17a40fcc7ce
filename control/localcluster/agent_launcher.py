"""Starts the node agent on a local-cluster node, with that node's settings.

All local nodes share one filesystem and one `ssh.agent_command`, so each
node's sshd sets PILOTHOUSE_* variables (SetEnv) and this maps them to the
agent's flags, then execs `python3 -m agent`. It imports nothing from agent/.
"""

from __future__ import annotations

import os
import sys

ENV_FLAGS = {
    "PILOTHOUSE_NODE_NAME": "--node-name",
    "PILOTHOUSE_CONTAINERD_SOCKET": "--containerd-socket",
    "PILOTHOUSE_POD_CIDR": "--pod-cidr",
    "PILOTHOUSE_CGROUP_PARENT": "--cgroup-parent",
    "PILOTHOUSE_CNI_CONF_DIR": "--cni-conf-dir",
    "PILOTHOUSE_AGENT_STATE_DIR": "--state-dir",
}


def agent_argv(env: dict[str, str], extra: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "agent"]
    for name, flag in ENV_FLAGS.items():
        if env.get(name):
            argv += [flag, env[name]]
    return argv + extra


def main() -> None:
    argv = agent_argv(dict(os.environ), sys.argv[1:])
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
