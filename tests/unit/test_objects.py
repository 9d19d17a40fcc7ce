"""Object models: Kubernetes defaults, unknown fields kept, field-path errors, manifests."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest

from control.errors import ApiError
from control.objects import kinds
from control.objects.admission import MODELS, admit
from control.objects.columns import node_status
from control.objects.core import default_pull_policy
from control.objects.manifest import ManifestError, load_manifests, load_paths
from control.objects.meta import LabelSelector

LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)


def deployment(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
        },
    }
    body.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": body,
    }


def pod(**container: Any) -> dict[str, Any]:
    c = {"name": "app", "image": "busybox:1.36", **container}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [c]},
    }


def causes(obj: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ApiError) as info:
        admit(obj)
    assert info.value.code == 422
    return {c.field: c.message for c in info.value.causes}


def cause_reasons(obj: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ApiError) as info:
        admit(obj)
    return {c.field: c.reason for c in info.value.causes}


# --- defaults ----------------------------------------------------------------------


def test_deployment_defaults() -> None:
    out = admit(deployment())
    spec = out["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["minReadySeconds"] == 0
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always"
    assert pod_spec["terminationGracePeriodSeconds"] == 30
    assert pod_spec["dnsPolicy"] == "ClusterFirst"
    assert pod_spec["schedulerName"] == "default-scheduler"
    container = pod_spec["containers"][0]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_partial_rolling_update_gets_the_other_default() -> None:
    out = admit(deployment(strategy={"rollingUpdate": {"maxSurge": 1}}))
    assert out["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": "25%"}


def test_recreate_strategy_has_no_rolling_update() -> None:
    out = admit(deployment(strategy={"type": "Recreate"}))
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_null_means_unset_so_defaults_apply() -> None:
    obj = deployment(replicas=None, strategy=None, minReadySeconds=None)
    obj["metadata"]["creationTimestamp"] = None
    obj["spec"]["template"]["spec"]["containers"][0]["resources"] = None
    out = admit(obj)
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["strategy"]["type"] == "RollingUpdate"
    assert out["spec"]["template"]["spec"]["containers"][0]["resources"] == {}
    assert "creationTimestamp" not in out["metadata"]
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = None
    assert causes(obj) == {"spec.template.spec.containers[0].image": "required"}


def test_unset_optional_fields_are_omitted() -> None:
    out = admit(pod())
    assert "status" not in out
    assert "nodeName" not in out["spec"]
    assert "command" not in out["spec"]["containers"][0]
    assert "uid" not in out["metadata"]


def test_probe_defaults() -> None:
    out = admit(
        pod(
            livenessProbe={"httpGet": {"port": 8080}},
            readinessProbe={"tcpSocket": {"port": "http"}, "periodSeconds": 5},
        )
    )
    container = out["spec"]["containers"][0]
    assert container["livenessProbe"] == {
        "httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert container["readinessProbe"]["periodSeconds"] == 5
    assert container["readinessProbe"]["tcpSocket"] == {"port": "http"}


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("registry.local:5000/team/app", "Always"),
        ("registry.local:5000/team/app:v2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_image_pull_policy_default(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy
    assert admit(pod(image=image))["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_explicit_image_pull_policy_is_kept() -> None:
    out = admit(pod(image="nginx", imagePullPolicy="IfNotPresent"))
    assert out["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_container_port_protocol_and_requests_from_limits() -> None:
    out = admit(
        pod(ports=[{"containerPort": 80}], resources={"limits": {"cpu": 1, "memory": "64Mi"}})
    )
    container = out["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["resources"] == {
        "limits": {"cpu": "1", "memory": "64Mi"},
        "requests": {"cpu": "1", "memory": "64Mi"},
    }


def test_service_defaults() -> None:
    out = admit(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [
                    {"name": "http", "port": 80},
                    {"name": "admin", "port": 81, "targetPort": "admin"},
                ],
            },
        }
    )
    spec = out["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 80},
        {"name": "admin", "protocol": "TCP", "port": 81, "targetPort": "admin"},
    ]


def test_secret_defaults_and_string_data() -> None:
    out = admit(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"user": "YWRtaW4="},
            "stringData": {"password": "s3cret"},
        }
    )
    assert out["type"] == "Opaque"
    assert out["data"] == {"user": "YWRtaW4=", "password": "czNjcmV0"}
    assert "stringData" not in out


def test_namespace_status_defaults_to_active() -> None:
    out = admit({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    assert out["status"] == {"phase": "Active"}


# --- unknown fields ----------------------------------------------------------------


def test_unknown_fields_are_preserved_everywhere() -> None:
    obj = deployment()
    obj["x-top"] = {"nested": [1, 2]}
    obj["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    obj["spec"]["futureField"] = True
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"runAsNonRoot": True}
    container["envFrom"] = [{"configMapRef": {"name": "cfg"}}]
    obj["spec"]["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    obj["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": "/data", "mountPropagation": "None"}
    ]
    before = copy.deepcopy(obj)

    out = admit(obj)

    assert obj == before, "admit must not modify its input"
    assert out["x-top"] == {"nested": [1, 2]}
    assert out["x-top"] is not obj["x-top"]
    assert out["metadata"]["managedFields"] == [{"manager": "kubectl"}]
    assert out["spec"]["futureField"] is True
    out_container = out["spec"]["template"]["spec"]["containers"][0]
    assert out_container["securityContext"] == {"runAsNonRoot": True}
    assert out_container["envFrom"] == [{"configMapRef": {"name": "cfg"}}]
    assert out_container["volumeMounts"][0]["mountPropagation"] == "None"
    assert out["spec"]["template"]["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]


def test_admit_is_idempotent() -> None:
    once = admit(deployment())
    assert admit(once) == once


# --- errors ------------------------------------------------------------------------


def test_missing_image_is_required() -> None:
    obj = deployment()
    del obj["spec"]["template"]["spec"]["containers"][0]["image"]
    assert causes(obj) == {"spec.template.spec.containers[0].image": "required"}
    assert cause_reasons(obj) == {"spec.template.spec.containers[0].image": "FieldValueRequired"}


def test_negative_replicas() -> None:
    assert causes(deployment(replicas=-1)) == {"spec.replicas": "must be >= 0"}


def test_selector_must_match_template_labels() -> None:
    obj = deployment(selector={"matchLabels": {"app": "api"}})
    with pytest.raises(ApiError) as info:
        admit(obj)
    assert [str(c) for c in info.value.causes] == [
        "spec.template.metadata.labels: `selector` does not match template `labels`"
    ]
    assert info.value.message.startswith('Deployment "web" is invalid: ')


def test_empty_selector() -> None:
    assert causes(deployment(selector={})) == {
        "spec.selector": "empty selector is invalid for deployment"
    }


def test_namespace_name_must_be_a_dns_label() -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Team.A"}}
    assert causes(obj) == {"metadata.name": f"must be a DNS-1123 label: {LABEL_RULE}"}


def test_pod_name_must_be_a_dns_subdomain() -> None:
    obj = pod()
    obj["metadata"]["name"] = "web_1"
    assert causes(obj)["metadata.name"].startswith("must be a DNS-1123 subdomain: ")
    obj["metadata"]["name"] = "web.example-1"
    admit(obj)


def test_name_too_long() -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a" * 64}}
    assert causes(obj) == {"metadata.name": "must be no more than 63 characters"}


def test_name_is_required() -> None:
    assert causes({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}) == {
        "metadata.name": "required"
    }
    assert causes({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ""}}) == {
        "metadata.name": "required"
    }


def test_bad_labels() -> None:
    obj = pod()
    obj["metadata"]["labels"] = {"app": "has space"}
    assert causes(obj)["metadata.labels"].startswith('invalid value "has space": ')
    obj["metadata"]["labels"] = {"app": "x" * 64}
    assert causes(obj) == {
        "metadata.labels": 'invalid value "' + "x" * 64 + '": must be no more than 63 characters'
    }
    obj["metadata"]["labels"] = {"-bad": "x"}
    assert causes(obj)["metadata.labels"].startswith('invalid key "-bad": ')
    obj["metadata"]["labels"] = {"app.kubernetes.io/name": "web", "tier": ""}
    admit(obj)


def test_type_errors() -> None:
    obj = pod(image=5, ports=[{"containerPort": "eighty"}], env=[{"name": "PORT", "value": 8080}])
    obj["metadata"]["labels"] = {"version": 1.0}
    assert causes(obj) == {
        "metadata.labels[version]": "must be a string",
        "spec.containers[0].image": "must be a string",
        "spec.containers[0].ports[0].containerPort": "must be an integer",
        "spec.containers[0].env[0].value": "must be a string",
    }


def test_unsupported_enum_value() -> None:
    obj = pod()
    obj["spec"]["restartPolicy"] = "Sometimes"
    assert causes(obj) == {
        "spec.restartPolicy": 'unsupported value "Sometimes": supported values: "Always", "OnFailure", "Never"'
    }
    assert cause_reasons(obj) == {"spec.restartPolicy": "FieldValueNotSupported"}


def test_workload_template_must_restart_always() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert causes(obj) == {
        "spec.template.spec.restartPolicy": 'unsupported value "Never": supported values: "Always"'
    }


def test_multiple_causes_are_collected_at_once() -> None:
    obj = deployment(replicas=-2)
    obj["metadata"]["name"] = "Web"
    container = obj["spec"]["template"]["spec"]["containers"][0]
    del container["image"]
    container["ports"] = [{"containerPort": 70000}]
    obj["spec"]["template"]["spec"]["containers"].append({"image": "redis"})
    found = causes(obj)
    assert found == {
        "metadata.name": found["metadata.name"],
        "spec.replicas": "must be >= 0",
        "spec.template.spec.containers[0].image": "required",
        "spec.template.spec.containers[0].ports[0].containerPort": "must be between 1 and 65535, inclusive",
        "spec.template.spec.containers[1].name": "required",
    }
    assert found["metadata.name"].startswith("must be a DNS-1123 subdomain")


def test_cross_field_causes_are_collected_together() -> None:
    obj = deployment(
        selector={"matchLabels": {"app": "api"}},
        strategy={"type": "Recreate", "rollingUpdate": {}},
    )
    obj["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert set(causes(obj)) == {
        "spec.template.metadata.labels",
        "spec.template.spec.restartPolicy",
        "spec.strategy.rollingUpdate",
    }


def test_pod_cross_references() -> None:
    obj = pod(volumeMounts=[{"name": "data", "mountPath": "/data"}])
    obj["spec"]["containers"].append({"name": "app", "image": "redis"})
    assert causes(obj) == {
        "spec.containers[0].volumeMounts[0].name": 'volume "data" not found',
        "spec.containers[1].name": 'duplicate value "app"',
    }


def test_pod_volume_names_are_unique() -> None:
    obj = pod()
    obj["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]
    assert causes(obj) == {"spec.volumes[1].name": 'duplicate value "v"'}


def test_probe_needs_one_handler() -> None:
    assert causes(pod(livenessProbe={"periodSeconds": 3})) == {
        "spec.containers[0].livenessProbe": "must specify a handler type"
    }


def test_service_errors() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "1web"},
        "spec": {"ports": [{"port": 80}, {"port": 0, "protocol": "TCP"}]},
    }
    found = causes(svc)
    assert found["metadata.name"].startswith("must be a DNS-1035 label")
    assert found["spec.ports[1].port"] == "must be between 1 and 65535, inclusive"
    svc["metadata"]["name"] = "web"
    svc["spec"]["ports"][1]["port"] = 81
    assert causes(svc) == {"spec.ports[0].name": "required", "spec.ports[1].name": "required"}
    svc["spec"] = {}
    assert causes(svc) == {"spec.ports": "required"}


def test_ingress_errors() -> None:
    ing = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {
            "rules": [
                {
                    "host": "10.0.0.1",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            },
                            {
                                "path": "api",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "api", "port": {}}},
                            },
                        ]
                    },
                }
            ]
        },
    }
    assert causes(ing) == {
        "spec.rules[0].host": "must be a DNS name, not an IP address",
        "spec.rules[0].http.paths[0].pathType": "required",
        "spec.rules[0].http.paths[1].backend.service.port": "must specify `name` or `number`",
    }


def test_unknown_kind_and_api_version() -> None:
    assert causes({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}}) == {
        "kind": 'no kind "Widget" is registered for apiVersion "v1"'
    }
    assert causes(
        {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "w"}}
    ) == {
        "apiVersion": 'unsupported value "extensions/v1beta1" for kind "Ingress": supported values: "networking.k8s.io/v1"'
    }
    assert causes({"metadata": {"name": "w"}}) == {"apiVersion": "required", "kind": "required"}


@pytest.mark.parametrize(
    "obj",
    [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-1.example"},
            "spec": {"podCIDR": "10.244.1.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {
                "capacity": {"cpu": 4, "memory": "8Gi"},
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                "nodeInfo": {"kubeletVersion": "v1.29.0"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "web"},
            "subsets": [{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 80}]}],
        },
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web.17a2b"},
            "involvedObject": {"kind": "Pod", "name": "web"},
            "reason": "Scheduled",
            "type": "Normal",
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg"},
            "data": {"a.conf": "x"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web-5d8f"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                },
            },
        },
    ],
    ids=lambda obj: obj["kind"],
)
def test_other_kinds_admit(obj: dict[str, Any]) -> None:
    out = admit(obj)
    assert out["kind"] == obj["kind"]
    if obj["kind"] == "Node":
        assert out["status"]["capacity"] == {"cpu": "4", "memory": "8Gi"}
    if obj["kind"] == "Endpoints":
        assert out["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    if obj["kind"] == "ReplicaSet":
        assert out["spec"]["replicas"] == 1


def test_every_kind_has_a_model() -> None:
    assert {r.kind for r in kinds.RESOURCES} == set(MODELS)


def test_label_selector_matching() -> None:
    sel = LabelSelector.model_validate(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert sel.matches({"app": "web", "tier": "edge"})
    assert not sel.matches({"app": "web", "tier": "back"})
    assert not sel.matches({"app": "web", "tier": "edge", "canary": "1"})
    assert not sel.matches(None)
    assert LabelSelector().matches({"any": "thing"})


# --- manifests ---------------------------------------------------------------------

REAL_WORLD = """\
# A typical app: Deployment, Service and Ingress.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: prod
  labels:
    app.kubernetes.io/name: shop
    app.kubernetes.io/version: "2.3.1"
  annotations:
    deployment.kubernetes.io/revision: "4"
