"""Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`),
built with the generated stubs and sent over the unix socket as kubectl sends
them; the stored objects are read back as JSON."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
from google.protobuf.message import Message

from control.api.protobuf import k8s_pb2 as pb
from control.api.protobuf.decode import CONTENT_TYPE, MAGIC
from control.client import Client
from control.controlplane import ControlPlane
from control.objects.kinds import by_name

POD = by_name("pods")
assert POD
# What kubectl accepts: protobuf first, JSON too.
ACCEPT = "application/vnd.kubernetes.protobuf,application/json"


def envelope(api_version: str, kind: str, message: Message) -> bytes:
    """A body as client-go writes it: the magic, then a runtime.Unknown."""
    unknown = pb.Unknown(
        typeMeta=pb.TypeMeta(apiVersion=api_version, kind=kind), raw=message.SerializeToString()
    )
    return MAGIC + unknown.SerializeToString()


async def send(
    plane: ControlPlane, path: str, body: bytes, method: str = "POST"
) -> tuple[int, dict[str, Any]]:
    connector = aiohttp.UnixConnector(path=str(plane.socket_path))
    headers = {"Content-Type": CONTENT_TYPE, "Accept": ACCEPT}
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, "http://localhost" + path, data=body, headers=headers) as resp,
    ):
        assert resp.content_type == "application/json"
        answer: dict[str, Any] = await resp.json()
        return resp.status, answer


def meta(name: str, **labels: str) -> pb.ObjectMeta:
    # kubectl sends a zero creationTimestamp; it must not be stored as a time.
    return pb.ObjectMeta(name=name, labels=labels, creationTimestamp=pb.Time())


async def test_namespace(plane: ControlPlane, client: Client) -> None:
    ns = pb.Namespace(metadata=meta("pb", team="a"), spec=pb.NamespaceSpec())
    status, answer = await send(plane, "/api/v1/namespaces", envelope("v1", "Namespace", ns))
    assert status == 201, answer
    stored = await client.request("GET", "/api/v1/namespaces/pb")
    assert stored["metadata"]["labels"] == {"team": "a"}
    assert stored["metadata"]["creationTimestamp"].endswith("Z")
    assert stored["status"]["phase"] == "Active"


async def test_deployment(plane: ControlPlane, client: Client) -> None:
    container = pb.Container(
        name="web",
        image="pilothouse/busybox",
        command=["sh", "-c", "sleep 1"],
        ports=[pb.ContainerPort(containerPort=8080)],
        env=[
            pb.EnvVar(name="GREETING", value="hello"),
            pb.EnvVar(
                name="TOKEN",
                valueFrom=pb.EnvVarSource(
                    secretKeyRef=pb.KeySelector(
                        reference=pb.LocalObjectReference(name="creds"), key="token"
                    )
                ),
            ),
        ],
        resources=pb.ResourceRequirements(
            requests={"cpu": pb.Quantity(text="50m")}, limits={"memory": pb.Quantity(text="64Mi")}
        ),
    )
    deploy = pb.Deployment(
        metadata=meta("web", app="web"),
        spec=pb.DeploymentSpec(
            replicas=0,  # a pointer in Go: zero is sent, and kept
            selector=pb.LabelSelector(matchLabels={"app": "web"}),
            template=pb.PodTemplateSpec(
                metadata=meta("", app="web"), spec=pb.PodSpec(containers=[container])
            ),
            strategy=pb.DeploymentStrategy(
                type="RollingUpdate",
                rollingUpdate=pb.RollingUpdateDeployment(
                    maxSurge=pb.IntOrString(type=0, intVal=0),
                    maxUnavailable=pb.IntOrString(type=1, strVal="50%"),
                ),
            ),
        ),
        status=pb.DeploymentStatus(),
    )
    path = "/apis/apps/v1/namespaces/default/deployments"
    status, answer = await send(plane, path, envelope("apps/v1", "Deployment", deploy))
    assert status == 201, answer
    stored = await client.request("GET", f"{path}/web")
    spec = stored["spec"]
    assert spec["replicas"] == 0
    assert spec["selector"] == {"matchLabels": {"app": "web"}}
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": "50%"}
    c = spec["template"]["spec"]["containers"][0]
    assert c["command"] == ["sh", "-c", "sleep 1"]
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert c["env"] == [
        {"name": "GREETING", "value": "hello"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
    ]
    # Requests default to the limits, as in Kubernetes.
    assert c["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": "64Mi"},
    }
    assert stored["metadata"]["labels"] == {"app": "web"}


async def test_configmap_and_secret(plane: ControlPlane, client: Client) -> None:
    cm = pb.ConfigMap(metadata=meta("cfg"), data={"a": "b"}, binaryData={"bin": b"\x00\xff"})
    path = "/api/v1/namespaces/default/configmaps"
    status, answer = await send(plane, path, envelope("v1", "ConfigMap", cm))
    assert status == 201, answer
    stored = await client.request("GET", f"{path}/cfg")
    assert stored["data"] == {"a": "b"}
    assert stored["binaryData"] == {"bin": base64.b64encode(b"\x00\xff").decode()}

    secret = pb.Secret(
        metadata=meta("tls"),
        type="kubernetes.io/tls",
        data={"tls.crt": b"CERT", "tls.key": b"KEY"},
        immutable=False,
    )
    path = "/api/v1/namespaces/default/secrets"
    status, answer = await send(plane, path, envelope("v1", "Secret", secret))
    assert status == 201, answer
    stored = await client.request("GET", f"{path}/tls")
    assert stored["type"] == "kubernetes.io/tls"
    assert stored["data"] == {"tls.crt": "Q0VSVA==", "tls.key": "S0VZ"}
    assert stored["immutable"] is False


async def test_service(plane: ControlPlane, client: Client) -> None:
    svc = pb.Service(
        metadata=meta("web", app="web"),
        spec=pb.ServiceSpec(
            type="ClusterIP",
            selector={"app": "web"},
            ports=[
                pb.ServicePort(
                    name="80-8080", protocol="TCP", port=80, targetPort=pb.IntOrString(intVal=8080)
                ),
                pb.ServicePort(
                    name="https", port=443, targetPort=pb.IntOrString(type=1, strVal="tls")
                ),
                # A value IntOrString of zero is unset: the port is the default.
                pb.ServicePort(name="dns", protocol="UDP", port=53, targetPort=pb.IntOrString()),
            ],
        ),
        status=pb.ServiceStatus(loadBalancer=pb.LoadBalancerStatus()),
    )
    path = "/api/v1/namespaces/default/services"
    status, answer = await send(plane, path, envelope("v1", "Service", svc))
    assert status == 201, answer
    spec = (await client.request("GET", f"{path}/web"))["spec"]
    assert spec["selector"] == {"app": "web"}
    assert [(p["name"], p["port"], p["targetPort"]) for p in spec["ports"]] == [
        ("80-8080", 80, 8080),
        ("https", 443, "tls"),
        ("dns", 53, 53),
    ]
    assert spec["ports"][2]["protocol"] == "UDP"
    assert spec["clusterIP"]


async def test_ingress(plane: ControlPlane, client: Client) -> None:
    backend = pb.IngressBackend(
        service=pb.IngressServiceBackend(name="web", port=pb.ServiceBackendPort(number=80))
    )
    ing = pb.Ingress(
        metadata=meta("web"),
        spec=pb.IngressSpec(
            ingressClassName="pilothouse",
            tls=[pb.IngressTLS(hosts=["web.example.test"], secretName="web-tls")],
            rules=[
                pb.IngressRule(
                    host="web.example.test",
                    ruleValue=pb.IngressRuleValue(
                        http=pb.HTTPIngressRuleValue(
                            paths=[pb.HTTPIngressPath(path="/", pathType="Prefix", backend=backend)]
                        )
                    ),
                )
            ],
        ),
    )
    path = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
    status, answer = await send(plane, path, envelope("networking.k8s.io/v1", "Ingress", ing))
    assert status == 201, answer
    spec = (await client.request("GET", f"{path}/web"))["spec"]
    assert spec["ingressClassName"] == "pilothouse"
    assert spec["tls"] == [{"hosts": ["web.example.test"], "secretName": "web-tls"}]
    # The rule's value is inlined in the rule, as in JSON.
    assert spec["rules"] == [
        {
            "host": "web.example.test",
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": "web", "port": {"number": 80}}},
                    }
                ]
            },
        }
    ]


def bound_pod(name: str) -> dict[str, Any]:
    """A pod on a node: deleting it is graceful unless the grace is 0."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "pilothouse/busybox"}]},
    }


