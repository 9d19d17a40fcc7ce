"""The ingress route table, against the examples of the Ingress and Gateway API
specifications; requests are routed by the wire's reference matcher."""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.protocol.ingress import RouteTableWire, host_matches, path_matches, select_route
from control.nodes.ingressroutes import (
    GATEWAY_CONTROLLER,
    RouteResult,
    RouteWarning,
    intersect_hostnames,
    route_table,
)
from control.objects.routes import normalise_weights

Obj = dict[str, Any]
NS = "default"


def meta(name: str, namespace: str = NS, created: str = "2026-01-01T00:00:00Z", **more: Any) -> Obj:
    return {"name": name, "namespace": namespace, "creationTimestamp": created, **more}


def service(name: str, ports: list[Obj] | None = None, namespace: str = NS) -> Obj:
    ports = ports or [{"name": "http", "port": 80, "targetPort": "web"}]
    return {"kind": "Service", "metadata": meta(name, namespace), "spec": {"ports": ports}}


def slice_(service_name: str, ips: dict[str, bool], ports: dict[str, int] | None = None) -> Obj:
    ports = ports or {"http": 8080}
    return {
        "kind": "EndpointSlice",
        "metadata": meta(
            f"{service_name}-abc", labels={"kubernetes.io/service-name": service_name}
        ),
        "addressType": "IPv4",
        "ports": [{"name": n, "port": p} for n, p in ports.items()],
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in ips.items()
        ],
    }


def backend(name: str, port: int | str = 80) -> Obj:
    key = "number" if isinstance(port, int) else "name"
    return {"service": {"name": name, "port": {key: port}}}


def path(value: str, svc: str, path_type: str = "Prefix", port: int | str = 80) -> Obj:
    return {"path": value, "pathType": path_type, "backend": backend(svc, port)}


def ingress(name: str, rules: list[Obj], created: str = "2026-01-01T00:00:00Z", **spec: Any) -> Obj:
    return {
        "kind": "Ingress",
        "metadata": meta(name, created=created),
        "spec": {"ingressClassName": "pilothouse", "rules": rules, **spec},
    }


def rule(host: str | None, *paths: Obj) -> Obj:
    out: Obj = {"http": {"paths": list(paths)}}
    if host:
        out["host"] = host
    return out


SERVICES = ["api", "apiv2", "web", "foo", "bar", "baz", "default-svc", "v1", "v2"]


def build(
    ingresses: Sequence[Obj] = (),
    *,
    classes: Sequence[Obj] = (),
    gateways: Sequence[Obj] = (),
    httproutes: Sequence[Obj] = (),
    secrets: Sequence[Obj] = (),
    services: list[Obj] | None = None,
    slices: list[Obj] | None = None,
) -> RouteResult:
    services = [service(s) for s in SERVICES] if services is None else services
    slices = (
        [slice_(s, {f"10.0.0.{i + 1}": True}) for i, s in enumerate(SERVICES)]
        if (slices is None)
        else slices
    )
    gateway_class = {
        "kind": "GatewayClass",
        "metadata": {"name": "pilothouse"},
        "spec": {"controllerName": GATEWAY_CONTROLLER},
    }
    other_class = {
        "kind": "GatewayClass",
        "metadata": {"name": "other"},
        "spec": {"controllerName": "example.com/other"},
    }
    result = route_table(
        ingresses,
        classes,
        gateways,
        httproutes,
        services,
        slices,
        secrets,
        generation=7,
        gateway_classes=[gateway_class, other_class],
    )
    json.dumps(result.table)  # plain JSON
    return result


def routed(table: RouteTableWire, url: str, port: int = 80, **headers: str) -> str | None:
    """The service a request goes to ("ns/svc:port" of its first backend)."""
    host, _, rest = url.partition("/")
    route = select_route(table, port, host, "/" + rest, headers)
    if route is None:
        return None
    return route["backends"][0]["name"].split("/")[1].split(":")[0] if route["backends"] else ""


def reasons(result: RouteResult) -> list[str]:
    return [w.reason for w in result.warnings]


# --- paths ----------------------------------------------------------------------------


