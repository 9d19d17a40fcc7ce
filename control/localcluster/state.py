"""What `up` made, recorded in the state file, so that `down` removes exactly that."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from control.localcluster import files
from control.localcluster.layout import Layout
from control.localcluster.plan import DEFAULT_SERVICE_CIDR, NodeState, Plan
from control.localcluster.proc import LocalClusterError


@dataclass
class State:
    cluster: str
    bridge: str
    node_subnet: str
    pod_cidr: str
    node_cidr_mask: int
    # The default: a state file from before the service CIDR was recorded.
    service_cidr: str = DEFAULT_SERVICE_CIDR
    bridge_created: bool = False
    # This cluster added the host's `unreachable` service CIDR route and its rules.
    service_route_created: bool = False
    made_run_sshd: bool = False
    # Where the control plane's store lives when not in the data dir ("": there).
    store_dir: str = ""
    # Several control planes: how many, and HAProxy's address in front of them.
    control_planes: int = 1
    api_listen: str = ""
    # Top-level entries of the data dir before the first `up`; `down` removes the rest.
    preexisting: list[str] = field(default_factory=list)
    host_routes: list[str] = field(default_factory=list)
    # iptables rules added (argv after -I/-D), removed by `down`.
    iptables_rules: list[list[str]] = field(default_factory=list)
    nodes: dict[str, NodeState] = field(default_factory=dict)

    @staticmethod
    def new(plan: Plan, preexisting: list[str]) -> State:
        return State(
            cluster=plan.cluster,
            bridge=plan.bridge,
            node_subnet=plan.node_subnet,
            pod_cidr=plan.pod_cidr,
            node_cidr_mask=plan.node_cidr_mask,
            service_cidr=plan.service_cidr,
            preexisting=preexisting,
        )

    @staticmethod
    def load(path: Path) -> State | None:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise LocalClusterError(f"{path}: corrupt state file: {e}") from None
        nodes = {k: NodeState(**v) for k, v in raw.pop("nodes", {}).items()}
        return State(**raw, nodes=nodes)

    def save(self, path: Path) -> None:
        files.write_private(path, json.dumps(asdict(self), indent=2) + "\n")


def read_state(data_dir: Path) -> State | None:
    """The state of the local cluster in `data_dir`, None when there is none."""
    return State.load(Layout.of(data_dir).state)
