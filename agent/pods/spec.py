"""Pod spec -> CRI configs: labels, image names, resources, env, DNS."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.cri import api_pb2 as pb
from agent.protocol.primitives import quantity_milli_value, quantity_value

from .envvars import container_env, expand
from .sources import Sources
from .volumes import volume_mounts

Obj = dict[str, Any]  # a Kubernetes object (a pod, its status) as JSON

# Labels on sandboxes and containers: how the agent finds them again after a restart.
MANAGED = "pilothouse.io/managed"
POD_UID = "io.kubernetes.pod.uid"
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
CONTAINER_NAME = "io.kubernetes.container.name"
# Annotations.
RESTART_COUNT = "io.kubernetes.container.restartCount"
GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"

DEFAULT_GRACE = 30
CPU_PERIOD = 100_000


def normalize_image(image: str) -> str:
    """The fully qualified name containerd stores: pilothouse/busybox ->
    docker.io/pilothouse/busybox:latest."""
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = "docker.io/" + name
        if "/" not in name[len("docker.io/") :]:
            name = name.replace("docker.io/", "docker.io/library/", 1)
    if digest:
        return f"{name}@{digest}"
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def pod_labels(pod: Obj) -> dict[str, str]:
    meta = pod["metadata"]
    return {
        MANAGED: "true",
        POD_UID: str(meta["uid"]),
        POD_NAME: str(meta.get("name", "")),
        POD_NAMESPACE: str(meta.get("namespace", "default")),
    }


def pod_key(pod: Obj) -> str:
    meta = pod["metadata"]
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"


def grace_period(pod: Obj) -> int:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    for v in (meta.get("deletionGracePeriodSeconds"), spec.get("terminationGracePeriodSeconds")):
        if isinstance(v, int) and v >= 0:
            return v
    return DEFAULT_GRACE


@dataclass
class NodeConfig:
    """What the sandbox and container configs need from the node."""

    name: str
    state_dir: Path
    cgroup_parent: str = ""
    cluster_dns: str = ""
    cluster_domain: str = "cluster.local"
    node_ip: str = ""
    # What the node can give pods (quantities): a resourceFieldRef's limit when the container has none.
    allocatable: dict[str, str] = field(default_factory=dict)
    # Whether Secret volumes get a tmpfs (secretfs), mounted with the first of them.
    secret_tmpfs: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def log_dir(self, pod: Obj) -> Path:
        meta = pod["metadata"]
        return (
            self.state_dir
            / "pods"
            / f"{meta.get('namespace', 'default')}_{meta.get('name', '')}_{meta['uid']}"
        )


def dns_config(pod: Obj, node: NodeConfig) -> pb.DNSConfig | None:
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if spec.get("hostNetwork") and policy == "ClusterFirst":
        policy = "Default"
    custom = spec.get("dnsConfig") or {}
    cfg = pb.DNSConfig()
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and node.cluster_dns:
        ns = pod["metadata"].get("namespace", "default")
        d = node.cluster_domain
        cfg.servers.append(node.cluster_dns)
        cfg.searches.extend([f"{ns}.svc.{d}", f"svc.{d}", d])
        cfg.options.append("ndots:5")
    elif policy != "None":
        return None if not custom else _add_custom(cfg, custom)
    return _add_custom(cfg, custom)


def _add_custom(cfg: pb.DNSConfig, custom: Obj) -> pb.DNSConfig:
    cfg.servers.extend(str(s) for s in custom.get("nameservers") or [])
    cfg.searches.extend(str(s) for s in custom.get("searches") or [])
    for opt in custom.get("options") or []:
        name, value = opt.get("name", ""), opt.get("value")
        cfg.options.append(f"{name}:{value}" if value is not None else name)
    return cfg


def sandbox_config(pod: Obj, node: NodeConfig, attempt: int) -> pb.PodSandboxConfig:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    host_net = bool(spec.get("hostNetwork"))
    ports = [
        pb.PortMapping(
            protocol={"UDP": pb.UDP, "SCTP": pb.SCTP}.get(p.get("protocol", "TCP"), pb.TCP),
            container_port=int(p["containerPort"]),
            host_port=int(p["hostPort"]),
            host_ip=str(p.get("hostIP", "")),
        )
        for c in spec.get("containers") or []
        for p in c.get("ports") or []
        if p.get("hostPort")
    ]
    privileged = any(
        (c.get("securityContext") or {}).get("privileged") for c in spec.get("containers") or []
    )
    ns_opts = pb.NamespaceOption(network=pb.NODE if host_net else pb.POD, pid=pb.CONTAINER)
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(
            name=str(meta.get("name", "")),
            uid=str(meta["uid"]),
            namespace=str(meta.get("namespace", "default")),
            attempt=attempt,
        ),
        hostname="" if host_net else str(spec.get("hostname") or meta.get("name", ""))[:63],
        log_directory=str(node.log_dir(pod)),
        port_mappings=ports,
        labels=pod_labels(pod),
        annotations={GRACE_PERIOD: str(grace_period(pod))},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=node.cgroup_parent,
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=ns_opts, privileged=privileged
            ),
        ),
    )
    dns = dns_config(pod, node)
    if dns is not None:
        cfg.dns_config.CopyFrom(dns)
    return cfg


def linux_resources(container: Obj) -> pb.LinuxContainerResources:
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out = pb.LinuxContainerResources()
    # In whole millicores and bytes, rounded up, as the kubelet converts them.
    cpu_req = requests.get("cpu", limits.get("cpu"))
    if cpu_req is not None:
        out.cpu_shares = max(2, quantity_milli_value(cpu_req) * 1024 // 1000)
    else:
        out.cpu_shares = 2
    if "cpu" in limits:
        out.cpu_period = CPU_PERIOD
        out.cpu_quota = max(1000, quantity_milli_value(limits["cpu"]) * CPU_PERIOD // 1000)
    if "memory" in limits:
        out.memory_limit_in_bytes = quantity_value(limits["memory"])
        # No swap beyond the limit (the kubelet's NoSwap): over it is an OOM kill.
        out.memory_swap_limit_in_bytes = out.memory_limit_in_bytes
    return out


def container_config(
    container: Obj,
    pod: Obj,
    image: str,
    attempt: int,
    pod_ip: str,
    node: NodeConfig,
    *,
    envs: list[pb.KeyValue] | None = None,
) -> pb.ContainerConfig:
    """The container's CRI config; `envs` is its environment when already
    resolved (envvars.container_env), else resolved here without ConfigMaps
    or Secrets."""
    name = str(container["name"])
    if envs is None:
        envs = container_env(container, pod, pod_ip, node, Sources()).env
    env_map = {kv.key: kv.value for kv in envs}
    sc = container.get("securityContext") or {}
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    security = pb.LinuxContainerSecurityContext(
        privileged=bool(sc.get("privileged")),
        namespace_options=pb.NamespaceOption(
            network=pb.NODE if (pod.get("spec") or {}).get("hostNetwork") else pb.POD,
            pid=pb.CONTAINER,
        ),
        readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")),
    )
    run_as_user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if run_as_user is not None:
        security.run_as_user.value = int(run_as_user)
    run_as_group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    if run_as_group is not None and run_as_user is not None:
        security.run_as_group.value = int(run_as_group)
    caps = sc.get("capabilities") or {}
    if caps:
        security.capabilities.add_capabilities.extend(caps.get("add") or [])
        security.capabilities.drop_capabilities.extend(caps.get("drop") or [])
    labels = pod_labels(pod)
    labels[CONTAINER_NAME] = name
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name, attempt=attempt),
        image=pb.ImageSpec(image=image),
        command=[expand(str(c), env_map) for c in container.get("command") or []],
        args=[expand(str(a), env_map) for a in container.get("args") or []],
        working_dir=str(container.get("workingDir") or ""),
        envs=envs,
        mounts=volume_mounts(container, pod, node),
        labels=labels,
        annotations={RESTART_COUNT: str(attempt), GRACE_PERIOD: str(grace_period(pod))},
        log_path=f"{name}/{attempt}.log",
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        linux=pb.LinuxContainerConfig(
            resources=linux_resources(container), security_context=security
        ),
    )


def qos_class(pod: Obj) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        if not ("cpu" in limits and "memory" in limits):
            return "Burstable"
        if any(str(requests.get(k, limits[k])) != str(limits[k]) for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"
