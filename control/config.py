"""The control plane's configuration: one TOML file, every key optional.

`load_config()` reads `config.toml` (see `config.example.toml` for every key
and its default) into frozen dataclasses. Relative paths in the file resolve
against the data dir. Bad input raises `ConfigError` naming the file, the dotted
key and the reason; unknown keys are rejected so that typos do not pass
silently.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from agent.protocol.primitives import (
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    parse_duration,
)

try:
    import tomllib
except ImportError:  # pragma: no cover  (Python < 3.11)
    import tomli as tomllib  # type: ignore[no-redef]

CONFIG_FILE = "config.toml"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
StoreBackend = Literal["sqlite", "etcd"]
STORE_BACKENDS: tuple[StoreBackend, ...] = ("sqlite", "etcd")

T = TypeVar("T")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the file, key and reason."""


@dataclass(frozen=True)
class StoreConfig:
    path: Path
    backend: StoreBackend = "sqlite"
    etcd_endpoints: tuple[str, ...] = ("http://127.0.0.1:2379",)
    etcd_prefix: str = "/pilothouse"
    # Client TLS to etcd: the CA that signed etcd's certificate, and this
    # control plane's client certificate and key (set both or neither).
    etcd_ca_file: Path | None = None
    etcd_cert_file: Path | None = None
    etcd_key_file: Path | None = None
    # Revisions of history kept for watch resume; older ones are compacted away.
    compaction_keep: int = 10000


@dataclass(frozen=True)
class ApiLimits:
    """What one client may hold of the API server ([api.limits])."""

    # Bytes one watch may have waiting for its client; a watch that stays full
    # for watch_stall_timeout has its stream closed.
    watch_buffer_bytes: int = 8 * 1024 * 1024
    watch_stall_timeout: float = 2.0
    # Requests being served at once, per user on TLS and in total on the unix socket.
    max_requests_per_user: int = 200
    max_requests_unix: int = 400
    # Long-running requests (watch, exec, attach, logs with follow), counted apart.
    max_watches_per_user: int = 200
    max_watches_unix: int = 1000
    # Deadlines of a new connection: the TLS handshake, and each request's headers.
    handshake_timeout: float = 10.0
    header_timeout: float = 10.0
    # An idle keep-alive connection is closed after this long.
    idle_timeout: float = 120.0


@dataclass(frozen=True)
class ApiConfig:
    socket: Path
    pki_dir: Path
    tokens_file: Path
    listen: str = "127.0.0.1:6443"  # "" disables the TCP listener
    # None: use the certificate generated in pki_dir.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_san: tuple[str, ...] = ()
    limits: ApiLimits = field(default_factory=ApiLimits)

    @property
    def listen_address(self) -> tuple[str, int] | None:
        """`(host, port)` of the TLS listener, or None when it is disabled."""
        return split_host_port(self.listen) if self.listen else None


@dataclass(frozen=True)
class SshConfig:
    known_hosts: Path
    user: str = "root"
    identity_files: tuple[Path, ...] = ()
    use_agent: bool = True
    keepalive_interval: float = 15.0
    connect_timeout: float = 10.0
    reconnect_backoff_initial: float = 1.0
    reconnect_backoff_max: float = 30.0
    agent_command: tuple[str, ...] = ("python3", "-m", "agent")


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class NodeConfig:
    name: str
    host: str
    port: int = 22
    user: str | None = None  # None: ssh.user
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    # The node's block of network.pod_cidr; "" lets the control plane pick the
    # lowest free one when the node first registers.
    pod_cidr: str = ""


@dataclass(frozen=True)
class ServiceProxyConfig:
    """A proxy-only agent the control plane keeps service rules on (not a node)."""

    name: str
    command: tuple[str, ...]  # argv, run locally; speaks the agent protocol on stdin/stdout


@dataclass(frozen=True)
class NetworkConfig:
    pod_cidr: str = "10.244.0.0/16"
    node_cidr_mask: int = 24
    service_cidr: str = "10.96.0.0/12"
    cluster_domain: str = "cluster.local"
    cluster_dns: str = "10.96.0.10"
    dns_ttl: int = 5  # CoreDNS's kubernetes plugin default


@dataclass(frozen=True)
class ControllersConfig:
    node_monitor_grace_period: float = 40.0
    pod_eviction_timeout: float = 300.0


@dataclass(frozen=True)
class SchedulerConfig:
    percentage_of_nodes_to_score: int = 0  # 0: adaptive, as kube-scheduler


