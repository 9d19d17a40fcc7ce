"""A node's Lease in `kube-node-lease`, renewed with each heartbeat its link
writes, as the kubelet renews it: holder and name are the node's, and the
Node owns it, so it goes when the Node does. The node lifecycle controller
still judges health by the Node's Ready heartbeat, written alongside."""

from __future__ import annotations

import logging

from control.api.registry import Registry
from control.errors import ApiError
from control.objects import Obj
from control.objects.coordination import micro_time
from control.objects.kinds import LEASE
from control.store.interface import KV

log = logging.getLogger(__name__)

NODE_LEASE_NAMESPACE = "kube-node-lease"
# The kubelet's default nodeLeaseDurationSeconds.
LEASE_DURATION_SECONDS = 40


async def renew_node_lease(registry: Registry, node: str, node_kv: KV) -> None:
    """Renew (or create) the Lease of `node`, whose Node is `node_kv`.
    A failure is logged: the Node's own heartbeat was written."""
    now = micro_time()

    def renew(obj: Obj) -> Obj:
        spec = obj.setdefault("spec", {})
        if spec.get("holderIdentity") != node:
            spec["acquireTime"] = now
        spec.update(holderIdentity=node, leaseDurationSeconds=LEASE_DURATION_SECONDS, renewTime=now)
        return obj

    try:
        for _ in range(2):
            try:
                await registry.patch(LEASE, NODE_LEASE_NAMESPACE, node, renew)
                return
            except ApiError as e:
                if e.code != 404:
                    raise
            try:
                await registry.create(LEASE, NODE_LEASE_NAMESPACE, _new_lease(node, node_kv, now))
                return
            except ApiError as e:
                if e.reason != "AlreadyExists":
                    raise
    except ApiError as e:
        log.warning("node %s: lease not renewed: %s", node, e)


def _new_lease(node: str, node_kv: KV, now: str) -> Obj:
    uid = (node_kv.obj.get("metadata") or {}).get("uid")
    meta: Obj = {"name": node, "namespace": NODE_LEASE_NAMESPACE}
    if uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}]
    return {
        "apiVersion": LEASE.api_version,
        "kind": LEASE.kind,
        "metadata": meta,
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "acquireTime": now,
            "renewTime": now,
        },
    }
