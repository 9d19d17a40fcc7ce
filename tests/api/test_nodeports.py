"""NodePort allocation through the API: allocated when left out, unique across
the cluster, checked when asked for, kept across updates, freed on delete."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from control.client import Client
from control.errors import ApiError
from control.objects.kinds import SERVICE

Obj = dict[str, Any]
SVC_PATH = "/api/v1/namespaces/default/services"


def svc(name: str, *ports: Obj, type_: str = "NodePort", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": type_, "selector": {"app": name}, "ports": list(ports), **spec},
    }


def port(number: int, name: str | None = None, **extra: Any) -> Obj:
    return {"port": number, **({"name": name} if name else {}), **extra}


def node_ports(obj: Obj) -> list[int | None]:
    return [p.get("nodePort") for p in obj["spec"]["ports"]]


async def rejected(aw: Any) -> ApiError:
    with pytest.raises(ApiError) as exc:
        await aw
    assert exc.value.code == 422
    return exc.value


async def test_allocated_in_range_unique_and_shared_by_protocols(client: Client) -> None:
    made = await asyncio.gather(
        *(
            client.create(SERVICE, svc(f"s{i}", port(80, "http"), port(443, "https")))
            for i in range(20)
        )
    )
    allocated = [n for m in made for n in node_ports(m)]
    assert all(isinstance(n, int) and 30000 <= n <= 32767 for n in allocated)
    assert len(set(allocated)) == 40

    dns = await client.create(
        SERVICE, svc("dns", port(53, "dns-udp", protocol="UDP"), port(53, "dns-tcp"))
    )
    udp, tcp = node_ports(dns)
    assert udp == tcp and udp not in allocated

    lb = await client.create(SERVICE, svc("lb", port(80), type_="LoadBalancer"))
    assert isinstance(node_ports(lb)[0], int)
    quiet = svc("quiet", port(80), type_="LoadBalancer", allocateLoadBalancerNodePorts=False)
    assert node_ports(await client.create(SERVICE, quiet)) == [None]
    assert node_ports(await client.create(SERVICE, svc("plain", port(80), type_="ClusterIP"))) == [
        None
    ]


async def test_requested_ports_are_checked_and_freed_on_delete(client: Client) -> None:
    first = await client.create(SERVICE, svc("a", port(80, nodePort=30080)))
    assert node_ports(first) == [30080]

    err = await rejected(client.create(SERVICE, svc("b", port(80, nodePort=30080))))
    assert [(c.field, c.message) for c in err.causes] == [
        ("spec.ports[0].nodePort", "Invalid value: 30080: provided port is already allocated")
    ]
    err = await rejected(client.create(SERVICE, svc("b", port(80, nodePort=8080))))
    assert err.causes[0].field == "spec.ports[0].nodePort"
    assert "not in the valid range. The range of valid ports is 30000-32767" in err.message

    await client.delete(SERVICE, "a", "default")
    assert node_ports(await client.create(SERVICE, svc("b", port(80, nodePort=30080)))) == [30080]


async def test_node_ports_only_where_the_type_has_them(client: Client) -> None:
    err = await rejected(
        client.create(SERVICE, svc("c", port(80, nodePort=30081), type_="ClusterIP"))
    )
    assert [(c.field, c.reason) for c in err.causes] == [
        ("spec.ports[0].nodePort", "FieldValueForbidden")
    ]
    assert "may not be used when `type` is 'ClusterIP'" in err.message

    twice = svc("d", port(80, "a", nodePort=30082), port(81, "b", nodePort=30082))
    err = await rejected(client.create(SERVICE, twice))
    assert [(c.field, c.reason) for c in err.causes] == [
        ("spec.ports[1].nodePort", "FieldValueDuplicate")
    ]
    # The same node port for TCP and UDP is one port.
    both = svc("e", port(53, "u", protocol="UDP", nodePort=30083), port(53, "t", nodePort=30083))
    assert node_ports(await client.create(SERVICE, both)) == [30083, 30083]
    # Nothing the refused ones asked for stays taken.
    assert node_ports(await client.create(SERVICE, svc("f", port(80, nodePort=30081)))) == [30081]
    assert node_ports(await client.create(SERVICE, svc("g", port(80, nodePort=30082)))) == [30082]


async def test_updates_keep_add_free_and_drop_node_ports(client: Client) -> None:
    made = await client.create(SERVICE, svc("web", port(80, "http"), port(443, "https")))
    http, https = node_ports(made)

    # A PUT that leaves nodePorts out keeps them: nothing changed, nothing written.
    put = svc("web", port(80, "http"), port(443, "https"))
    put["metadata"]["resourceVersion"] = made["metadata"]["resourceVersion"]
    same = await client.replace(SERVICE, put)
    assert node_ports(same) == [http, https]
    assert same["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]

    # A new port gets a new node port; a port removed frees its own.
    changed = await client.replace(SERVICE, svc("web", port(80, "http"), port(8080, "alt")))
    kept, alt = node_ports(changed)
    assert kept == http and isinstance(alt, int) and alt not in (http, https)
    taken = await client.create(SERVICE, svc("other", port(80, nodePort=https)))
    assert node_ports(taken) == [https]

    # To ClusterIP, with the node ports still in the body (as `apply` sends it):
    # they are dropped and freed.
    body = {**changed, "spec": {**changed["spec"], "type": "ClusterIP"}}
    cluster = await client.replace(SERVICE, body)
    assert node_ports(cluster) == [None, None]
    reuse = await client.create(SERVICE, svc("reuse", port(80, nodePort=http)))
    assert node_ports(reuse) == [http]

    # Asking for a taken port on update is refused and changes nothing.
    stored = await client.get(SERVICE, "web", "default")
    stored["spec"]["type"] = "NodePort"
    stored["spec"]["ports"][0]["nodePort"] = http
    err = await rejected(client.replace(SERVICE, stored))
    assert err.causes[0].field == "spec.ports[0].nodePort"
    assert node_ports(await client.get(SERVICE, "web", "default")) == [None, None]
    # ...and leaving them out allocates new ones.
    del stored["spec"]["ports"][0]["nodePort"]
    again = await client.replace(SERVICE, stored)
    assert all(isinstance(n, int) and n != http for n in node_ports(again))


async def test_failed_writes_and_dry_runs_keep_nothing(client: Client) -> None:
    await client.create(SERVICE, svc("a", port(80, nodePort=30100)))
    with pytest.raises(ApiError) as exc:
        await client.create(SERVICE, svc("a", port(80, nodePort=30101)))
    assert exc.value.reason == "AlreadyExists"
    await client.request(
        "POST", SVC_PATH, params={"dryRun": "All"}, body=svc("dry", port(80, nodePort=30102))
    )
    for name, number in (("b", 30101), ("c", 30102)):
        assert node_ports(await client.create(SERVICE, svc(name, port(80, nodePort=number)))) == [
            number
        ]
