"""Where a local cluster's files live under its data dir."""

from __future__ import annotations

from pathlib import Path

CLUSTER_DIR = "cluster"
STATE_FILE = "state.json"
STORE_FILE = "state.db"  # the control plane's default store path, under the data dir
# The files SQLite and the store's lock keep next to the store.
STORE_SUFFIXES = ("", "-wal", "-shm", "-journal", ".lock")


class Layout:
    """One cluster's files: the control plane's (config, known_hosts, API socket)
    at the top of the data dir, the cluster's own under `cluster/`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / CLUSTER_DIR
        self.state = self.root / STATE_FILE
        self.lock = self.root / "lock"
        self.images = self.root / "images"
        self.client_key = self.root / "ssh" / "id_ed25519"
        self.config = data_dir / "config.toml"
        self.known_hosts = data_dir / "known_hosts"
        self.serve_pid = self.root / "serve.pid"
        self.serve_log = self.root / "serve.log"
        self.api_socket = data_dir / "api.sock"
        # Several control planes: HAProxy in front of them, and the kubeconfig
        # (to HAProxy) and the CA and tokens they share, at the top.
        self.kubeconfig = data_dir / "kubeconfig"
        self.readonly_kubeconfig = data_dir / "kubeconfig-readonly"
        self.pki_dir = data_dir / "pki"
        self.tokens = data_dir / "tokens.csv"
        self.haproxy_config = self.root / "haproxy.cfg"
        self.haproxy_pid = self.root / "haproxy.pid"
        self.haproxy_log = self.root / "haproxy.log"

    @staticmethod
    def of(data_dir: Path) -> Layout:
        """The layout of `data_dir` given as the user wrote it (~ and relative paths)."""
        return Layout(data_dir.expanduser().absolute())

    def node(self, name: str) -> NodeLayout:
        return NodeLayout(self.root / name)

    def control_plane(self, name: str) -> Layout:
        """One of several control planes: its serve's data dir (config, socket,
        pid and log where a single control plane keeps them in the data dir)."""
        return Layout(self.root / name)

    def etcd_member(self, name: str) -> EtcdMemberLayout:
        return EtcdMemberLayout(self.root / name / "etcd")


class EtcdMemberLayout:
    """One etcd member's data, pid and log."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        self.data = d / "data"
        self.pid = d / "etcd.pid"
        self.log = d / "etcd.log"


class NodeLayout:
    """One node's files: its sshd, containerd, runc and CNI state."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        self.host_key = d / "ssh" / "ssh_host_ed25519_key"
        self.authorized_keys = d / "ssh" / "authorized_keys"
        self.sshd_config = d / "ssh" / "sshd_config"
        self.sshd_pid = d / "sshd.pid"
        self.sshd_log = d / "sshd.log"
        self.containerd_config = d / "containerd" / "config.toml"
        self.containerd_root = d / "containerd" / "root"
        self.containerd_state = d / "containerd" / "state"
        self.containerd_pid = d / "containerd.pid"
        self.containerd_log = d / "containerd.log"
        self.socket = d / "containerd.sock"
        self.runc_root = d / "runc"
        self.cni_conf_dir = d / "cni" / "net.d"
        self.agent_state = d / "agent"