def test_prefix_matches_whole_path_elements() -> None:
    table = build([ingress("i", [rule(None, path("/api", "api"), path("/apiv2", "apiv2"))])]).table
    assert routed(table, "x/api") == "api"
    assert routed(table, "x/api/") == "api"
    assert routed(table, "x/api/users") == "api"
    assert routed(table, "x/apiv2") == "apiv2"
    assert routed(table, "x/apiv3") is None


# The Ingress documentation's table of Prefix examples: path, request, match.
PREFIX_EXAMPLES = """
/           /anything       yes
/foo        /foo            yes
/foo        /foo/           yes
/foo/       /foo            yes
/foo/       /foo/           yes
/aaa/bb     /aaa/bbb        no
/aaa/bbb    /aaa/bbb        yes
/aaa/bbb/   /aaa/bbb        yes
/aaa/bbb    /aaa/bbb/       yes
/aaa/bbb    /aaa/bbb/ccc    yes
/aaa/bbb    /aaa/bbbxyz     no
/foo/bar    /foo/barbaz     no
"""


@pytest.mark.parametrize(
    ("prefix", "request_path", "answer"),
    [line.split() for line in PREFIX_EXAMPLES.strip().splitlines()],
)
def test_prefix_examples(prefix: str, request_path: str, answer: str) -> None:
    assert path_matches("Prefix", prefix, request_path) is (answer == "yes")


def test_exact_matches_only_itself() -> None:
    assert path_matches("Exact", "/foo", "/foo")
    assert not path_matches("Exact", "/foo", "/foo/")
    assert not path_matches("Exact", "/foo", "/bar")


def test_foo_bar_and_foo_bar_slash_and_foo_barbaz() -> None:
    paths = [path("/foo/bar", "foo"), path("/foo/bar/", "bar", "Exact"), path("/", "web")]
    table = build([ingress("i", [rule(None, *paths)])]).table
    assert routed(table, "x/foo/bar") == "foo"
    assert routed(table, "x/foo/bar/") == "bar"
    assert routed(table, "x/foo/bar/x") == "foo"
    assert routed(table, "x/foo/barbaz") == "web"


def test_longest_prefix_wins() -> None:
    paths = [path("/", "web"), path("/aaa/bbb", "bar"), path("/aaa", "foo")]
    table = build([ingress("i", [rule(None, *paths)])]).table
    assert routed(table, "x/aaa/bbb/ccc") == "bar"
    assert routed(table, "x/aaa/ccc") == "foo"
    assert routed(table, "x/ccc") == "web"
    routes = table["frontends"][0]["hosts"][0]["routes"]
    assert [r["path"] for r in routes] == ["/aaa/bbb", "/aaa", "/"]


def test_exact_before_prefix() -> None:
    paths = [path("/foo", "foo"), path("/foo", "bar", "Exact")]
    table = build([ingress("i", [rule(None, *paths)])]).table
    assert routed(table, "x/foo") == "bar"
    assert routed(table, "x/foo/") == "foo"


def test_implementation_specific_is_prefix() -> None:
    table = build([ingress("i", [rule(None, path("/api", "api", "ImplementationSpecific"))])])
    route = table.table["frontends"][0]["hosts"][0]["routes"][0]
    assert route["pathType"] == "Prefix"
    assert route["name"] == "ing/default/i/0/0"


# --- hosts ----------------------------------------------------------------------------


def test_wildcard_host_matches_one_label() -> None:
    rules = [rule("*.foo.com", path("/", "foo")), rule("foo.com", path("/", "web"))]
    table = build([ingress("i", rules)]).table
    assert routed(table, "bar.foo.com/") == "foo"
    assert routed(table, "baz.bar.foo.com/") is None
    assert routed(table, "foo.com/") == "web"
    assert host_matches("*.foo.com", "bar.foo.com")
    assert not host_matches("*.foo.com", "foo.com")
    assert not host_matches("*.foo.com", "baz.bar.foo.com")


