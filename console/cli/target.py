"""Finding the cluster, the way kubectl does.

Order: `--server`, then `--kubeconfig`, then `$KUBECONFIG`, then the default
kubeconfig that `serve` or `up` writes in the data dir. When the default data
dir has a live unix socket, it is preferred: it needs no TLS and no token.
"""

from __future__ import annotations

import os
from pathlib import Path

from control.client import Client
from control.kubeconfig import KubeconfigError, read_kubeconfig

DEFAULT_SOCKET = "api.sock"
DEFAULT_KUBECONFIG = "kubeconfig"


class TargetError(Exception):
    """No usable cluster: the message says what was tried."""


def make_client(server: str | None, kubeconfig: str | None) -> Client:
    if server:
        return Client(server)
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
    if path:
        return _from_kubeconfig(Path(path).expanduser())
    from control.config import default_data_dir  # costly to import: only this path needs it

    data = default_data_dir()
    if (data / DEFAULT_SOCKET).is_socket():
        return Client(str(data / DEFAULT_SOCKET))
    if (data / DEFAULT_KUBECONFIG).exists():
        return _from_kubeconfig(data / DEFAULT_KUBECONFIG)
    raise TargetError(
        f"no cluster configured: no {data / DEFAULT_KUBECONFIG} and no $KUBECONFIG. "
        "Start one with `pilothouse serve` (or `pilothouse up`), or pass --kubeconfig or --server."
    )


def _from_kubeconfig(path: Path) -> Client:
    try:
        target = read_kubeconfig(path)
    except KubeconfigError as e:
        raise TargetError(str(e)) from e
    except OSError as e:
        raise TargetError(f"kubeconfig {path}: {e.strerror or e}") from e
    return Client(target.server, ca_pem=target.ca_pem, token=target.token, insecure=target.insecure)
