"""Unknown fields: the fields of an object that Kubernetes' schema of its
kind does not have (the `fieldValidation` of a write).

The models keep what they do not model, so a field is known when its model
names it or when it is in UNMODELLED: Kubernetes fields that a model keeps
as given without modelling them. A model not in that table models all of
its kind's fields.
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from control.objects import apps, core, discovery, gateway, meta, networking

# Per module, one model a line: its name, then the Kubernetes fields it keeps unmodelled.
_TABLE = {
    meta: """
        ObjectMeta selfLink managedFields
        Condition observedGeneration
    """,
    core: """
        NamespaceStatus conditions
        NodeSpec configSource externalID
        NodeStatus daemonEndpoints images volumesInUse volumesAttached config runtimeHandlers
            features declaredFeatures
        NodeSystemInfo swap
        ResourceRequirements claims
        VolumeMount mountPropagation subPathExpr recursiveReadOnly
        Container envFrom lifecycle securityContext stdin stdinOnce tty volumeDevices
            resizePolicy restartPolicy restartPolicyRules
        Volume hostPath emptyDir gcePersistentDisk awsElasticBlockStore gitRepo secret nfs
            iscsi glusterfs persistentVolumeClaim rbd flexVolume cinder cephfs flocker
            downwardAPI fc azureFile configMap vsphereVolume quobyte azureDisk
            photonPersistentDisk projected portworxVolume scaleIO storageos csi ephemeral image
        PodSpec ephemeralContainers automountServiceAccountToken serviceAccount hostPID hostIPC
            shareProcessNamespace imagePullSecrets hostname subdomain hostAliases dnsConfig
            readinessGates runtimeClassName preemptionPolicy overhead topologySpreadConstraints
            setHostnameAsFQDN os hostUsers schedulingGates resourceClaims resources
            hostnameOverride
        PodCondition observedGeneration
        ContainerStatus allocatedResources resources volumeMounts user allocatedResourcesStatus
            stopSignal
        PodStatus ephemeralContainerStatuses hostIPs resize resourceClaimStatuses
            observedGeneration
        ServiceSpec loadBalancerIP loadBalancerSourceRanges healthCheckNodePort
            sessionAffinityConfig ipFamilies ipFamilyPolicy allocateLoadBalancerNodePorts
            loadBalancerClass trafficDistribution
        LoadBalancerIngress ipMode ports
        ServiceStatus conditions
        Event related series
    """,
    apps: """
        DeploymentStatus terminatingReplicas
        ReplicaSetStatus terminatingReplicas
    """,
    networking: """
        IngressClassParameters apiGroup namespace
    """,
    discovery: """
        EndpointHints forNodes
    """,
    gateway: """
        GatewayClassSpec parametersRef description
        ConditionsStatus supportedFeatures
        GatewaySpec addresses infrastructure backendTLS allowedListeners tls defaultScope
        Listener hostname allowedRoutes
        GatewayTLSConfig options frontendValidation
        CertificateRef group kind namespace
        GatewayStatus listeners
        GatewayAddress type
        ParentReference group kind namespace sectionName
        HTTPRouteRule name matches filters timeouts retry sessionPersistence
        HTTPBackendRef group kind namespace filters
    """,
}


def _unmodelled() -> dict[type[BaseModel], frozenset[str]]:
    table: dict[type[BaseModel], frozenset[str]] = {}
    for module, text in _TABLE.items():
        # A line that starts with a lower-case word continues the model above.
        entries = re.split(r"\n\s*(?=[A-Z])", text.strip())
        for entry in entries:
            name, *fields = entry.split()
            table[getattr(module, name)] = frozenset(fields)
    return table


UNMODELLED = _unmodelled()


def _known(model: type[BaseModel], name: str) -> bool:
    if name in model.model_fields:
        return True
    return any(name in UNMODELLED.get(m, ()) for m in model.__mro__ if issubclass(m, BaseModel))


def unknown_fields(model: type[BaseModel], data: Any, *, patch: bool = False) -> list[str]:
    """The paths (`spec.template.spec.containers[0].imagee`) of the fields of
    `data` that `model`'s kind does not have. With `patch`, `data` is a merge
    or strategic merge patch: its directives (`$patch`, ...) are not fields."""
    found: list[str] = []
    _walk_model(model, data, "", patch, found)
    return found


def _walk_model(
    model: type[BaseModel], data: Any, path: str, patch: bool, found: list[str]
) -> None:
    if not isinstance(data, dict):
        return
    for name, value in data.items():
        if patch and name.startswith("$"):
            continue
        sub = f"{path}.{name}" if path else name
        field = model.model_fields.get(name)
        if field is None:
            if not _known(model, name):
                found.append(sub)
            continue
        _walk_type(field.annotation, value, sub, patch, found)


def _walk_type(annotation: Any, value: Any, path: str, patch: bool, found: list[str]) -> None:
    origin = get_origin(annotation)
    if origin is Annotated:
        _walk_type(get_args(annotation)[0], value, path, patch, found)
    elif origin in (Union, types.UnionType):
        for option in get_args(annotation):
            if option is not type(None):
                _walk_type(option, value, path, patch, found)
    elif origin is list and isinstance(value, list):
        (item,) = get_args(annotation)
        for i, v in enumerate(value):
            _walk_type(item, v, f"{path}[{i}]", patch, found)
    elif origin is dict and isinstance(value, dict):
        _, item = get_args(annotation)
        for k, v in value.items():
            _walk_type(item, v, f"{path}.{k}", patch, found)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _walk_model(annotation, value, path, patch, found)