@dataclass(frozen=True)
class LeaderElectionConfig:
    """Which of several control planes on one store runs the scheduler, the
    controllers and the node links: client-go's leader election on a Lease."""

    enabled: bool = False  # default: on with a shared store (etcd), off with SQLite
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    identity: str = ""  # "": the host name and a random suffix, new at each start
    advertise_url: str = ""  # "": the HTTPS listener's URL


@dataclass(frozen=True)
class Config:
    data_dir: Path
    store: StoreConfig
    api: ApiConfig
    ssh: SshConfig
    nodes: tuple[NodeConfig, ...] = ()
    network: NetworkConfig = field(default_factory=NetworkConfig)
    controllers: ControllersConfig = field(default_factory=ControllersConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    service_proxies: tuple[ServiceProxyConfig, ...] = ()
    leader_election: LeaderElectionConfig = field(default_factory=LeaderElectionConfig)


def default_data_dir() -> Path:
    """`$PILOTHOUSE_HOME` if set, else `~/.pilothouse`."""
    home = os.environ.get("PILOTHOUSE_HOME")
    if home:
        return Path(home).expanduser().absolute()
    return Path.home() / ".pilothouse"


def load_config(path: Path | None, *, data_dir: Path | None = None) -> Config:
    """Read the config file at `path` (None: `<data_dir>/config.toml`).

    A missing file gives the defaults. The data dir is, in order: the `data_dir`
    argument, the file's `data_dir` key, `default_data_dir()`.
    """
    if path is None:
        path = (data_dir or default_data_dir()) / CONFIG_FILE
    raw: dict[str, Any] = {}
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        pass
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    return _parse(raw, str(path), path.parent, data_dir)


def parse_config(text: str, *, src: str, data_dir: Path) -> Config:
    """A config from its TOML text (`src` names it in errors), as `load_config` reads a file."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{src}: invalid TOML: {e}") from None
    return _parse(raw, src, data_dir, data_dir)


# --- parsing -----------------------------------------------------------------

_MISSING: Any = object()


# TOML's names for the Python types it reads to; bool before int, its base class.
_TOML_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "float"),
    (str, "string"),
    (list, "array"),
    (dict, "table"),
)


def _type_name(v: Any) -> str:
    return next((name for t, name in _TOML_TYPES if isinstance(v, t)), type(v).__name__)


class _Table:
    """One TOML table being read: typed getters that remember which keys were used."""

    def __init__(self, src: str, prefix: str, data: Mapping[str, Any], base: Path) -> None:
        self.src = src
        self.prefix = prefix
        self.data = data
        self.base = base
        self.used: set[str] = set()

    def err(self, key: str, reason: str) -> ConfigError:
        return ConfigError(f"{self.src}: {self.prefix}{key}: {reason}")

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key, _MISSING)

    def _typed(self, key: str, default: T, check: Callable[[Any], bool], want: str) -> Any:
        v = self._get(key)
        if v is _MISSING:
            return default
        if not check(v):
            raise self.err(key, f"expected {want}, got {_type_name(v)} {v!r}")
        return v

    def string(self, key: str, default: str) -> str:
        v: str = self._typed(key, default, lambda v: isinstance(v, str), "a string")
        return v

    def boolean(self, key: str, default: bool) -> bool:
        v: bool = self._typed(key, default, lambda v: isinstance(v, bool), "a boolean")
        return v

    def integer(self, key: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        v: int = self._typed(
            key, default, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"
        )
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            if hi is None:
                raise self.err(key, f"must be at least {lo}, got {v}")
            raise self.err(key, f"must be between {lo} and {hi}, got {v}")
        return v

    def duration(self, key: str, default: float) -> float:
        """Seconds, as a number or a Go-style duration string ("15s", "5m", "1m30s")."""
        v = self._typed(
            key,
            default,
            lambda v: isinstance(v, (int, float, str)) and not isinstance(v, bool),
            'a duration (seconds, or a string like "15s")',
        )
        if isinstance(v, str):
            try:
                v = parse_duration(v)
            except ValueError:
                raise self.err(
                    key, f'not a valid duration: {v!r} (use e.g. "15s", "5m", "1m30s")'
                ) from None
        if v <= 0:
            raise self.err(key, f"must be positive, got {v!r}")
        return float(v)

    def string_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        v = self._typed(
            key,
            default,
            lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v),
            "an array of strings",
        )
        return tuple(v)

    def path(self, key: str, default: Path) -> Path:
        v = self._get(key)
        if v is _MISSING:
            return default
        if not isinstance(v, str):
            raise self.err(key, f"expected a path string, got {_type_name(v)} {v!r}")
        if not v:
            raise self.err(key, "must not be empty")
        return _resolve(v, self.base)

    def optional_path(self, key: str) -> Path | None:
        return None if self.data.get(key) is None else self.path(key, Path())

    def table(self, key: str) -> _Table:
        v = self._get(key)
        if v is _MISSING:
            v = {}
        elif not isinstance(v, dict):
            raise self.err(key, f"expected a table, got {_type_name(v)} {v!r}")
        return _Table(self.src, f"{self.prefix}{key}.", v, self.base)

    def done(self) -> None:
        for key in self.data:
            if key not in self.used:
                known = sorted(self.used)
                hint = [k for k in known if key.startswith(k) or k.startswith(key)]
                hint = hint or difflib.get_close_matches(key, known, n=1)
                more = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise self.err(key, f"unknown key{more}")


def _resolve(p: str, base: Path) -> Path:
    path = Path(p).expanduser()
    return path if path.is_absolute() else base / path


def split_host_port(s: str) -> tuple[str, int] | None:
    """`(host, port)` of "host:port" or "[v6]:port"; None when it is not one."""
    if s.startswith("["):
        host, sep, port = s[1:].partition("]:")
    else:
        host, sep, port = s.rpartition(":")
        if ":" in host:
            return None  # a bare IPv6 address needs brackets
    # Port 0 asks the kernel for a free port (tests, several servers on one box).
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        return None
    return host, int(port)


def _parse(raw: Mapping[str, Any], src: str, file_dir: Path, data_dir: Path | None) -> Config:
    top = _Table(src, "", raw, file_dir)
    if data_dir is None:
        data_dir = top.path("data_dir", default_data_dir())
    else:
        top.used.add("data_dir")
    data_dir = data_dir.expanduser().absolute()
    top.base = data_dir

    store = _parse_store(top.table("store"), data_dir)
    api = _parse_api(top.table("api"), data_dir)
    ssh = _parse_ssh(top.table("ssh"), data_dir)
    network = _parse_network(top.table("network"))
    nodes = _parse_nodes(top, network)
    proxies = _parse_service_proxies(top)

    t = top.table("controllers")
    controllers = ControllersConfig(
        node_monitor_grace_period=t.duration("node_monitor_grace_period", 40.0),
        pod_eviction_timeout=t.duration("pod_eviction_timeout", 300.0),
    )
    t.done()
    t = top.table("scheduler")
    scheduler = SchedulerConfig(
        percentage_of_nodes_to_score=t.integer("percentage_of_nodes_to_score", 0, 0, 100)
    )
    t.done()
    election = _parse_leader_election(top.table("leader_election"), store)
    top.done()
    return Config(
        data_dir, store, api, ssh, nodes, network, controllers, scheduler, proxies, election
    )


def _parse_store(t: _Table, data_dir: Path) -> StoreConfig:
    backend = t.string("backend", "sqlite")
    if backend not in STORE_BACKENDS:
        raise t.err("backend", f'unknown backend {backend!r} (want "sqlite" or "etcd")')
    ca, cert, key = (
        t.optional_path(k) for k in ("etcd_ca_file", "etcd_cert_file", "etcd_key_file")
    )
    if (cert is None) != (key is None):
        missing = "etcd_key_file" if key is None else "etcd_cert_file"
        raise t.err(missing, "etcd_cert_file and etcd_key_file must be set together")
    if backend == "etcd":
        for name, path in (("etcd_ca_file", ca), ("etcd_cert_file", cert), ("etcd_key_file", key)):
            if path is not None and not path.is_file():
                raise t.err(name, f"no such file: {path}")
    tls = ca is not None or cert is not None
    endpoints = t.string_list("etcd_endpoints", ("http://127.0.0.1:2379",))
    if not endpoints:
        raise t.err("etcd_endpoints", "must name at least one endpoint")
    for ep in endpoints:
        scheme, sep, rest = ep.partition("://")
        if not sep:
            scheme, rest = "", ep
        if scheme not in ("", "http", "https") or split_host_port(rest.rstrip("/")) is None:
            raise t.err("etcd_endpoints", f"not a valid endpoint (want host:port): {ep!r}")
        if scheme == "http" and tls:
            raise t.err(
                "etcd_endpoints",
                f"{ep!r} is plain HTTP but etcd TLS files are set (use https://)",
            )
    prefix = t.string("etcd_prefix", "/pilothouse")
    if not prefix.startswith("/"):
        raise t.err("etcd_prefix", f"must start with '/': {prefix!r}")
    cfg = StoreConfig(
        path=t.path("path", data_dir / "state.db"),
        backend="etcd" if backend == "etcd" else "sqlite",
        etcd_endpoints=endpoints,
        etcd_prefix=prefix.rstrip("/") or "/",
        etcd_ca_file=ca,
        etcd_cert_file=cert,
        etcd_key_file=key,
        compaction_keep=t.integer("compaction_keep", 10000, lo=1),
    )
    t.done()
    return cfg


# client-go's leaderelection.JitterFactor: a candidate waits up to this many
# retry periods more between tries, so the renew deadline must exceed it.
ELECTION_JITTER = 1.2


def _parse_leader_election(t: _Table, store: StoreConfig) -> LeaderElectionConfig:
    # One SQLite file has one control plane (the data dir lock): nothing to elect.
    enabled = t.boolean("enabled", store.backend != "sqlite")
    lease = t.duration("lease_duration", 15.0)
    if lease != int(lease):
        # The Lease's leaseDurationSeconds is an integer: others must expire it when we do.
        raise t.err("lease_duration", f"must be a whole number of seconds, got {lease!r}")
    renew = t.duration("renew_deadline", 10.0)
    retry = t.duration("retry_period", 2.0)
    if renew >= lease:
        raise t.err(
            "renew_deadline",
            f"must be less than leader_election.lease_duration ({renew} >= {lease})",
        )
    if renew <= ELECTION_JITTER * retry:
        raise t.err(
            "retry_period",
            f"must be less than leader_election.renew_deadline / {ELECTION_JITTER} "
            f"({retry} * {ELECTION_JITTER} >= {renew})",
        )
    identity = t.string("identity", "")
    if identity and (len(identity) > 253 or not identity.isprintable() or " " in identity):
        raise t.err(
            "identity", f"must be printable, without spaces, at most 253 characters: {identity!r}"
        )
    advertise = t.string("advertise_url", "")
    if advertise and (
        not advertise.startswith("https://")
        or split_host_port(advertise.removeprefix("https://").rstrip("/")) is None
    ):
        raise t.err("advertise_url", f'want "https://host:port": {advertise!r}')
    cfg = LeaderElectionConfig(
        enabled=enabled,
        lease_duration=lease,
        renew_deadline=renew,
        retry_period=retry,
        identity=identity,
        advertise_url=advertise.rstrip("/"),
    )
    t.done()
    return cfg


def _parse_api(t: _Table, data_dir: Path) -> ApiConfig:
    listen = t.string("listen", "127.0.0.1:6443")
    if listen and split_host_port(listen) is None:
        raise t.err(
            "listen", f'not a valid address (want "host:port", or "" to disable): {listen!r}'
        )
    cert, key = t.optional_path("tls_cert"), t.optional_path("tls_key")
    if (cert is None) != (key is None):
        missing = "tls_key" if key is None else "tls_cert"
        raise t.err(missing, "tls_cert and tls_key must be set together")
    cfg = ApiConfig(
        socket=t.path("socket", data_dir / "api.sock"),
        pki_dir=t.path("pki_dir", data_dir / "pki"),
        tokens_file=t.path("tokens_file", data_dir / "tokens.csv"),
        listen=listen,
        tls_cert=cert,
        tls_key=key,
        tls_san=t.string_list("tls_san", ()),
        limits=_parse_api_limits(t.table("limits")),
    )
    t.done()
    return cfg


def _parse_api_limits(t: _Table) -> ApiLimits:
    d = ApiLimits()
    limits = ApiLimits(
        max_requests_per_user=t.integer("max_requests_per_user", d.max_requests_per_user, 1),
        max_requests_unix=t.integer("max_requests_unix", d.max_requests_unix, 1),
        max_watches_per_user=t.integer("max_watches_per_user", d.max_watches_per_user, 1),
        max_watches_unix=t.integer("max_watches_unix", d.max_watches_unix, 1),
        watch_buffer_bytes=t.integer("watch_buffer_bytes", d.watch_buffer_bytes, 65536),
        watch_stall_timeout=t.duration("watch_stall_timeout", d.watch_stall_timeout),
        handshake_timeout=t.duration("handshake_timeout", d.handshake_timeout),
        header_timeout=t.duration("header_timeout", d.header_timeout),
        idle_timeout=t.duration("idle_timeout", d.idle_timeout),
    )
    t.done()
    return limits


def _parse_ssh(t: _Table, data_dir: Path) -> SshConfig:
    user = t.string("user", "root")
    if not user:
        raise t.err("user", "must not be empty")
    command = t.string_list("agent_command", ("python3", "-m", "agent"))
    if not command:
        raise t.err("agent_command", "must not be empty")
    initial = t.duration("reconnect_backoff_initial", 1.0)
    maximum = t.duration("reconnect_backoff_max", 30.0)
    if maximum < initial:
        raise t.err(
            "reconnect_backoff_max",
            f"must not be less than reconnect_backoff_initial ({maximum} < {initial})",
        )
    cfg = SshConfig(
        known_hosts=t.path("known_hosts", data_dir / "known_hosts"),
        user=user,
        identity_files=tuple(_resolve(p, data_dir) for p in t.string_list("identity_files", ())),
        use_agent=t.boolean("use_agent", True),
        keepalive_interval=t.duration("keepalive_interval", 15.0),
        connect_timeout=t.duration("connect_timeout", 10.0),
        reconnect_backoff_initial=initial,
        reconnect_backoff_max=maximum,
        agent_command=command,
    )
    t.done()
    return cfg


def _parse_nodes(top: _Table, network: NetworkConfig) -> tuple[NodeConfig, ...]:
    nodes: list[NodeConfig] = []
    seen: set[str] = set()
    blocks: set[str] = set()
    for t in _array_of_tables(top, "nodes"):
        name = _entry_name(t, seen, "node")
        if "host" not in t.data:
            raise t.err("host", "required")
        host = t.string("host", "")
        if not host:
            raise t.err("host", "must not be empty")
        user = t.string("user", "") or None
        pod_cidr = _node_pod_cidr(t, network, blocks)
        nodes.append(
            NodeConfig(
                name=name,
                host=host,
                port=t.integer("port", 22, 1, 65535),
                user=user,
                labels=_parse_labels(t.table("labels")),
                taints=_parse_taints(t),
                pod_cidr=pod_cidr,
            )
        )
        t.done()
    return tuple(nodes)


def _node_pod_cidr(t: _Table, network: NetworkConfig, taken: set[str]) -> str:
    """A node's `pod_cidr`: one /node_cidr_mask block of network.pod_cidr, not
    another node's."""
    text = t.string("pod_cidr", "")
    if not text:
        return ""
    try:
        block = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise t.err("pod_cidr", f"not a valid CIDR: {text!r}") from None
    cluster = ipaddress.ip_network(network.pod_cidr)
    if (
        block.version != cluster.version
        or block.prefixlen != network.node_cidr_mask
        or not block.subnet_of(cluster)  # type: ignore[arg-type]  # same version, checked above
    ):
        raise t.err(
            "pod_cidr",
            f"{text} is not a /{network.node_cidr_mask} block of network.pod_cidr {network.pod_cidr}",
        )
    if str(block) in taken:
        raise t.err("pod_cidr", f"{text} is already another node's")
    taken.add(str(block))
    return str(block)


def _entry_name(t: _Table, seen: set[str], what: str, duplicate_what: str = "") -> str:
    """The required `name` of one entry of an array of tables: a DNS-1123
    subdomain not in `seen`, which it joins."""
    if "name" not in t.data:
        raise t.err("name", "required")
    name = t.string("name", "")
    if not is_dns1123_subdomain(name):
        raise t.err("name", f"not a valid {what} name (lowercase DNS subdomain): {name!r}")
    if name in seen:
        raise t.err("name", f"duplicate {duplicate_what or what} name {name!r}")
    seen.add(name)
    return name


def _array_of_tables(top: _Table, key: str) -> list[_Table]:
    v = top._get(key)
    if v is _MISSING:
        return []
    if not isinstance(v, list):
        raise top.err(key, f"expected an array of tables ([[{key}]]), got {_type_name(v)}")
    tables = []
    for i, item in enumerate(v):
        if not isinstance(item, dict):
            raise top.err(f"{key}[{i}]", f"expected a table, got {_type_name(item)} {item!r}")
        tables.append(_Table(top.src, f"{key}[{i}].", item, top.base))
    return tables


def _parse_service_proxies(top: _Table) -> tuple[ServiceProxyConfig, ...]:
    proxies: list[ServiceProxyConfig] = []
    seen: set[str] = set()
    for t in _array_of_tables(top, "service_proxies"):
        name = _entry_name(t, seen, "proxy", "service proxy")
        if "command" not in t.data:
            raise t.err("command", "required")
        command = t.string_list("command", ())
        if not command or not command[0]:
            raise t.err(
                "command", 'must name a program: an argv array like ["python3", "-m", "agent"]'
            )
        proxies.append(ServiceProxyConfig(name, command))
        t.done()
    return tuple(proxies)


def _parse_labels(t: _Table) -> dict[str, str]:
    labels: dict[str, str] = {}
    for k in t.data:
        v = t.string(k, "")
        if not is_qualified_name(k):
            raise t.err(k, "not a valid label key")
        if not is_label_value(v):
            raise t.err(k, f"not a valid label value: {v!r}")
        labels[k] = v
    return labels


def _parse_taints(t: _Table) -> tuple[Taint, ...]:
    v = t._get("taints")
    if v is _MISSING:
        return ()
    if not isinstance(v, list):
        raise t.err("taints", f"expected an array, got {_type_name(v)} {v!r}")
    taints: list[Taint] = []
    for i, item in enumerate(v):
        where = f"taints[{i}]"
        if isinstance(item, str):
            # "key=value:Effect" or "key:Effect", as kubectl taint takes them.
            kv, colon, effect = item.rpartition(":")
            key, _, value = kv.partition("=")
            if not colon:
                raise t.err(where, f'expected "key[=value]:Effect", got {item!r}')
        elif isinstance(item, dict):
            sub = _Table(t.src, f"{t.prefix}{where}.", item, t.base)
            key, value, effect = (
                sub.string("key", ""),
                sub.string("value", ""),
                sub.string("effect", ""),
            )
            sub.done()
        else:
            raise t.err(where, f"expected a string or a table, got {_type_name(item)} {item!r}")
        if not is_qualified_name(key):
            raise t.err(where, f"not a valid taint key: {key!r}")
        if effect not in TAINT_EFFECTS:
            raise t.err(where, f"effect must be one of {', '.join(TAINT_EFFECTS)}, got {effect!r}")
        taints.append(Taint(key, effect, value))
    return tuple(taints)


def _parse_network(t: _Table) -> NetworkConfig:
    def cidr(key: str, default: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        s = t.string(key, default)
        try:
            return ipaddress.ip_network(s, strict=True)
        except ValueError as e:
            if "host bits set" in str(e):
                raise t.err(key, f"host bits set in CIDR: {s!r}") from None
            raise t.err(key, f"not a valid CIDR: {s!r}") from None

    pods = cidr("pod_cidr", "10.244.0.0/16")
    services = cidr("service_cidr", "10.96.0.0/12")
    if pods.version != services.version:
        raise t.err("service_cidr", "must be the same IP family as pod_cidr")
    if pods.overlaps(services):
        raise t.err("service_cidr", f"overlaps pod_cidr {pods}")
    mask = t.integer("node_cidr_mask", 24 if pods.version == 4 else 64)
    if not pods.prefixlen <= mask <= pods.max_prefixlen - 2:
        raise t.err(
            "node_cidr_mask",
            f"must be between {pods.prefixlen} (the pod_cidr prefix) and {pods.max_prefixlen - 2}, got {mask}",
        )
    domain = t.string("cluster_domain", "cluster.local")
    if not is_dns1123_subdomain(domain):
        raise t.err("cluster_domain", f"not a valid DNS domain: {domain!r}")
    if "cluster_dns" not in t.data and services.num_addresses <= 11:
        raise t.err(
            "service_cidr", f"{services} is too small for the default cluster_dns; set cluster_dns"
        )
    dns = t.string(
        "cluster_dns", str(services.network_address + 10) if services.num_addresses > 11 else ""
    )
    try:
        dns_ip = ipaddress.ip_address(dns)
    except ValueError:
        raise t.err("cluster_dns", f"not a valid IP address: {dns!r}") from None
    if dns_ip not in services:
        raise t.err("cluster_dns", f"{dns} is not inside service_cidr {services}")
    ttl = t.integer("dns_ttl", 5, 0, 3600)
    t.done()
    return NetworkConfig(str(pods), mask, str(services), domain, str(dns_ip), ttl)