async def test_eviction_and_delete_options(plane: ControlPlane, client: Client) -> None:
    for name in ("graceful", "forced", "deleted"):
        await client.create(POD, bound_pod(name))
    pods = "/api/v1/namespaces/default/pods"

    # No grace sent: the pod's own, so the pod stays, marked for deletion.
    eviction = pb.Eviction(metadata=meta("graceful"), deleteOptions=pb.DeleteOptions())
    status, answer = await send(
        plane, f"{pods}/graceful/eviction", envelope("policy/v1", "Eviction", eviction)
    )
    assert status == 201, answer
    assert (await client.request("GET", f"{pods}/graceful"))["metadata"]["deletionTimestamp"]

    # A grace of 0 is sent (a pointer in Go) and kept: the pod goes at once.
    eviction = pb.Eviction(
        metadata=meta("forced"), deleteOptions=pb.DeleteOptions(gracePeriodSeconds=0)
    )
    status, answer = await send(
        plane, f"{pods}/forced/eviction", envelope("policy/v1", "Eviction", eviction)
    )
    assert status == 201, answer
    status, _ = await client.request_raw("GET", f"{pods}/forced")
    assert status == 404

    # `kubectl drain` deletes with a protobuf DeleteOptions when it cannot evict.
    options = pb.DeleteOptions(gracePeriodSeconds=0, propagationPolicy="Background")
    status, answer = await send(
        plane, f"{pods}/deleted", envelope("v1", "DeleteOptions", options), method="DELETE"
    )
    assert status == 200, answer
    status, _ = await client.request_raw("GET", f"{pods}/deleted")
    assert status == 404


