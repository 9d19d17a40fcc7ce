"""Routes read from Ingresses and HTTPRoutes, under the route table's names."""

from __future__ import annotations

from typing import Any

from control.objects.routes import (
    Backend,
    httproute_routes,
    ingress_routes,
    is_ingress_node,
    normalise_weights,
)

Obj = dict[str, Any]


def test_ingress_routes_are_named_as_the_route_table_names_them() -> None:
    ingress: Obj = {
        "metadata": {"name": "site", "namespace": "shop"},
        "spec": {
            "rules": [
                {
                    "host": "a.test",
                    "http": {
                        "paths": [
                            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                            {"path": "/api", "pathType": "Exact", "backend": {"service": {"name": "api", "port": {"name": "http"}}}},
                        ]
                    },
                },
                {"http": {"paths": [{"backend": {"resource": {"kind": "Bucket"}}}]}},
            ],
            "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
        },
    }  # fmt: skip
    routes = ingress_routes(ingress)
    assert [(r.name, r.host_text, r.path, r.path_type) for r in routes] == [
        ("ing/shop/site/0/0", "a.test", "/", "Prefix"),
        ("ing/shop/site/0/1", "a.test", "/api", "Exact"),
        ("ing/shop/site/1/0", "*", "/", "Prefix"),
        ("ing/shop/site/default", "*", "/", "Prefix"),
    ]
    assert [[b.label for b in r.backends] for r in routes] == [
        ["web:80"],
        ["api:http"],
        ["<none>"],
        ["web:80"],
    ]
    assert not any(r.weighted for r in routes)


def test_httproute_routes_one_per_match_with_weights_as_percentages() -> None:
    httproute: Obj = {
        "metadata": {"name": "shop", "namespace": "default"},
        "spec": {
            "hostnames": ["shop.test", "www.shop.test"],
            "rules": [
                {
                    "matches": [
                        {"path": {"type": "PathPrefix", "value": "/"}},
                        {"path": {"type": "Exact", "value": "/x"}, "headers": [{"name": "env", "value": "canary"}]},
                    ],
                    "backendRefs": [{"name": "stable", "port": 80, "weight": 9}, {"name": "canary", "port": 80}],
                },
                {"backendRefs": [{"name": "api", "port": 8080, "weight": 0}]},
            ],
        },
    }  # fmt: skip
    first, second, third = httproute_routes(httproute)
    assert (first.name, second.name, third.name) == (
        "httproute/default/shop/0/0",
        "httproute/default/shop/0/1",
        "httproute/default/shop/1/0",
    )
    assert first.host_text == "shop.test,www.shop.test"
    assert (second.path, second.path_type, second.headers) == ("/x", "Exact", (("env", "canary"),))
    assert first.backends == (
        Backend("default", "stable", "80", 90),
        Backend("default", "canary", "80", 10),
    )
    assert [b.label for b in first.backends] == ["stable:80 90%", "canary:80 10%"]
    assert first.weighted and second.weighted and not third.weighted
    assert third.backends[0].label == "api:8080"  # one backend: no share shown
    assert (third.path, third.path_type) == ("/", "PathPrefix")


def test_normalise_weights_and_ingress_nodes() -> None:
    assert normalise_weights([1, 1, 1], 100) == [34, 33, 33]
    assert normalise_weights([0, 0]) == [0, 0]
    assert normalise_weights([3, 1]) == [750, 250]
    assert is_ingress_node({"metadata": {"labels": {"pilothouse.io/ingress": "true"}}})
    assert not is_ingress_node({"metadata": {"labels": {"pilothouse.io/ingress": "false"}}})
    assert not is_ingress_node(None)