def test_exact_host_before_wildcard_before_any() -> None:
    rules = [
        rule(None, path("/", "web")),
        rule("*.foo.com", path("/", "foo")),
        rule("bar.foo.com", path("/", "bar")),
    ]
    table = build([ingress("i", rules)]).table
    assert [h["host"] for h in table["frontends"][0]["hosts"]] == ["bar.foo.com", "*.foo.com", ""]
    assert routed(table, "bar.foo.com/") == "bar"
    assert routed(table, "BAZ.foo.com/") == "foo"
    assert routed(table, "example.org/") == "web"


def test_default_backend_serves_unmatched_requests() -> None:
    ing = ingress(
        "i", [rule("foo.com", path("/api", "api"))], defaultBackend=backend("default-svc")
    )
    table = build([ing]).table
    assert routed(table, "foo.com/api/x") == "api"
    assert routed(table, "foo.com/other") == "default-svc"
    assert routed(table, "elsewhere.org/x") == "default-svc"
    assert routed(table, "elsewhere.org/x", port=443) == "default-svc"


def test_the_oldest_ingress_keeps_a_path_and_the_other_is_warned() -> None:
    old = ingress("old", [rule("foo.com", path("/", "foo"))], created="2026-01-01T00:00:00Z")
    new = ingress("new", [rule("foo.com", path("/", "bar"))], created="2026-02-01T00:00:00Z")
    result = build([new, old])
    assert routed(result.table, "foo.com/") == "foo"
    assert [(w.key, w.reason) for w in result.warnings] == [("default/new", "DuplicatePath")]


# --- backends -------------------------------------------------------------------------


def test_port_by_name_resolves_to_endpoint_target_ports() -> None:
    svc = service("web", [{"name": "http", "port": 80}, {"name": "admin", "port": 9000}])
    eps = slice_("web", {"10.0.0.2": True, "10.0.0.1": True, "10.0.0.9": False}, {"http": 8080})
    ing = ingress("i", [rule(None, path("/", "web", port="http"))])
    result = build([ing], services=[svc], slices=[eps])
    assert result.warnings == []
    (route,) = result.table["frontends"][0]["hosts"][0]["routes"]
    assert route["backends"] == [
        {
            "name": "default/web:80",
            "weight": 1000,
            "servers": [{"ip": "10.0.0.1", "port": 8080}, {"ip": "10.0.0.2", "port": 8080}],
        }
    ]


def test_a_missing_service_warns_and_keeps_the_rest() -> None:
    paths = [path("/api", "missing"), path("/", "web"), path("/x", "web", port="nope")]
    result = build([ingress("i", [rule(None, *paths)])])
    table = result.table
    assert routed(table, "h/api/x") == "missing"  # its path answers 503, not the "/" service
    route = select_route(table, 80, "h", "/api")
    assert route is not None and route["backends"][0]["servers"] == []
    assert routed(table, "h/other") == "web"
    assert [(w.kind, w.key, w.reason) for w in result.warnings] == [
        ("Ingress", "default/i", "BackendNotFound"),
        ("Ingress", "default/i", "BackendNotFound"),
    ]
    assert "default/missing" in result.warnings[0].message
    assert "nope" in result.warnings[1].message


def test_normalised_weights() -> None:
    assert normalise_weights([90, 10]) == [900, 100]
    assert normalise_weights([1, 1, 1]) == [334, 333, 333]
    assert normalise_weights([1, 0]) == [1000, 0]
    assert normalise_weights([0, 0]) == [0, 0]


# --- TLS ------------------------------------------------------------------------------


def tls_secret(name: str, host: str = "foo.com", key_matches: bool = True) -> Obj:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    if not key_matches:
        key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "kind": "Secret",
        "metadata": meta(name),
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
            "tls.key": base64.b64encode(key_pem).decode(),
        },
    }


def tls_ingress(secret: str) -> Obj:
    tls = [{"hosts": ["foo.com"], "secretName": secret}]
    return ingress(
        "i", [rule("foo.com", path("/", "foo")), rule("bar.com", path("/", "bar"))], tls=tls
    )


def hosts(table: RouteTableWire, port: int) -> dict[str, Any]:
    front = next(f for f in table["frontends"] if f["port"] == port)
    return {h["host"]: h for h in front["hosts"]}


