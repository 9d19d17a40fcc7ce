"""The core (`v1`) kinds: Namespace, Node, Pod, Service, Endpoints, Secret,
ConfigMap and Event, with Kubernetes defaults and validation."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import InitErrorDetails

from agent.protocol.primitives import quantity_milli_value
from control.objects.meta import (
    DUPLICATE,
    FORBIDDEN,
    INT32_MAX,
    INT64_MAX,
    INVALID,
    NOT_FOUND,
    REQUIRED,
    TOO_LONG,
    Condition,
    DNS1035Meta,
    DNSLabel,
    Int32,
    Int64,
    KubeModel,
    KubeObject,
    LabelMeta,
    Labels,
    ObjectReference,
    Port,
    PortName,
    PortOrName,
    ResourceList,
    SubdomainMeta,
    Time,
    duplicate_names,
    error,
    field_error,
    raise_errors,
)
from control.objects.podconfig import EnvFromSource, EnvVar, Volume, config_key_problem

Protocol = Literal["TCP", "UDP", "SCTP"]

# --- shared field types ----------------------------------------------------------


def _ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise error(INVALID, "must be a valid IP address") from None
    return value


IPAddress = Annotated[str, AfterValidator(_ip)]

DATA_MAX_BYTES = 1024 * 1024


def _config_keys(data: dict[str, str]) -> dict[str, str]:
    for key in data:
        if config_key_problem(key):
            raise error(
                INVALID,
                f'invalid key "{key}": a valid config key must consist of alphanumeric '
                "characters, '-', '_' or '.'",
            )
    return data


def _base64(value: str) -> str:
    try:
        binascii.a2b_base64(value, strict_mode=True)
    except binascii.Error:
        raise error(INVALID, "must be base64-encoded") from None
    return value


ConfigData = Annotated[dict[str, str], AfterValidator(_config_keys)]
BinaryData = Annotated[
    dict[str, Annotated[str, AfterValidator(_base64)]], AfterValidator(_config_keys)
]

# --- Namespace -------------------------------------------------------------------


class NamespaceSpec(KubeModel):
    finalizers: list[str] | None = None


class NamespaceStatus(KubeModel):
    phase: Literal["Active", "Terminating"] = "Active"


class Namespace(KubeObject):
    metadata: LabelMeta
    spec: NamespaceSpec | None = None
    status: NamespaceStatus = Field(default_factory=NamespaceStatus)


# --- Node ------------------------------------------------------------------------

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Taint(KubeModel):
    key: str = Field(min_length=1)
    value: str | None = None
    effect: TaintEffect
    timeAdded: Time | None = None


class NodeSpec(KubeModel):
    podCIDR: str | None = None
    podCIDRs: list[str] | None = None
    unschedulable: bool | None = None
    taints: list[Taint] | None = None
    providerID: str | None = None


class NodeCondition(Condition):
    lastHeartbeatTime: Time | None = None


class NodeAddress(KubeModel):
    type: str
    address: str


class NodeSystemInfo(KubeModel):
    machineID: str | None = None
    systemUUID: str | None = None
    bootID: str | None = None
    kernelVersion: str | None = None
    osImage: str | None = None
    containerRuntimeVersion: str | None = None
    kubeletVersion: str | None = None
    kubeProxyVersion: str | None = None
    operatingSystem: str | None = None
    architecture: str | None = None


class NodeStatus(KubeModel):
    capacity: ResourceList | None = None
    allocatable: ResourceList | None = None
    phase: str | None = None
    conditions: list[NodeCondition] | None = None
    addresses: list[NodeAddress] | None = None
    nodeInfo: NodeSystemInfo | None = None


class Node(KubeObject):
    metadata: SubdomainMeta
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus | None = None


# --- Pod: containers -------------------------------------------------------------


class ContainerPort(KubeModel):
    name: PortName | None = None
    containerPort: Port
    protocol: Protocol = "TCP"
    hostPort: Port | None = None
    hostIP: str | None = None


class ResourceRequirements(KubeModel):
    limits: ResourceList | None = None
    requests: ResourceList | None = None

    @model_validator(mode="after")
    def _requests_default_to_limits(self) -> Self:
        # Kubernetes: a resource with a limit and no request requests its limit.
        if self.limits:
            requests = self.requests or {}
            for name, quantity in self.limits.items():
                requests.setdefault(name, quantity)
            self.requests = requests
            errors = [
                field_error(
                    ("requests", name),
                    INVALID,
                    f"must be less than or equal to {name} limit of {limit}",
                )
                for name, limit in self.limits.items()
                if quantity_milli_value(requests[name]) > quantity_milli_value(limit)
            ]
            raise_errors("ResourceRequirements", errors)
        return self


class VolumeMount(KubeModel):
    name: str = Field(min_length=1)
    mountPath: str = Field(min_length=1)
    readOnly: bool | None = None
    subPath: str | None = None


class ExecAction(KubeModel):
    command: list[str] | None = None


class HTTPHeader(KubeModel):
    name: str
    value: str


class HTTPGetAction(KubeModel):
    path: str = "/"
    port: PortOrName
    host: str | None = None
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    httpHeaders: list[HTTPHeader] | None = None


class TCPSocketAction(KubeModel):
    port: PortOrName
    host: str | None = None


class GRPCAction(KubeModel):
    port: Port
    service: str | None = None


class Probe(KubeModel):
    exec: ExecAction | None = None
    httpGet: HTTPGetAction | None = None
    tcpSocket: TCPSocketAction | None = None
    grpc: GRPCAction | None = None
    initialDelaySeconds: int | None = Field(None, ge=0, le=INT32_MAX)
    timeoutSeconds: int = Field(1, ge=0, le=INT32_MAX)
    periodSeconds: int = Field(10, ge=0, le=INT32_MAX)
    successThreshold: int = Field(1, ge=0, le=INT32_MAX)
    failureThreshold: int = Field(3, ge=0, le=INT32_MAX)
    terminationGracePeriodSeconds: int | None = Field(None, ge=1, le=INT64_MAX)

    @model_validator(mode="after")
    def _one_handler(self) -> Self:
        handlers = sum(h is not None for h in (self.exec, self.httpGet, self.tcpSocket, self.grpc))
        if handlers == 0:
            raise error(REQUIRED, "must specify a handler type")
        if handlers > 1:
            raise error(FORBIDDEN, "may not specify more than 1 handler type")
        return self


def default_pull_policy(image: str) -> Literal["Always", "IfNotPresent"]:
    """Kubernetes: `Always` for `:latest` or an untagged image, else `IfNotPresent`."""
    if "@" in image:  # pinned by digest
        return "IfNotPresent"
    last = image.rpartition("/")[2]
    _, colon, tag = last.partition(":")
    return "Always" if not colon or tag == "latest" else "IfNotPresent"


class Container(KubeModel):
    name: DNSLabel
    image: str = Field(min_length=1)
    command: list[str] | None = None
    args: list[str] | None = None
    workingDir: str | None = None
    ports: list[ContainerPort] | None = None
    env: list[EnvVar] | None = None
    envFrom: list[EnvFromSource] | None = None
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    volumeMounts: list[VolumeMount] | None = None
    livenessProbe: Probe | None = None
    readinessProbe: Probe | None = None
    startupProbe: Probe | None = None
    terminationMessagePath: str = "/dev/termination-log"
    terminationMessagePolicy: Literal["File", "FallbackToLogsOnError"] = "File"
    imagePullPolicy: Literal["Always", "IfNotPresent", "Never"] | None = None

    @model_validator(mode="after")
    def _defaults_and_probes(self) -> Self:
        if self.imagePullPolicy is None:
            self.imagePullPolicy = default_pull_policy(self.image)
        live, startup = self.livenessProbe, self.startupProbe
        if (live and live.successThreshold != 1) or (startup and startup.successThreshold != 1):
            errors = [
                field_error((name, "successThreshold"), INVALID, "must be 1")
                for name, probe in (("livenessProbe", live), ("startupProbe", startup))
                if probe and probe.successThreshold != 1
            ]
            raise_errors("Container", errors)
        return self


# --- Pod -------------------------------------------------------------------------


class Toleration(KubeModel):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: TaintEffect | None = None
    tolerationSeconds: Int64 | None = None


class PodSpec(KubeModel):
    initContainers: list[Container] | None = None
    containers: list[Container] = Field(min_length=1)
    volumes: list[Volume] | None = None
    restartPolicy: Literal["Always", "OnFailure", "Never"] = "Always"
    terminationGracePeriodSeconds: int = Field(30, ge=0, le=INT64_MAX)
    activeDeadlineSeconds: int | None = Field(None, ge=1, le=INT64_MAX)
    dnsPolicy: Literal["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] = (
        "ClusterFirst"
    )
    nodeSelector: dict[str, str] | None = None
    serviceAccountName: str | None = None
    nodeName: str | None = None
    hostNetwork: bool | None = None
    securityContext: dict[str, Any] = Field(default_factory=dict)
    affinity: dict[str, Any] | None = None
    schedulerName: str = "default-scheduler"
    tolerations: list[Toleration] | None = None
    priorityClassName: str | None = None
    priority: Int32 | None = None
    enableServiceLinks: bool = True

    @model_validator(mode="after")
    def _cross_references(self) -> Self:
        containers = self.containers + (self.initContainers or [])
        volumes = {v.name for v in self.volumes or ()}
        unique = len(volumes) == len(self.volumes or ()) and len(
            {c.name for c in containers}
        ) == len(containers)
        mounts_ok = all(m.name in volumes for c in containers for m in c.volumeMounts or ())
        if not (unique and mounts_ok):
            raise_errors("PodSpec", self._reference_errors(volumes))
        return self

    def _reference_errors(self, volumes: set[str]) -> list[InitErrorDetails]:
        errors = duplicate_names("volumes", (v.name for v in self.volumes or ()))
        names: set[str] = set()
        for group in ("initContainers", "containers"):
            for i, c in enumerate(getattr(self, group) or ()):
                if c.name in names:
                    why = f'duplicate value "{c.name}"'
                    errors.append(field_error((group, i, "name"), DUPLICATE, why))
                names.add(c.name)
                for j, mount in enumerate(c.volumeMounts or ()):
                    if mount.name not in volumes:
                        loc = (group, i, "volumeMounts", j, "name")
                        why = f'volume "{mount.name}" not found'
                        errors.append(field_error(loc, NOT_FOUND, why))
        return errors


class PodCondition(Condition):
    lastProbeTime: Time | None = None


class ContainerStatus(KubeModel):
    name: str
    ready: bool = False
    restartCount: Int32 = 0
    image: str | None = None
    imageID: str | None = None
    containerID: str | None = None
    started: bool | None = None
    state: dict[str, Any] | None = None
    lastState: dict[str, Any] | None = None


class PodStatus(KubeModel):
    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"] | None = None
    conditions: list[PodCondition] | None = None
    message: str | None = None
    reason: str | None = None
    nominatedNodeName: str | None = None
    hostIP: str | None = None
    podIP: str | None = None
    podIPs: list[dict[str, str]] | None = None
    startTime: Time | None = None
    initContainerStatuses: list[ContainerStatus] | None = None
    containerStatuses: list[ContainerStatus] | None = None
    qosClass: str | None = None


class Pod(KubeObject):
    metadata: SubdomainMeta
    spec: PodSpec
    status: PodStatus | None = None


# --- Service and Endpoints -------------------------------------------------------


class ServicePort(KubeModel):
    name: DNSLabel | None = None
    protocol: Protocol = "TCP"
    appProtocol: str | None = None
    port: Port
    targetPort: PortOrName | None = None
    nodePort: Port | None = None

    @model_validator(mode="after")
    def _target_defaults_to_port(self) -> Self:
        if self.targetPort is None:
            self.targetPort = self.port
        return self


class ServiceSpec(KubeModel):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] = "ClusterIP"
    ports: list[ServicePort] | None = None
    selector: Labels | None = None
    clusterIP: str | None = None
    clusterIPs: list[str] | None = None
    externalName: str | None = None
    externalIPs: list[str] | None = None
    sessionAffinity: Literal["None", "ClientIP"] = "None"
    externalTrafficPolicy: Literal["Cluster", "Local"] | None = None
    internalTrafficPolicy: Literal["Cluster", "Local"] | None = None
    publishNotReadyAddresses: bool | None = None
    # The families are set with the ClusterIP (control.api.storewrites).
    ipFamilies: list[Literal["IPv4", "IPv6"]] | None = Field(None, max_length=2)
    ipFamilyPolicy: Literal["SingleStack", "PreferDualStack", "RequireDualStack"] | None = None

    @model_validator(mode="after")
    def _defaults_and_ports(self) -> Self:
        errors: list[InitErrorDetails] = []
        if self.type == "ExternalName":
            if not self.externalName:
                errors.append(field_error(("externalName",), REQUIRED, "required"))
        else:
            if self.ipFamilyPolicy is None:
                self.ipFamilyPolicy = "SingleStack"
            if self.internalTrafficPolicy is None:
                self.internalTrafficPolicy = "Cluster"
            if self.externalTrafficPolicy is None and self.type in ("NodePort", "LoadBalancer"):
                self.externalTrafficPolicy = "Cluster"
            if not self.ports and self.clusterIP != "None":
                errors.append(field_error(("ports",), REQUIRED, "required"))
        ports = self.ports or []
        names: set[str] = set()
        seen: set[tuple[int, str]] = set()
        for i, p in enumerate(ports):
            if len(ports) > 1 and not p.name:
                errors.append(field_error(("ports", i, "name"), REQUIRED, "required"))
            elif p.name in names:
                errors.append(
                    field_error(("ports", i, "name"), DUPLICATE, f'duplicate value "{p.name}"')
                )
            if p.name:
                names.add(p.name)
            if (p.port, p.protocol) in seen:
                why = f'duplicate value "{p.port}/{p.protocol}"'
                errors.append(field_error(("ports", i), DUPLICATE, why))
            seen.add((p.port, p.protocol))
        raise_errors("ServiceSpec", errors)
        return self


class LoadBalancerIngress(KubeModel):
    ip: str | None = None
    hostname: str | None = None


class LoadBalancerStatus(KubeModel):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(KubeModel):
    loadBalancer: LoadBalancerStatus | None = None


class Service(KubeObject):
    metadata: DNS1035Meta
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: ServiceStatus | None = None


class EndpointAddress(KubeModel):
    ip: IPAddress
    hostname: str | None = None
    nodeName: str | None = None
    targetRef: ObjectReference | None = None


class EndpointPort(KubeModel):
    name: DNSLabel | None = None
    port: Port
    protocol: Protocol = "TCP"
    appProtocol: str | None = None


class EndpointSubset(KubeModel):
    addresses: list[EndpointAddress] | None = None
    notReadyAddresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class Endpoints(KubeObject):
    metadata: SubdomainMeta
    subsets: list[EndpointSubset] | None = None


# --- Secret and ConfigMap --------------------------------------------------------


def _size_error(errors: list[InitErrorDetails], field: str, size: int) -> None:
    if size > DATA_MAX_BYTES:
        why = f"must have at most {DATA_MAX_BYTES} bytes"
        errors.append(field_error((field,), TOO_LONG, why))


class Secret(KubeObject):
    metadata: SubdomainMeta
    type: str = "Opaque"
    data: BinaryData | None = None
    stringData: ConfigData | None = None
    immutable: bool | None = None

    @model_validator(mode="after")
    def _merge_string_data(self) -> Self:
        # Kubernetes treats stringData as write-only: it is encoded into data.
        if self.stringData:
            data = self.data or {}
            for key, value in self.stringData.items():
                data[key] = base64.b64encode(value.encode()).decode()
            self.data = data
        self.stringData = None
        errors: list[InitErrorDetails] = []
        data = self.data or {}
        _size_error(errors, "data", sum(len(k) + len(v) * 3 // 4 for k, v in data.items()))
        if self.type == "kubernetes.io/tls":
            for key in ("tls.crt", "tls.key"):
                if key not in data:
                    errors.append(field_error(("data", key), REQUIRED, "required"))
        raise_errors("Secret", errors)
        return self


class ConfigMap(KubeObject):
    metadata: SubdomainMeta
    data: ConfigData | None = None
    binaryData: BinaryData | None = None
    immutable: bool | None = None

    @model_validator(mode="after")
    def _keys_and_size(self) -> Self:
        errors: list[InitErrorDetails] = []
        data, binary = self.data or {}, self.binaryData or {}
        for key in binary:
            if key in data:
                why = f'duplicate of key "{key}" present in `data`'
                errors.append(field_error(("binaryData", key), DUPLICATE, why))
        size = sum(len(k) + len(v) for k, v in data.items())
        size += sum(len(k) + len(v) * 3 // 4 for k, v in binary.items())
        _size_error(errors, "data", size)
        raise_errors("ConfigMap", errors)
        return self


# --- Event -----------------------------------------------------------------------


class EventSource(KubeModel):
    component: str | None = None
    host: str | None = None


class Event(KubeObject):
    metadata: SubdomainMeta
    involvedObject: ObjectReference
    reason: str | None = None
    message: str | None = None
    source: EventSource | None = None
    firstTimestamp: Time | None = None
    lastTimestamp: Time | None = None
    count: Int32 | None = None
    type: Literal["Normal", "Warning"] | None = None
    eventTime: Time | None = None
    action: str | None = None
    reportingComponent: str | None = None
    reportingInstance: str | None = None