spec:
  replicas: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: shop
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app.kubernetes.io/name: shop
      annotations:
        prometheus.io/scrape: "true"
    spec:
      serviceAccountName: shop
      securityContext:
        runAsNonRoot: true
        fsGroup: 2000
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              topologyKey: kubernetes.io/hostname
              labelSelector:
                matchLabels:
                  app.kubernetes.io/name: shop
      tolerations:
      - key: dedicated
        operator: Equal
        value: web
        effect: NoSchedule
      containers:
      - name: shop
        image: ghcr.io/acme/shop:2.3.1
        imagePullPolicy: IfNotPresent
        args: ["--port=8080"]
        ports:
        - name: http
          containerPort: 8080
        env:
        - name: DB_HOST
          value: postgres.prod.svc.cluster.local
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef:
              name: shop-db
              key: password
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
          limits:
            cpu: "1"
            memory: 256Mi
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
          initialDelaySeconds: 5
        livenessProbe:
          tcpSocket:
            port: 8080
        volumeMounts:
        - name: cache
          mountPath: /var/cache/shop
      volumes:
      - name: cache
        emptyDir:
          sizeLimit: 1Gi
---
apiVersion: v1
kind: Service
metadata:
  name: shop
  namespace: prod
spec:
  selector:
    app.kubernetes.io/name: shop
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: prod
  annotations:
    nginx.ingress.kubernetes.io/proxy-body-size: 8m