def test_tls_host_gets_its_certificate_and_a_redirect() -> None:
    result = build([tls_ingress("foo-tls")], secrets=[tls_secret("foo-tls")])
    assert result.warnings == []
    http, https = hosts(result.table, 80), hosts(result.table, 443)
    assert http["foo.com"]["redirectToHTTPS"] and not http["bar.com"]["redirectToHTTPS"]
    assert https["foo.com"]["certificate"] == "default/foo-tls"
    assert https["bar.com"]["certificate"] is None
    (certificate,) = result.table["certificates"]
    assert certificate["name"] == "default/foo-tls"
    assert "BEGIN CERTIFICATE" in certificate["pem"] and "PRIVATE KEY" in certificate["pem"]
    assert routed(result.table, "foo.com/", port=443) == "foo"


@pytest.mark.parametrize(
    ("secrets", "reason"),
    [
        ([], "SecretNotFound"),
        (
            [
                {
                    "metadata": meta("foo-tls"),
                    "type": "kubernetes.io/tls",
                    "data": {"tls.crt": "bm8=", "tls.key": "bm8="},
                }
            ],
            "InvalidCertificate",
        ),
        ([{"metadata": meta("foo-tls"), "type": "Opaque", "data": {}}], "InvalidCertificate"),
        ([tls_secret("foo-tls", key_matches=False)], "InvalidCertificate"),
    ],
)
def test_a_bad_secret_warns_and_leaves_the_fallback_certificate(
    secrets: list[Obj], reason: str
) -> None:
    result = build([tls_ingress("foo-tls")], secrets=secrets)
    assert reasons(result) == [reason]
    assert hosts(result.table, 443)["foo.com"]["certificate"] is None
    assert hosts(result.table, 80)["foo.com"]["redirectToHTTPS"]
    assert result.table["certificates"] == []
    assert routed(result.table, "foo.com/", port=443) == "foo"


# --- classes --------------------------------------------------------------------------


def ingress_class(name: str, default: bool) -> Obj:
    annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"kind": "IngressClass", "metadata": {"name": name, "annotations": annotations}}


@pytest.mark.parametrize(
    ("class_name", "classes", "served"),
    [
        ("pilothouse", [], True),
        ("nginx", [ingress_class("pilothouse", True)], False),
        (None, [ingress_class("pilothouse", True)], True),
        (None, [ingress_class("pilothouse", False)], False),
        (None, [ingress_class("nginx", True)], False),
    ],
)
def test_class_selection(class_name: str | None, classes: list[Obj], served: bool) -> None:
    ing = ingress("i", [rule("foo.com", path("/", "foo"))])
    ing["spec"]["ingressClassName"] = class_name
    table = build([ing], classes=classes).table
    assert (routed(table, "foo.com/") == "foo") is served


# --- Gateway API ----------------------------------------------------------------------


def gateway(name: str = "gw", listeners: list[Obj] | None = None, cls: str = "pilothouse") -> Obj:
    listeners = listeners or [{"name": "http", "port": 80, "protocol": "HTTP"}]
    return {
        "kind": "Gateway",
        "metadata": meta(name),
        "spec": {"gatewayClassName": cls, "listeners": listeners},
    }


def httproute(
    name: str, rules: list[Obj], hostnames: list[str] | None = None, **parent: Any
) -> Obj:
    spec: Obj = {"parentRefs": [{"name": "gw", **parent}], "rules": rules}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"kind": "HTTPRoute", "metadata": meta(name, generation=3), "spec": spec}


def ref(name: str, weight: int | None = None, port: int = 80, **more: Any) -> Obj:
    out: Obj = {"name": name, "port": port, **more}
    if weight is not None:
        out["weight"] = weight
    return out


def conditions(result: RouteResult, route: str = "default/r") -> dict[str, tuple[str, str]]:
    (parent,) = result.route_parents[route]
    assert parent["controllerName"] == GATEWAY_CONTROLLER
    return {c["type"]: (c["status"], c["reason"]) for c in parent["conditions"]}


