"""The EndpointSlice controller: its rules on their own, then in-process, on
hollow nodes and on pods whose states the test sets by hand."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any, cast

import orjson

from control.api.registry import Registry
from control.config import load_config
from control.controllers.endpointslices import (
    STALE_RETRY,
    EndpointSliceController,
    SliceKey,
    desired_endpoints,
    plan_slices,
    slice_body,
)
from control.controllers.manager import ControllerManager
from control.controlplane import ControlPlane
from control.objects.kinds import DEPLOYMENT, ENDPOINTSLICE, NODE, POD, SERVICE
from control.store.interface import KV
from tests.controllers.helpers import NS, get, pods, update
from tests.controllers.hollow_nodes import HollowNodes, node_manifest, running_status
from tests.controllers.test_pod_handlers import woken
from tests.polling import eventually

Obj = dict[str, Any]
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
HTTP: SliceKey = ("IPv4", (("http", 8080, "TCP", ""),))

# -- the rules -----------------------------------------------------------------------


def service(name: str = "web", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS, "uid": "s1"},
        "spec": {
            "selector": {"app": name},
            "clusterIP": "10.96.0.20",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}],
            **spec,
        },
    }


def pod(
    name: str,
    ip: str | None,
    *,
    ready: bool = True,
    port: int = 8080,
    deleting: bool = False,
    phase: str = "Running",
    node: str = "node-1",
    **spec: Any,
) -> Obj:
    meta: Obj = {"name": name, "namespace": NS, "uid": f"uid-{name}", "labels": {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    status: Obj = {"phase": phase}
    if ip:
        status |= {"podIP": ip, "podIPs": [{"ip": ip}]}
    status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    container = {"name": "main", "image": "x", "ports": [{"name": "http", "containerPort": port}]}
    return {
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [container], **spec},
        "status": status,
    }


def conditions(groups: dict[SliceKey, dict[str, Obj]]) -> dict[str, tuple[bool, bool, bool]]:
    return {
        ip: (e["conditions"]["ready"], e["conditions"]["serving"], e["conditions"]["terminating"])
        for endpoints in groups.values()
        for ip, e in endpoints.items()
    }


def test_conditions_are_kubernetes_ones() -> None:
    pods_ = [
        pod("up", "10.0.0.1"),
        pod("starting", "10.0.0.2", ready=False),
        pod("leaving", "10.0.0.3", deleting=True),
        pod("leaving-unready", "10.0.0.4", ready=False, deleting=True),
        pod("pending", None),
        pod("done", "10.0.0.6", phase="Succeeded"),
        pod("failed", "10.0.0.7", phase="Failed"),
    ]
    # (ready, serving, terminating): ready is serving and not terminating.
    assert conditions(desired_endpoints(service(), pods_)) == {
        "10.0.0.1": (True, True, False),
        "10.0.0.2": (False, False, False),
        "10.0.0.3": (False, True, True),
        "10.0.0.4": (False, False, True),
    }
    publish = service(publishNotReadyAddresses=True)
    assert conditions(desired_endpoints(publish, pods_)) == {
        "10.0.0.1": (True, True, False),
        "10.0.0.2": (True, False, False),
        "10.0.0.3": (True, True, True),
        "10.0.0.4": (True, False, True),
    }


def test_endpoint_fields_and_ports_resolved_per_pod() -> None:
    pods_ = [
        pod("a", "10.0.0.1", hostname="a", subdomain="web"),
        pod("b", "10.0.0.2", port=9090, hostname="b", subdomain="other"),
        pod("c", "10.0.0.3", node="node-2"),
    ]
    pods_[2]["spec"]["containers"][0]["ports"] = []  # no port named http
    groups = desired_endpoints(service(), pods_, {"node-1": "zone-a"})
    assert set(groups) == {
        ("IPv4", (("http", 8080, "TCP", ""),)),
        ("IPv4", (("http", 9090, "TCP", ""),)),
        ("IPv4", ()),
    }
    assert groups[HTTP]["10.0.0.1"] == {
        "addresses": ["10.0.0.1"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": NS, "name": "a", "uid": "uid-a"},
        "nodeName": "node-1",
        "zone": "zone-a",
        "hostname": "a",
    }
    other = groups[("IPv4", (("http", 9090, "TCP", ""),))]["10.0.0.2"]
    assert "hostname" not in other and other["zone"] == "zone-a"
    assert "zone" not in groups[("IPv4", ())]["10.0.0.3"]
    # A number as targetPort is the same for every pod.
    numbered = service(ports=[{"name": "", "port": 80, "protocol": "UDP", "targetPort": 53}])
    assert set(desired_endpoints(numbered, pods_)) == {("IPv4", (("", 53, "UDP", ""),))}


def existing(name: str, key: SliceKey, addresses: list[str]) -> Obj:
    """A stored slice of `service()`, holding `addresses`."""
    eps = slice_body(service(), key, [endpoint_of(ip) for ip in addresses])
    eps["metadata"] |= {"name": name, "resourceVersion": "1"}
    return eps


def endpoint_of(ip: str, ready: bool = True) -> Obj:
    groups = desired_endpoints(service(), [pod(f"p{ip}", ip, ready=ready)])
    return groups[HTTP][ip]


def wanted(*ips: str, not_ready: tuple[str, ...] = ()) -> dict[SliceKey, dict[str, Obj]]:
    return {HTTP: {ip: endpoint_of(ip, ip not in not_ready) for ip in ips}}


def ips(endpoints: list[Obj]) -> list[str]:
    return sorted(e["addresses"][0] for e in endpoints)


def many(n: int, start: int = 0) -> list[str]:
    return [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(start, start + n)]


def test_split_at_100_and_endpoints_stay_where_they_are() -> None:
    placeholder: SliceKey = ("IPv4", ())
    plan = plan_slices([], wanted(*many(250)), placeholder)
    assert [len(e) for _, e in plan.create] == [100, 100, 50]
    assert not (plan.update or plan.delete or plan.keep)

    a, b, c = (
        existing(n, HTTP, many(k, s))
        for n, k, s in (("a", 100, 0), ("b", 100, 100), ("c", 50, 200))
    )
    # One endpoint goes not ready: only its slice is written.
    plan = plan_slices([a, b, c], wanted(*many(250), not_ready=(many(1, 150)[0],)), placeholder)
    assert [s["metadata"]["name"] for s, _, _ in plan.update] == ["b"]
    assert [s["metadata"]["name"] for s in plan.keep] == ["a", "c"]
    assert not (plan.create or plan.delete)

    # Endpoints leave a and new ones come: they fill the slice written anyway first.
    new = many(3, 250)
    plan = plan_slices([a, b, c], wanted(*many(249, 1), *new), placeholder)
    assert [(s["metadata"]["name"], ips(e)) for s, _, e in plan.update] == [
        ("a", sorted(many(99, 1) + new[:1])),
        ("c", sorted(many(50, 200) + new[1:])),
    ]
    assert [s["metadata"]["name"] for s in plan.keep] == ["b"]

    # Everything leaves b: it goes; nothing moves into it.
    plan = plan_slices([a, b, c], wanted(*many(100), *many(50, 200)), placeholder)
    assert [s["metadata"]["name"] for s in plan.delete] == ["b"]
    assert [s["metadata"]["name"] for s in plan.keep] == ["a", "c"]


def test_no_endpoints_keep_one_empty_placeholder() -> None:
    placeholder: SliceKey = ("IPv4", ())
    plan = plan_slices([], {}, placeholder)
    assert plan.create == [(placeholder, [])]
    a, b = existing("a", HTTP, ["10.0.0.1"]), existing("b", HTTP, ["10.0.0.2"])
    plan = plan_slices([b, a], {}, placeholder)
    assert [(s["metadata"]["name"], k, e) for s, k, e in plan.update] == [("a", placeholder, [])]
    assert [s["metadata"]["name"] for s in plan.delete] == ["b"]
    empty = existing("c", placeholder, [])
    plan = plan_slices([a, empty], {}, placeholder)
    assert plan.keep == [empty] and plan.delete == [a] and not plan.update
    # Endpoints again: the placeholder goes, a slice with them comes.
    plan = plan_slices([empty], wanted("10.0.0.1"), placeholder)
    assert plan.delete == [empty] and [ips(e) for _, e in plan.create] == [["10.0.0.1"]]


# -- in-process ----------------------------------------------------------------------


async def slices_of(reg: Registry, name: str) -> list[Obj]:
    listed = await reg.list(ENDPOINTSLICE, NS)
    return sorted(
        (kv.obj for kv in listed.items if kv.obj["metadata"]["labels"].get(SERVICE_NAME) == name),
        key=lambda s: str(s["metadata"]["name"]),
    )


def web_deployment(replicas: int) -> Obj:
    container = {
        "name": "main",
        "image": "nginx:1.25",
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [container]},
            },
        },
    }


def web_service(**spec: Any) -> Obj:
    """`service()` to create: the API server gives it its uid and, unless the
    test asks for one, its clusterIP."""
    body = service(**spec)
    del body["metadata"]["uid"]
    if "clusterIP" not in spec:
        del body["spec"]["clusterIP"]
    body["metadata"]["labels"] = {"tier": "front"}
    return body


async def test_slices_follow_a_deployment_on_hollow_nodes(
    plane: ControlPlane, kubelet: HollowNodes
) -> None:
    reg = plane.registry
    await reg.create(DEPLOYMENT, NS, web_deployment(3))
    svc = (await reg.create(SERVICE, NS, web_service())).obj

    async def three_ready() -> list[Obj] | None:
        found = await slices_of(reg, "web")
        if len(found) == 1 and len(found[0]["endpoints"]) == 3:
            if all(e["conditions"]["ready"] for e in found[0]["endpoints"]):
                return found
        return None

    (eps,) = await eventually(three_ready, "one slice with three ready endpoints", within=10.0)
    meta = eps["metadata"]
    assert meta["name"].startswith("web-") and len(meta["name"]) == len("web-") + 5
    assert meta["labels"] == {
        "tier": "front",
        SERVICE_NAME: "web",
        MANAGED_BY: "endpointslice-controller.k8s.io",
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "web",
            "uid": svc["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert eps["addressType"] == "IPv4"
    assert eps["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    running = {p["status"]["podIP"]: p for p in await pods(reg, "web")}
    assert sorted(running) == sorted(e["addresses"][0] for e in eps["endpoints"])
    for e in eps["endpoints"]:
        p = running[e["addresses"][0]]
        assert e["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert e["nodeName"] == p["spec"]["nodeName"]
        assert e["targetRef"] == {
            "kind": "Pod",
            "namespace": NS,
            "name": p["metadata"]["name"],
            "uid": p["metadata"]["uid"],
        }

    # Scaled to nothing: one empty placeholder slice remains.
    await reg.update_scale(DEPLOYMENT, NS, "web", lambda s: {**s, "spec": {"replicas": 0}})

    async def placeholder() -> list[Obj] | None:
        found = await slices_of(reg, "web")
        return found if len(found) == 1 and found[0]["endpoints"] == [] else None

    (empty,) = await eventually(placeholder, "the placeholder slice", within=10.0)
    assert empty["ports"] == []

    # The Service goes: the garbage collector takes its slices.
    await reg.delete(SERVICE, NS, "web")

    async def none_left() -> bool:
        return not await slices_of(reg, "web")

    await eventually(none_left, "the slices deleted with their service", within=10.0)


async def make_node(reg: Registry, name: str, zone: str) -> None:
    node = node_manifest(name)
    node["metadata"]["labels"]["topology.kubernetes.io/zone"] = zone
    await reg.create(NODE, None, node)


async def run_pod(reg: Registry, body: Obj, *, ready: bool = True) -> None:
    """Create a pod already bound to its node, and report it running as its agent would."""
    ip = body["status"]["podIP"]
    body = copy.deepcopy(body)
    del body["status"], body["metadata"]["uid"]
    await reg.create(POD, NS, body)
    await set_ready(reg, body["metadata"]["name"], ip, ready)


async def set_ready(reg: Registry, name: str, ip: str, ready: bool) -> None:
    def change(p: Obj) -> Obj:
        p["status"] = running_status(p, ready, ip, "192.168.100.1")
        return p

    await reg.patch(POD, NS, name, change, subresource="status")


def by_ip(found: list[Obj]) -> dict[str, Obj]:
    return {e["addresses"][0]: e for s in found for e in s["endpoints"]}


async def test_readiness_termination_and_ports_by_hand(plane: ControlPlane) -> None:
    reg = plane.registry
    await make_node(reg, "node-1", "zone-a")
    await reg.create(SERVICE, NS, web_service())
    await run_pod(reg, pod("a", "10.244.0.2"))
    await run_pod(reg, pod("b", "10.244.0.3", port=9090), ready=False)
    await run_pod(reg, pod("c", "10.244.0.4"))

    # An endpoint's conditions: (ready, serving, terminating).
    ready, not_ready, terminating = (True, True, False), (False, False, False), (False, True, True)

    async def settles(what: str, expect: dict[str, tuple[bool, bool, bool]]) -> list[Obj]:
        """The service's slices, once their endpoints' conditions are `expect` (by IP)."""

        async def settled() -> list[Obj] | None:
            found = await slices_of(reg, "web")
            seen = {
                ip: (
                    e["conditions"]["ready"],
                    e["conditions"]["serving"],
                    e["conditions"]["terminating"],
                )
                for ip, e in by_ip(found).items()
            }
            return found if seen == expect else None

        return await eventually(settled, what, within=10.0)

    found = await settles(
        "three endpoints", {"10.244.0.2": ready, "10.244.0.3": not_ready, "10.244.0.4": ready}
    )
    # b's named port resolves to another number: another slice.
    assert sorted((s["ports"][0]["port"], ips(s["endpoints"])) for s in found) == [
        (8080, ["10.244.0.2", "10.244.0.4"]),
        (9090, ["10.244.0.3"]),
    ]
    assert {e.get("zone") for e in by_ip(found).values()} == {"zone-a"}

    # b gets ready; c is being deleted (its agent has yet to stop it): serving, not ready.
    await set_ready(reg, "b", "10.244.0.3", True)
    await reg.delete(POD, NS, "c")
    assert (await get(reg, POD, "c"))["metadata"].get("deletionTimestamp")
    await settles(
        "c terminating", {"10.244.0.2": ready, "10.244.0.3": ready, "10.244.0.4": terminating}
    )
    # Once it is gone, so is its endpoint.
    await reg.delete(POD, NS, "c", grace_period_seconds=0)
    found = await settles("c gone", {"10.244.0.2": ready, "10.244.0.3": ready})
    assert len(found) == 2


async def test_many_endpoints_split_without_duplicate_slices(plane: ControlPlane) -> None:
    reg = plane.registry
    await make_node(reg, "node-1", "zone-a")
    await reg.create(SERVICE, NS, web_service())
    most = 0

    async def watch_slices() -> None:
        nonlocal most
        seen: set[str] = set()
        async for ev in plane.store.watch("/registry/endpointslices/", 0):
            (seen.discard if ev.type == "DELETED" else seen.add)(ev.kv.key)
            most = max(most, len(seen))

    watcher = asyncio.create_task(watch_slices())
    try:
        addresses = many(230)
        for i, ip in enumerate(addresses):
            await run_pod(reg, pod(f"p{i:03d}", ip))

        async def split() -> list[Obj] | None:
            found = await slices_of(reg, "web")
            return found if sorted(len(s["endpoints"]) for s in found) == [30, 100, 100] else None

        found = await eventually(split, "230 endpoints in three slices", within=20)
        assert sorted(by_ip(found)) == sorted(addresses)
        versions = {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in found}

        # One pod goes not ready: one slice is written, the others stay as they are.
        changed = addresses[150]
        await set_ready(reg, f"p{150:03d}", changed, False)

        async def one_not_ready() -> list[Obj] | None:
            found = await slices_of(reg, "web")
            return found if by_ip(found)[changed]["conditions"]["ready"] is False else None

        after = await eventually(one_not_ready, "the endpoint not ready", within=10.0)
        rewritten = [
            s["metadata"]["name"]
            for s in after
            if s["metadata"]["resourceVersion"] != versions[s["metadata"]["name"]]
        ]
        assert len(rewritten) == 1 and sorted(versions) == [s["metadata"]["name"] for s in after]
    finally:
        watcher.cancel()
    # While its own writes were on their way to its cache, it never made a slice twice.
    assert most == 3


async def test_slices_only_for_services_with_selectors(plane: ControlPlane) -> None:
    reg = plane.registry
    await make_node(reg, "node-1", "zone-a")
    await run_pod(reg, pod("a", "10.244.0.2"))
    manual = web_service()
    manual["metadata"]["name"] = "manual"
    del manual["spec"]["selector"]
    await reg.create(SERVICE, NS, manual)
    headless = web_service(clusterIP="None")
    headless["metadata"]["name"] = "headless"
    headless["spec"]["selector"] = {"app": "web"}
    await reg.create(SERVICE, NS, headless)

    async def headless_slice() -> list[Obj] | None:
        found = await slices_of(reg, "headless")
        return found if len(by_ip(found)) == 1 else None

    (eps,) = await eventually(headless_slice, "the headless service's slice", within=10.0)
    assert eps["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert await slices_of(reg, "manual") == []

    # Someone deletes a slice the controller keeps: it comes back.
    await reg.delete(ENDPOINTSLICE, NS, eps["metadata"]["name"])

    async def replaced() -> list[Obj] | None:
        found = await slices_of(reg, "headless")
        names = [s["metadata"]["name"] for s in found]
        return found if len(by_ip(found)) == 1 and eps["metadata"]["name"] not in names else None

    await eventually(replaced, "a new slice", within=10.0)

    # The selector goes: so do the slices.
    def drop_selector(s: Obj) -> None:
        del s["spec"]["selector"]

    await update(reg, SERVICE, "headless", drop_selector)

    async def none_left() -> bool:
        return not await slices_of(reg, "headless")

    await eventually(none_left, "no slices without a selector", within=10.0)


# -- a cache behind the controller's own writes ----------------------------------------


class RecordingRegistry:
    """Takes the controller's writes and tells what they were; the test decides
    when its informers see them."""

    def __init__(self) -> None:
        self.revision = 100
        self.writes: list[tuple[str, str]] = []
        self.stored: dict[str, Obj] = {}

    def _kv(self, verb: str, obj: Obj) -> KV:
        self.revision += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.revision)
        self.writes.append((verb, meta["name"]))
        self.stored[meta["name"]] = obj
        return KV(
            f"/registry/endpointslices/{NS}/{meta['name']}", orjson.dumps(obj), self.revision, 1
        )

    async def create(self, rt: Any, namespace: str, body: Obj) -> KV:
        obj = copy.deepcopy(body)
        meta = obj["metadata"]
        meta |= {
            "name": f"{meta.pop('generateName')}{len(self.writes):05d}",
            "uid": f"u{len(self.writes)}",
        }
        return self._kv("create", obj)

    async def update(self, rt: Any, namespace: str, name: str, body: Obj) -> KV:
        return self._kv("update", copy.deepcopy(body))

    async def delete(self, rt: Any, namespace: str, name: str, **_: Any) -> KV:
        return self._kv("delete", copy.deepcopy(self.stored[name]))


async def test_waits_for_its_cache_to_show_its_own_writes(tmp_path: Path) -> None:
    config = load_config(None, data_dir=tmp_path)
    registry = RecordingRegistry()
    manager = ControllerManager(cast(Registry, registry), config, controllers=[])
    controller = EndpointSliceController(manager, config)
    slices = manager.informer(ENDPOINTSLICE)
    svc = service()
    manager.informer(SERVICE)._put(svc | {"metadata": {**svc["metadata"], "resourceVersion": "1"}})
    first = pod("a", "10.0.0.1")
    manager.informer(POD)._put(first | {"metadata": {**first["metadata"], "resourceVersion": "2"}})

    def seen(name: str) -> None:
        """The slices informer catches up with one write."""
        obj = registry.stored[name]
        slices.revision = int(obj["metadata"]["resourceVersion"])
        if registry.writes[-1] == ("delete", name):
            slices._delete(f"{NS}/{name}")
        else:
            slices._put(copy.deepcopy(obj))

    assert await controller.reconcile("default/web") is None
    assert [verb for verb, _ in registry.writes] == ["create"]
    made = registry.writes[0][1]
    # Its cache does not show the new slice yet: it waits rather than make another.
    assert await controller.reconcile("default/web") == STALE_RETRY
    assert len(registry.writes) == 1
    seen(made)
    assert await controller.reconcile("default/web") is None
    assert len(registry.writes) == 1  # all as desired
    # The event of its own write woke the service.
    assert await woken(controller.queue) == {"default/web"}

    # The selector goes: the slice is deleted, and until the cache shows it gone
    # the controller does not act on it again.
    no_selector = copy.deepcopy(svc)
    del no_selector["spec"]["selector"]
    no_selector["metadata"]["resourceVersion"] = "3"
    manager.informer(SERVICE)._put(no_selector)
    assert await controller.reconcile("default/web") is None
    assert registry.writes[-1] == ("delete", made)
    assert await controller.reconcile("default/web") == STALE_RETRY
    seen(made)
    assert await controller.reconcile("default/web") is None
    assert len(registry.writes) == 2
