"""The route table's parser and its HAProxy configuration, without HAProxy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agent.ingress.haproxyconfig import (
    MIN_SLOTS,
    Plan,
    Settings,
    SlotState,
    log_format,
    quote,
    render,
    server_weights,
)
from agent.ingress.routetable import Backend, RouteTable, RouteTableError, Server, parse_route_table

from .haproxytables import backend, frontend, host, route, table

SETTINGS = Settings(
    runtime_dir=Path("/run/ph-ingress"),
    bind_address="127.0.0.1",
    default_certificate=Path("/run/ph-ingress/default.pem"),
)


def section(config: str, header: str) -> list[str]:
    """The lines of one section (`frontend fe_80`, `backend r_x`), stripped."""
    lines = config.splitlines()
    start = lines.index(header)
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        out.append(line.strip())
    return out


def wire(**overrides: Any) -> dict[str, Any]:
    route_wire: dict[str, Any] = dict(route("r", "/", backend("ns/svc:80", 8080)))
    route_wire.update(overrides)
    return {
        "generation": 1,
        "frontends": [{"port": 80, "tls": False, "hosts": [dict(host("", route_wire))]}],  # type: ignore[arg-type]
        "certificates": [],
    }


# --- parsing --------------------------------------------------------------------------


def test_parse_keeps_every_field() -> None:
    t = table(
        frontend(
            443,
            host(
                "*.Example.com",
                route(
                    "ing/ns/a/0/0",
                    "/api",
                    backend("ns/a:80", 8080, 8081, weight=3, ip="10.0.0.5"),
                    headers=[{"name": "X-Env", "value": "canary"}],
                    remove_headers=["X-Secret"],
                ),
                certificate="ns/tls",
            ),
            tls=True,
        ),
        generation=7,
        certificates=[{"name": "ns/tls", "pem": "-----BEGIN CERTIFICATE-----\n"}],
    )
    assert t.generation == 7
    h = t.frontends[0].hosts[0]
    assert (h.host, h.certificate) == ("*.example.com", "ns/tls")
    r = h.routes[0]
    assert (r.path, r.path_type, r.remove_headers) == ("/api", "Prefix", ("x-secret",))
    assert r.headers[0].name == "x-env"
    assert r.backends == (
        Backend("ns/a:80", 3, (Server("10.0.0.5", 8080), Server("10.0.0.5", 8081))),
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"path": "api"}, "routes[0] r.path"),
        ({"path": "/a b"}, "routes[0] r.path"),
        ({"pathType": "Regex"}, "routes[0] r.pathType"),
        ({"headers": [{"name": "X Bad", "value": "v"}]}, "r.headers[0].name"),
        ({"setHeaders": [{"name": "X-A", "value": "a\nb"}]}, "r.setHeaders[0].value"),
        ({"backends": [{"name": "b", "weight": 1001, "servers": []}]}, "r.backends[0].weight"),
        (
            {"backends": [{"name": "b", "weight": 1, "servers": [{"ip": "x", "port": 1}]}]},
            "r.backends[0].servers[0].ip",
        ),
        (
            {"backends": [{"name": "b", "weight": 1, "servers": [{"ip": "10.0.0.1", "port": 0}]}]},
            "r.backends[0].servers[0].port",
        ),
    ],
)
def test_parse_names_the_bad_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(RouteTableError, match=re.escape(field)):
        parse_route_table(wire(**overrides))


def test_parse_rejects_bad_hosts_and_certificates() -> None:
    obj = wire()
    obj["frontends"][0]["hosts"][0]["host"] = "a..example.com"
    with pytest.raises(RouteTableError, match=r"hosts\[0\]\.host"):
        parse_route_table(obj)
    obj = wire()
    obj["frontends"][0]["hosts"][0]["certificate"] = "ns/tls"
    with pytest.raises(RouteTableError, match="only on a TLS frontend"):
        parse_route_table(obj)
    obj["frontends"][0]["tls"] = True
    with pytest.raises(RouteTableError, match="no certificate named 'ns/tls'"):
        parse_route_table(obj)


def test_implementation_specific_is_prefix() -> None:
    t = parse_route_table(wire(pathType="ImplementationSpecific"))
    assert t.frontends[0].hosts[0].routes[0].path_type == "Prefix"


# --- rendering ------------------------------------------------------------------------


def test_frontend_picks_the_host_then_the_first_matching_route() -> None:
    plan = render(
        table(
            frontend(
                80,
                host(
                    "app.example.com",
                    route("exact", "/exact", backend("a", 1), path_type="Exact"),
                    route("api", "/api/", backend("a", 1)),
                    route("root", "/", backend("a", 1)),
                ),
                host("*.example.com", route("wild", "/", backend("a", 1)), redirect=True),
            )
        ),
        SETTINGS,
    )
    lines = section(plan.config, "frontend fe_80")
    assert lines[0] == "bind 127.0.0.1:80"
    assert "http-request set-var(txn.host) req.hdr(host),field(1,:),lower" in lines
    assert (
        'http-request set-var(txn.h) int(0) if !{ var(txn.h) -m found } { var(txn.host) -m str "app.example.com" }'
        in lines
    )
    assert (
        'http-request set-var(txn.h) int(1) if !{ var(txn.h) -m found } { var(txn.parent) -m str "example.com" }'
        in lines
    )
    assert "http-request redirect scheme https code 308 if { var(txn.h) -m int 1 }" in lines
    uses = [line for line in lines if line.startswith("use_backend")]
    assert uses == [
        'use_backend r_exact if { var(txn.h) -m int 0 } { path -m str "/exact" }',
        'use_backend r_api if { var(txn.h) -m int 0 } { path -m str "/api" }'
        ' || { var(txn.h) -m int 0 } { path -m beg "/api/" }',
        "use_backend r_root if { var(txn.h) -m int 0 }",
        "use_backend r_wild if { var(txn.h) -m int 1 }",
    ]
    assert lines[-1] == "default_backend no_route"
    assert plan.backends == {"r_exact": "exact", "r_api": "api", "r_root": "root", "r_wild": "wild"}


def test_backend_modifies_headers_and_weights_its_servers() -> None:
    plan = render(
        table(
            frontend(
                80,
                host(
                    "",
                    route(
                        "httproute/ns/split/0",
                        "/",
                        backend("ns/stable:80", 8080, 8081, weight=90, ip="10.0.0.1"),
                        backend("ns/canary:80", 8080, weight=10, ip="10.0.0.2"),
                        headers=[{"name": "X-Env", "value": 'say "hi"'}],
                        set_headers=[{"name": "X-Set", "value": "100% $HOME"}],
                        remove_headers=["X-Secret"],
                    ),
                ),
            )
        ),
        SETTINGS,
    )
    assert '{ req.fhdr(x-env) -m str "say \\"hi\\"" }' in plan.config
    lines = section(plan.config, "backend r_httproute_ns_split_0")
    assert lines[:5] == [
        "# route httproute/ns/split/0",
        "balance roundrobin",
        'http-request set-header x-set "100%% \\$HOME"',
        "http-request del-header x-secret",
        "# backend 0: ns/stable:80",
    ]
    servers = [line for line in lines if line.startswith("server")]
    assert servers[:3] == [
        "server b0s0 10.0.0.1:8080 weight 256",
        "server b0s1 10.0.0.1:8081 weight 256",
        "server b0s2 0.0.0.0:1 weight 0 disabled",
    ]
    assert "server b1s0 10.0.0.2:8080 weight 57" in servers  # 10 vs 90/2 per pod
    assert len(servers) == 2 * MIN_SLOTS


def test_server_weights_split_each_backend_across_its_servers() -> None:
    def b(weight: int, n: int) -> Backend:
        return Backend("b", weight, tuple(Server("10.0.0.1", 1 + i) for i in range(n)))

    assert server_weights([b(90, 1), b(10, 1)]) == [256, 28]
    assert server_weights([b(90, 3), b(10, 1)]) == [256, 85]
    assert server_weights([b(1, 2), b(0, 1), b(5, 0)]) == [256, 0, 0]
    assert server_weights([b(0, 1)]) == [0]
    assert server_weights([b(1000, 1), b(1, 100)]) == [256, 1]  # a share is never lost


def test_tls_frontend_binds_the_default_and_sni_certificates() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nx\n"
    plan = render(
        table(
            frontend(
                443,
                host("a.example.com", route("a", "/", backend("a", 1)), certificate="ns/a"),
                host("*.example.com", route("w", "/", backend("a", 1)), certificate="ns/a"),
                host("", route("any", "/", backend("a", 1))),
                tls=True,
            ),
            certificates=[{"name": "ns/a", "pem": pem}],
        ),
        SETTINGS,
    )
    bind = section(plan.config, "frontend fe_443")[0]
    match = re.fullmatch(
        r'bind 127\.0\.0\.1:443 ssl crt "/run/ph-ingress/default\.pem" crt-list "(.+)"'
        r" alpn h2,http/1\.1",
        bind,
    )
    assert match
    crt_list = plan.files[Path(match.group(1))]
    (cert_file,) = [p for p, content in plan.files.items() if content == pem]
    assert crt_list == f"{cert_file} a.example.com\n{cert_file} *.example.com\n"
    assert "redirect" not in plan.config


def test_endpoint_changes_keep_the_structure_and_the_slots() -> None:
    def routes(*ports: int) -> RouteTable:
        return table(frontend(80, host("", route("r", "/", backend("b", *ports)))))

    first = render(routes(1, 2, 3), SETTINGS)
    second = render(routes(3, 4), SETTINGS, first)
    assert second.structure == first.structure
    assert second.config != first.config
    assert second.assignment[("r_r", 0)] == (
        ("127.0.0.1", 4),
        None,
        ("127.0.0.1", 3),  # stays in its slot
        None,
    )
    assert second.slots[("r_r", "b0s1")] == SlotState("0.0.0.0", 1, 0, enabled=False)
    # More endpoints than slots: twice the slots, a new structure.
    third = render(routes(*range(1, 6)), SETTINGS, second)
    assert third.structure != second.structure
    assert len(third.assignment[("r_r", 0)]) == 2 * MIN_SLOTS
    # Fewer again: the slots stay.
    assert render(routes(1), SETTINGS, third).structure == third.structure


def test_a_route_in_two_frontends_shares_its_backend() -> None:
    r = route("ing/ns/web/0/0", "/", backend("ns/web:80", 8080))
    plan: Plan = render(table(frontend(80, host("", r)), frontend(8080, host("", r))), SETTINGS)
    assert plan.config.count("backend r_ing_ns_web_0_0\n") == 1
    other = route("ing/ns/web/0/0", "/other", backend("ns/web:80", 8080))
    plan = render(table(frontend(80, host("", r)), frontend(8080, host("", other))), SETTINGS)
    assert plan.backends == {
        "r_ing_ns_web_0_0": "ing/ns/web/0/0",
        "r_ing_ns_web_0_0_2": "ing/ns/web/0/0",
    }


def test_quoting() -> None:
    assert quote('a "b" \\ $X') == '"a \\"b\\" \\\\ \\$X"'
    assert log_format("100%") == '"100%%"'


def test_retries_redispatch_and_only_idempotent_requests_are_retried_after_sending() -> None:
    """A refused connection is retried on another server each time; a request that
    reached a server is retried only when it is idempotent."""
    config = render(
        table(frontend(80, host("", route("r", "/", backend("a", 1))))), SETTINGS
    ).config
    defaults = section(config, "defaults")
    assert {"option redispatch 1", "retries 3"} <= set(defaults)
    assert "retry-on conn-failure empty-response response-timeout" in defaults
    assert (
        "http-request disable-l7-retry unless { method GET HEAD OPTIONS PUT DELETE TRACE }"
        in section(config, "frontend fe_80")
    )