def test_weighted_backends_90_10() -> None:
    route = httproute("r", [{"backendRefs": [ref("v1", 90), ref("v2", 10)]}])
    result = build(gateways=[gateway()], httproutes=[route])
    found = select_route(result.table, 80, "any.host", "/")
    assert found is not None and found["name"] == "httproute/default/r/0/0"
    assert [(b["name"], b["weight"]) for b in found["backends"]] == [
        ("default/v1:80", 900),
        ("default/v2:80", 100),
    ]
    assert conditions(result) == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("True", "ResolvedRefs"),
    }


def test_weight_zero_keeps_the_backend_without_traffic() -> None:
    route = httproute("r", [{"backendRefs": [ref("v1"), ref("v2", 0)]}])
    found = select_route(build(gateways=[gateway()], httproutes=[route]).table, 80, "h", "/")
    assert found is not None
    assert [b["weight"] for b in found["backends"]] == [1000, 0]


def test_header_matches_take_precedence_and_filters_apply() -> None:
    # The Gateway API's example: a header match beats the same path without one.
    rules: list[Obj] = [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [ref("v1")]},
        {
            "matches": [{"headers": [{"name": "env", "value": "canary"}]}],
            "filters": [
                {
                    "type": "RequestHeaderModifier",
                    "requestHeaderModifier": {
                        "set": [{"name": "x-set", "value": "1"}],
                        "add": [{"name": "x-add", "value": "2"}],
                        "remove": ["x-drop"],
                    },
                }
            ],
            "backendRefs": [ref("v2")],
        },
        {"matches": [{"path": {"type": "Exact", "value": "/x"}}], "backendRefs": [ref("foo")]},
    ]
    table = build(gateways=[gateway()], httproutes=[httproute("r", rules)]).table
    assert routed(table, "h/a") == "v1"
    assert routed(table, "h/a", env="canary") == "v2"
    assert routed(table, "h/a", ENV="canary") == "v2"
    assert routed(table, "h/x", env="canary") == "foo"  # Exact path before headers
    canary = select_route(table, 80, "h", "/", {"env": "canary"})
    assert canary is not None
    assert canary["setHeaders"] == [{"name": "x-set", "value": "1"}]
    assert canary["addHeaders"] == [{"name": "x-add", "value": "2"}]
    assert canary["removeHeaders"] == ["x-drop"]


