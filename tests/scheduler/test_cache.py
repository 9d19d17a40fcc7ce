"""SchedulerCache: confirming an assumed pod from the watch."""

from __future__ import annotations

from typing import Any

from control.scheduler.cache import SchedulerCache
from control.scheduler.podinfo import pod_info
from tests.scheduler.helpers import node_obj, pod_obj

Obj = dict[str, Any]


def bound(obj: Obj, node: str, **spec: Any) -> Obj:
    return {
        **obj,
        "spec": {**obj["spec"], "nodeName": node, **spec},
        "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]},
    }


def cache_with_assumed() -> tuple[SchedulerCache, Obj]:
    cache = SchedulerCache()
    cache.set_node(node_obj("n1"))
    cache.set_node(node_obj("n2"))
    obj = pod_obj("p", cpu="500m", memory="1Gi")
    cache.assume(pod_info(obj), "n1")
    return cache, obj


def test_the_binding_seen_in_the_watch_confirms_the_assumption() -> None:
    cache, obj = cache_with_assumed()
    before = (cache.nodes["n1"].req_cpu, cache.nodes["n1"].req_memory, cache.nodes["n1"].pod_count)
    assert cache.confirm("default/p", bound(obj, "n1"))
    assert not cache.is_assumed("default/p")
    assert cache.pod_node("default/p") == "n1"
    n1 = cache.nodes["n1"]
    assert (n1.req_cpu, n1.req_memory, n1.pod_count) == before == (500, 1024**3, 1)
    # Forgetting a confirmed pod does nothing: it is bound, no longer assumed.
    assert not cache.forget("default/p")
    assert cache.nodes["n1"].pod_count == 1


def test_anything_else_is_not_a_confirmation() -> None:
    cache, obj = cache_with_assumed()
    assert not cache.confirm("default/p", bound(obj, "n2"))  # another node
    assert not cache.confirm("default/p", bound(obj, "n1", priority=5))  # spec changed too
    finished = {**bound(obj, "n1"), "status": {"phase": "Succeeded"}}
    assert not cache.confirm("default/p", finished)
    assert not cache.confirm("default/other", bound(obj, "n1"))  # never assumed
    assert cache.is_assumed("default/p")