async def test_self_reviews(plane: ControlPlane) -> None:
    """`kubectl auth can-i` and `auth whoami` send their reviews as protobuf,
    with the (empty) status Go marshals; the one decoder reads them."""
    review = pb.SelfSubjectAccessReview(
        metadata=meta(""),
        spec=pb.SelfSubjectAccessReviewSpec(
            resourceAttributes=pb.ResourceAttributes(
                namespace="default", verb="create", resource="pods", subresource="exec"
            )
        ),
        status=pb.SubjectAccessReviewStatus(),
    )
    body = envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", review)
    status, answer = await send(
        plane, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body
    )
    assert status == 201, answer
    assert answer["spec"]["resourceAttributes"] == {
        "namespace": "default",
        "verb": "create",
        "resource": "pods",
        "subresource": "exec",
    }
    assert answer["status"]["allowed"] is True

    whoami = pb.SelfSubjectReview(metadata=meta(""), status=pb.SelfSubjectReviewStatus())
    body = envelope("authentication.k8s.io/v1", "SelfSubjectReview", whoami)
    status, answer = await send(plane, "/apis/authentication.k8s.io/v1/selfsubjectreviews", body)
    assert status == 201, answer
    assert answer["status"]["userInfo"]["username"] == "admin"


async def test_unsupported_kind_is_415(plane: ControlPlane) -> None:
    body = envelope("v1", "ResourceQuota", pb.ObjectMeta())
    status, answer = await send(plane, "/api/v1/namespaces/default/configmaps", body)
    assert status == 415
    assert answer["reason"] == "UnsupportedMediaType"
    assert "not ResourceQuota (v1)" in answer["message"]
    assert "Deployment (apps/v1)" in answer["message"]


async def test_field_not_decoded_is_415(plane: ControlPlane, client: Client) -> None:
    container = pb.Container(name="web", image="pilothouse/busybox")
    container.MergeFromString(b"\x52\x00")  # field 10, livenessProbe: not in k8s.proto
    deploy = pb.Deployment(
        metadata=meta("probed"),
        spec=pb.DeploymentSpec(
            selector=pb.LabelSelector(matchLabels={"app": "web"}),
            template=pb.PodTemplateSpec(
                metadata=meta("", app="web"), spec=pb.PodSpec(containers=[container])
            ),
        ),
    )
    path = "/apis/apps/v1/namespaces/default/deployments"
    status, answer = await send(plane, path, envelope("apps/v1", "Deployment", deploy))
    assert status == 415
    assert "field number 10 of Deployment.spec.template.spec.containers[0]" in answer["message"]
    status, _ = await client.request_raw("GET", f"{path}/probed")
    assert status == 404


async def test_malformed_bodies_are_400(plane: ControlPlane) -> None:
    path = "/api/v1/namespaces"
    ns = pb.Namespace(metadata=meta("x")).SerializeToString()
    status, answer = await send(plane, path, ns)  # no magic
    assert status == 400
    assert "magic" in answer["message"]
    status, answer = await send(plane, path, MAGIC + b"\x0a\xff")  # truncated
    assert status == 400
    assert "runtime.Unknown" in answer["message"]
    unknown = pb.Unknown(typeMeta=pb.TypeMeta(apiVersion="v1", kind="Namespace"), raw=b"\x0a\xff")
    status, answer = await send(plane, path, MAGIC + unknown.SerializeToString())
    assert status == 400
    assert "the protobuf Namespace could not be decoded" in answer["message"]