spec:
  ingressClassName: nginx
  tls:
  - hosts: [shop.example.com]
    secretName: shop-tls
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: shop
            port:
              name: http
  - host: "*.shop.example.com"
    http:
      paths:
      - path: /api
        pathType: Exact
        backend:
          service:
            name: shop
            port:
              number: 80
"""


def test_real_world_manifests_load_and_admit() -> None:
    objects = load_manifests(REAL_WORLD, "shop.yaml")
    assert [o["kind"] for o in objects] == ["Deployment", "Service", "Ingress"]
    deploy, svc, ing = (admit(o) for o in objects)

    assert deploy["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod_spec = deploy["spec"]["template"]["spec"]
    assert pod_spec["securityContext"] == {"runAsNonRoot": True, "fsGroup": 2000}
    assert (
        pod_spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][
            0
        ]["weight"]
        == 100
    )
    container = pod_spec["containers"][0]
    assert container["env"][1]["valueFrom"] == {
        "secretKeyRef": {"name": "shop-db", "key": "password"}
    }
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": "http",
        "scheme": "HTTP",
    }
    assert pod_spec["volumes"][0]["emptyDir"] == {"sizeLimit": "1Gi"}
    assert svc["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}
    ]
    assert ing["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}
    assert ing["spec"]["rules"][1]["http"]["paths"][0]["backend"]["service"]["port"] == {
        "number": 80
    }
    assert ing["spec"]["tls"] == [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]


def test_json_manifest_with_tabs() -> None:
    text = '{\n\t"apiVersion": "v1",\n\t"kind": "ConfigMap",\n\t"metadata": {"name": "c"},\n\t"data": {"k": "v"}\n}\n'
    assert load_manifests(text) == [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    ]


def test_empty_documents_are_skipped_and_timestamps_stay_strings() -> None:
    text = "---\n# nothing\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  creationTimestamp: 2024-05-01T10:00:00Z\n---\n"
    [ns] = load_manifests(text)
    assert ns["metadata"]["creationTimestamp"] == "2024-05-01T10:00:00Z"
    admit(ns)


def test_kind_list_is_expanded() -> None:
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a}
- apiVersion: v1
  kind: Secret
  metadata: {name: b}
---
apiVersion: v1
kind: ConfigMapList
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}
"""
    assert [o["metadata"]["name"] for o in load_manifests(text)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: v1\nkind: Namespace\n---\n- a\n- b\n",
            "deploy.yaml: document 2: not a mapping",
        ),
        ("apiVersion: v1\nmetadata: {}\n", "deploy.yaml: document 1: missing kind"),
        ("kind: Pod\n", "deploy.yaml: document 1: missing apiVersion"),
        (
            "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n",
            "deploy.yaml: document 1: items[0]: missing apiVersion",
        ),
        (
            "apiVersion: v1\nkind: Pod\n---\nmetadata:\n  name: [a\n",
            "deploy.yaml: document 2: line 6, column 1: did not find expected ',' or ']'",
        ),
        (
            "apiVersion: v1\nkind: Pod\n  spec: x\n",
            # libyaml and pure-Python PyYAML word the end differently
            "deploy.yaml: document 1: line 3, column 7: mapping values are not allowed",
        ),
    ],
)
def test_manifest_errors(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests(text, "deploy.yaml")
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


def test_load_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n")
    (tmp_path / "a.json").write_text(
        '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}'
    )
    (tmp_path / "notes.txt").write_text("not a manifest")
    single = tmp_path / "c.yml"
    single.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n")
    )

    loaded = load_paths([str(tmp_path), "-"])

    assert [(Path(src).name, o["metadata"]["name"]) for src, o in loaded] == [
        ("a.json", "a"),
        ("b.yaml", "b"),
        ("c.yml", "c"),
        ("-", "d"),
    ]
    with pytest.raises(ManifestError, match=r"missing\.yaml: no such file or directory"):
        load_paths([str(tmp_path / "missing.yaml")])


@pytest.mark.parametrize(
    ("conditions", "unschedulable", "want"),
    [
        ([{"type": "Ready", "status": "True"}], False, "Ready"),
        ([{"type": "Ready", "status": "False"}], False, "NotReady"),
        # The node stopped reporting: kubectl prints NotReady, not Unknown.
        ([{"type": "Ready", "status": "Unknown"}], False, "NotReady"),
        ([], False, "Unknown"),
        ([{"type": "Ready", "status": "True"}], True, "Ready,SchedulingDisabled"),
    ],
)
def test_node_status_column_as_kubectl(
    conditions: list[dict[str, str]], unschedulable: bool, want: str
) -> None:
    node = {"spec": {"unschedulable": unschedulable}, "status": {"conditions": conditions}}
    assert node_status(node) == want