def test_hostnames_intersect_with_the_listener() -> None:
    assert intersect_hostnames("", ["a.com"]) == ["a.com"]
    assert intersect_hostnames("*.example.com", []) == ["*.example.com"]
    assert intersect_hostnames("*.example.com", ["foo.example.com", "bar.org"]) == [
        "foo.example.com"
    ]
    assert intersect_hostnames("foo.example.com", ["*.example.com"]) == ["foo.example.com"]
    assert intersect_hostnames("*.example.com", ["*.foo.example.com"]) == ["*.foo.example.com"]
    assert intersect_hostnames("foo.com", ["bar.com"]) == []
    listener = {"name": "web", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"}
    route = httproute("r", [{"backendRefs": [ref("v1")]}], ["foo.example.com", "bar.org"])
    table = build(gateways=[gateway(listeners=[listener])], httproutes=[route]).table
    assert routed(table, "foo.example.com/") == "v1"
    assert routed(table, "bar.org/") is None


def test_https_listener_terminates_with_its_certificate() -> None:
    listener = {
        "name": "https",
        "port": 443,
        "protocol": "HTTPS",
        "hostname": "foo.com",
        "tls": {"certificateRefs": [{"name": "foo-tls"}]},
    }
    route = httproute("r", [{"backendRefs": [ref("v1")]}])
    result = build(
        gateways=[gateway(listeners=[listener])],
        httproutes=[route],
        secrets=[tls_secret("foo-tls")],
    )
    assert hosts(result.table, 443)["foo.com"]["certificate"] == "default/foo-tls"
    assert routed(result.table, "foo.com/", port=443) == "v1"
    assert routed(result.table, "foo.com/", port=80) is None


@pytest.mark.parametrize(
    ("route", "accepted"),
    [
        (httproute("r", [{}], sectionName="nope"), ("False", "NoMatchingParent")),
        (httproute("r", [{}], ["bar.org"]), ("False", "NoMatchingListenerHostname")),
        (httproute("r", [{}], ["foo.com"]), ("True", "Accepted")),
    ],
)
def test_accepted_condition(route: Obj, accepted: tuple[str, str]) -> None:
    listener = {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "foo.com"}
    result = build(gateways=[gateway(listeners=[listener])], httproutes=[route])
    assert conditions(result)["Accepted"] == accepted
    assert route["metadata"]["generation"] == 3
    assert all(
        c["observedGeneration"] == 3 for c in result.route_parents["default/r"][0]["conditions"]
    )


def test_a_route_from_another_namespace_is_not_allowed_by_default() -> None:
    route = httproute("r", [{"backendRefs": [ref("v1")]}], namespace=NS)
    route["metadata"]["namespace"] = "team"
    result = build(gateways=[gateway()], httproutes=[route])
    assert conditions(result, "team/r")["Accepted"] == ("False", "NotAllowedByListeners")
    assert routed(result.table, "h/") is None
    listener: Obj = {"name": "http", "port": 80, "protocol": "HTTP"}
    listener["allowedRoutes"] = {"namespaces": {"from": "All"}}
    result = build(gateways=[gateway(listeners=[listener])], httproutes=[route])
    assert conditions(result, "team/r")["Accepted"] == ("True", "Accepted")


@pytest.mark.parametrize(
    ("backend_ref", "reason"),
    [
        (ref("missing"), "BackendNotFound"),
        (ref("v1", port=81), "BackendNotFound"),
        ({"name": "v1"}, "BackendNotFound"),  # no port
        (ref("bucket", kind="S3Bucket", group="example.com"), "InvalidKind"),
        (ref("v1", namespace="other"), "RefNotPermitted"),
    ],
)
def test_resolved_refs_condition(backend_ref: Obj, reason: str) -> None:
    route = httproute("r", [{"backendRefs": [backend_ref, ref("v2")]}])
    result = build(gateways=[gateway()], httproutes=[route])
    assert conditions(result) == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("False", reason),
    }
    found = select_route(result.table, 80, "h", "/")
    assert found is not None
    assert [(b["weight"], bool(b["servers"])) for b in found["backends"]] == [
        (500, False),  # its share of the requests fails
        (500, True),
    ]


def test_gateways_of_other_controllers_are_left_alone() -> None:
    route = httproute("r", [{"backendRefs": [ref("v1")]}])
    result = build(gateways=[gateway(cls="other")], httproutes=[route])
    assert result.route_parents == {}
    assert routed(result.table, "h/") is None


def test_an_ingress_path_wins_over_a_later_httproute() -> None:
    ing = ingress("i", [rule("foo.com", path("/", "foo"))])
    route = httproute("r", [{"backendRefs": [ref("v1")]}], ["foo.com"])
    result = build([ing], gateways=[gateway()], httproutes=[route])
    assert routed(result.table, "foo.com/") == "foo"
    assert result.warnings == [
        RouteWarning(
            "HTTPRoute",
            "default/r",
            "DuplicatePath",
            "Prefix / on foo.com is already routed by Ingress default/i",
        )
    ]


def test_the_table_is_stable() -> None:
    ing = ingress("i", [rule("foo.com", path("/", "foo"))], defaultBackend=backend("web"))
    a = build([ing], gateways=[gateway()], httproutes=[httproute("r", [{}], ["a.com"])])
    b = build([ing], gateways=[gateway()], httproutes=[httproute("r", [{}], ["a.com"])])
    assert a == b
    assert a.table["generation"] == 7
    assert [(f["port"], f["tls"]) for f in a.table["frontends"]] == [(80, False), (443, True)]


def test_only_served_hosts_bring_their_certificates() -> None:
    ing = tls_ingress("foo-tls")
    ing["spec"]["tls"].append({"hosts": ["nowhere.com"], "secretName": "other-tls"})
    result = build([ing], secrets=[tls_secret("foo-tls"), tls_secret("other-tls")])
    assert [c["name"] for c in result.table["certificates"]] == ["default/foo-tls"]
    assert "nowhere.com" not in hosts(result.table, 443)
