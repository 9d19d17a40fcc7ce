"""The official `kubernetes` Python client against `pilothouse serve`, over
TLS with its kubeconfig: the objects must have the shapes it models (it
refuses a Node whose nodeInfo lacks a field)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.conftest import Served
from tests.polling import eventually_blocking


@pytest.fixture
def k8s(served: Served) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(served.kubeconfig))


def _watch_default(
    w: watch.Watch, list_fn: Callable[..., Any], selector: str, **options: object
) -> Iterator[dict[str, Any]]:
    """`w`'s events of the labelled objects `list_fn` lists in the default
    namespace, for 5 seconds at most."""
    events: Iterator[dict[str, Any]] = w.stream(
        list_fn, "default", label_selector=selector, timeout_seconds=5, **options
    )
    return events


def _deployment(name: str) -> client.V1Deployment:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": name}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": name}),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="web", image="pilothouse/busybox")]
                ),
            ),
        ),
    )


def test_list_create_watch_patch_scale(k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    apps = client.AppsV1Api(k8s)

    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "kube-system"} <= names

    created = apps.create_namespaced_deployment("default", _deployment("web"))
    assert created.spec.strategy.rolling_update.max_surge == "25%"
    pod = core.create_namespaced_pod(
        "default",
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="p1", labels={"app": "x"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
        ),
    )
    assert pod.status.phase == "Pending"
    listed = core.list_namespaced_pod("default", label_selector="app=x")
    assert [p.metadata.name for p in listed.items] == ["p1"]

    rv = listed.metadata.resource_version
    core.patch_namespaced_pod("p1", "default", {"metadata": {"labels": {"tier": "web"}}})
    w = watch.Watch()
    seen = []
    # Only p1: the deployment's pods change meanwhile too (scheduled, bound),
    # and the scheduler may write p1's PodScheduled condition before the patch.
    for event in _watch_default(w, core.list_namespaced_pod, "app=x", resource_version=rv):
        tier = event["object"].metadata.labels.get("tier")
        seen.append((event["type"], event["object"].metadata.name, tier))
        if tier:
            w.stop()
    assert seen[-1] == ("MODIFIED", "p1", "web")
    assert all(s[:2] == ("MODIFIED", "p1") for s in seen)

    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 2
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}})
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 5
    apps.patch_namespaced_deployment("web", "default", {"metadata": {"annotations": {"a": "b"}}})
    assert apps.read_namespaced_deployment("web", "default").metadata.annotations["a"] == "b"

    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod("missing", "default")
    assert exc.value.status == 404
    with pytest.raises(ApiException) as exc:
        apps.create_namespaced_deployment("default", _deployment("web"))
    assert exc.value.status == 409


def test_delete_answers_a_status_and_honours_dry_run(k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"), data={"k": "v"})
    uid = core.create_namespaced_config_map("default", cm).metadata.uid
    # This client types a delete's answer as a plain object: the Status, as a dict.
    dry = core.delete_namespaced_config_map(
        "c", "default", body=client.V1DeleteOptions(dry_run=["All"])
    )
    assert (dry["kind"], dry["status"]) == ("Status", "Success")
    assert core.read_namespaced_config_map("c", "default").metadata.uid == uid
    status = core.delete_namespaced_config_map("c", "default")
    assert (status["kind"], status["status"]) == ("Status", "Success")
    assert status["details"] == {"name": "c", "kind": "configmaps", "uid": uid}
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("c", "default")
    assert exc.value.status == 404
    # It is a V1Status as the client models one.
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="d"))
    )
    typed = client.V1Status.from_dict(core.delete_namespaced_config_map("d", "default"))
    assert typed is not None and typed.status == "Success"
    assert typed.details is not None and typed.details.name == "d"


def test_hollow_nodes_list_as_kubernetes_nodes(hollow_served: Served) -> None:
    """`serve --hollow-nodes`: the nodes join through the node link, their
    nodeInfo is complete (the client requires every field), pods run on them,
    and their logs are the hollow agent's."""
    k8s = config.new_client_from_config(config_file=str(hollow_served.kubeconfig))
    core = client.CoreV1Api(k8s)

    def ready_nodes() -> list[client.V1Node]:
        nodes = core.list_node().items
        ready = [
            n
            for n in nodes
            if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
        ]
        return ready if len(ready) == 2 else []

    nodes = eventually_blocking(ready_nodes, within=30, every=0.2)
    assert sorted(n.metadata.name for n in nodes) == ["hollow-1", "hollow-2"]
    info = nodes[0].status.node_info
    assert len(info.machine_id) == 32 and info.system_uuid and info.boot_id
    assert info.operating_system == "linux" and info.kube_proxy_version == ""
    again = core.read_node(nodes[0].metadata.name).status.node_info
    assert again.machine_id == info.machine_id  # stable

    core.create_namespaced_pod(
        "default",
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="p"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
        ),
    )
    pod = eventually_blocking(
        lambda: (p := core.read_namespaced_pod("p", "default")).status.phase == "Running" and p,
        within=30,
        every=0.2,
    )
    assert pod.spec.node_name in ("hollow-1", "hollow-2")
    assert core.read_namespaced_pod_log("p", "default").startswith("p/c line 1\n")
    # The default tolerations, as DefaultTolerationSeconds adds them.
    assert {(t.key, t.effect, t.toleration_seconds) for t in pod.spec.tolerations} == {
        ("node.kubernetes.io/not-ready", "NoExecute", 300),
        ("node.kubernetes.io/unreachable", "NoExecute", 300),
    }


def test_watch_list_and_exact_lists(k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    for name in ("a", "b"):
        core.create_namespaced_config_map(
            "default",
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"set": "w"})),
        )
    # Labelled: the namespace also holds kube-root-ca.crt.
    listed = core.list_namespaced_config_map("default", label_selector="set=w")
    w = watch.Watch()
    seen = []
    for event in _watch_default(
        w,
        core.list_namespaced_config_map,
        "set=w",
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
    ):
        if event["type"] == "BOOKMARK":
            # This client hands a bookmark's object over as the raw dict.
            meta = event["object"]["metadata"]
            seen.append(("BOOKMARK", meta.get("name"), meta.get("annotations")))
            w.stop()
            continue
        meta = event["object"].metadata
        seen.append((event["type"], meta.name, meta.annotations))
    assert seen == [
        ("ADDED", "a", None),
        ("ADDED", "b", None),
        ("BOOKMARK", None, {"k8s.io/initial-events-end": "true"}),
    ]
    assert w.resource_version == listed.metadata.resource_version

    core.delete_namespaced_config_map("a", "default")
    exact = core.list_namespaced_config_map(
        "default",
        label_selector="set=w",
        resource_version=listed.metadata.resource_version,
        resource_version_match="Exact",
    )
    assert [c.metadata.name for c in exact.items] == ["a", "b"]
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_config_map(
            "default", resource_version_match="Exact", _preload_content=True
        )
    assert exc.value.status == 422
