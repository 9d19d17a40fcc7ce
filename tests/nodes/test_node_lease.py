"""Each node link renews its node's Lease in kube-node-lease with the heartbeat."""

from __future__ import annotations

from control.objects.kinds import LEASE
from tests.cluster import HollowCluster
from tests.polling import eventually


async def test_node_leases_are_renewed_and_owned_by_their_nodes(
    hollow_cluster: HollowCluster,
) -> None:
    for name in ("node-1", "node-2", "node-3"):
        node = await hollow_cluster.node(name)
        assert node is not None
        lease = (await hollow_cluster.registry.get(LEASE, "kube-node-lease", name)).obj
        spec = lease["spec"]
        assert spec["holderIdentity"] == name and spec["leaseDurationSeconds"] == 40
        assert spec["renewTime"].endswith("Z") and "." in spec["renewTime"]
        (owner,) = lease["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "Node",
            name,
            node["metadata"]["uid"],
        )
    first = spec["renewTime"]

    async def renewed() -> bool:
        kv = await hollow_cluster.registry.get(LEASE, "kube-node-lease", "node-3")
        return bool(kv.obj["spec"]["renewTime"] > first)

    await eventually(renewed, "node-3's lease renewed")
