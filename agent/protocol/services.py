"""The service table on the wire: what the control plane sends a node (or a
proxy-only agent) so that it can route service traffic and answer cluster DNS.

Two requests, control -> agent:

- `services_sync` (ServicesSyncParams): the whole table, as generation
  `generation`. Sent after every (re)connect, after `network_config`, and after
  a failure.
- `services_update` (ServicesUpdateParams): `changes`, made in order on top of
  generation `base`, give generation `generation`. An agent that is not at
  `base` answers the error SERVICES_OUT_OF_SYNC, and the control plane sends a
  full `services_sync`.

Both answer ServicesResult (the request's generation) once the node's rules for
that generation, or for a later one, are in place: an agent may load several
generations in one transaction. When the rules cannot be loaded (the old ones
stay) the answer is an error whose message is the tool's.

The shapes are plain JSON. The control plane sends every field below except the
NotRequired ones, which it leaves out rather than sending null; the agent's
parser (agent.network.servicetable) checks every field and names a bad one.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from .errors import SERVICES_OUT_OF_SYNC, ServicesOutOfSync

# Kubernetes' default for ClientIP affinity without sessionAffinityConfig.
DEFAULT_AFFINITY_TIMEOUT = 10800
SERVICES_SYNC = "services_sync"
SERVICES_UPDATE = "services_update"

__all__ = [
    "SERVICES_OUT_OF_SYNC",
    "SERVICES_SYNC",
    "SERVICES_UPDATE",
    "Change",
    "ChangeOp",
    "DeleteService",
    "EndpointWire",
    "EndpointsWire",
    "ServicePortWire",
    "ServiceTableWire",
    "ServiceWire",
    "ServicesOutOfSync",
    "ServicesResult",
    "ServicesSyncParams",
    "ServicesUpdateParams",
    "SetEndpoints",
    "UpsertService",
]


# --- the table ----------------------------------------------------------------------


class ServicePortWire(TypedDict):
    name: str  # "" for a service's single unnamed port; endpoints' ports are keyed by it
    protocol: str  # TCP, UDP or SCTP (the agent reads an absent one as TCP)
    port: int
    nodePort: NotRequired[int]  # NodePort and LoadBalancer services


class ServiceWire(TypedDict):
    namespace: str
    name: str
    type: str  # ClusterIP, NodePort, LoadBalancer or ExternalName
    clusterIP: str | None  # None: headless, or ExternalName
    ports: list[ServicePortWire]
    sessionAffinity: str  # None or ClientIP
    sessionAffinityTimeoutSeconds: int  # what ClientIP affinity lasts
    externalName: NotRequired[str]  # ExternalName services only


class EndpointWire(TypedDict):
    ip: str
    ready: bool
    serving: bool  # the agent reads an absent one as equal to ready
    terminating: bool
    ports: dict[str, int]  # service port name -> the port on this endpoint
    nodeName: NotRequired[str]
    hostname: NotRequired[str]


class EndpointsWire(TypedDict):
    namespace: str
    name: str
    endpoints: list[EndpointWire]  # by IP


class ServiceTableWire(TypedDict):
    services: list[ServiceWire]  # by namespace/name
    endpoints: list[EndpointsWire]  # of the services that have any, by namespace/name


# --- changes --------------------------------------------------------------------------

ChangeOp = Literal["upsertService", "deleteService", "setEndpoints"]


class UpsertService(TypedDict):
    op: Literal["upsertService"]  # add or replace; its endpoints stay
    service: ServiceWire


class DeleteService(TypedDict):
    op: Literal["deleteService"]  # the service and its endpoints
    namespace: str
    name: str


class SetEndpoints(TypedDict):
    op: Literal["setEndpoints"]  # replace one service's endpoints (none: remove them)
    endpoints: EndpointsWire


Change = UpsertService | DeleteService | SetEndpoints


# --- the requests ---------------------------------------------------------------------


class ServicesSyncParams(TypedDict):
    generation: int  # the control plane's number for this table, per node link
    table: ServiceTableWire


class ServicesUpdateParams(TypedDict):
    generation: int  # what the table is after the changes (greater than base)
    base: int  # the generation the changes apply to
    changes: list[Change]


class ServicesResult(TypedDict):
    generation: int  # the request's: its rules (or a later generation's) are in place
