"""Creating and deleting a workload's pods (Kubernetes' PodControl): pods
from the workload's template, each write with its Event and its expectation,
and the status writes of the workload."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from agent.protocol.primitives import new_controller_ref
from control import errors
from control.api.options import DeleteOptions
from control.api.registry import Registry
from control.controllers.expectations import Expectations
from control.controllers.objectmeta import Obj, is_deleting, meta
from control.errors import ApiError
from control.machinery.events import EventRecorder
from control.objects.kinds import POD, ResourceType, object_key


def pod_from_template(owner: Obj, owner_rt: ResourceType, template: Obj, generate_name: str) -> Obj:
    """The pod body `owner` creates: the template's labels, annotations and
    spec (copied), and a controller reference to `owner`."""
    m = meta(owner)
    tmeta = template.get("metadata") or {}
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": generate_name,
            "namespace": str(m.get("namespace")),
            "ownerReferences": [new_controller_ref(owner, owner_rt.api_version, owner_rt.kind)],
        },
        "spec": copy.deepcopy(template.get("spec") or {}),
    }
    for field_name in ("labels", "annotations"):
        if tmeta.get(field_name):
            body["metadata"][field_name] = dict(tmeta[field_name])
    return body


class PodControl:
    """One controller's pod writes; `key` is the owner's queue key, whose
    expectations the writes lower when they fail (no event will come)."""

    def __init__(
        self, registry: Registry, recorder: EventRecorder, expectations: Expectations
    ) -> None:
        self.registry, self.recorder, self.expectations = registry, recorder, expectations

    def observe(self, key: str, kind: str, pod: Obj, new: Obj | None) -> None:
        """A pod event of the owner `key`: lower its expectations."""
        if kind == "ADDED":
            self.expectations.creation_observed(key)
        elif kind == "DELETED" or (new is not None and is_deleting(new)):
            self.expectations.deletion_observed(key, object_key(pod))

    async def create(self, key: str, owner: Obj, body: Obj) -> Obj:
        """Create one pod the caller expected (`expect(key, adds=...)`)."""
        try:
            kv = await self.registry.create(POD, str(meta(owner).get("namespace")), body)
        except BaseException:
            self.expectations.creation_observed(key)
            raise
        name = meta(kv.obj).get("name")
        await self.recorder.record(owner, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        return kv.obj

    async def delete_all(self, key: str, owner: Obj, victims: list[Obj]) -> None:
        """Delete the pods the caller expected to delete (`expect(key,
        deletes=...)`); raise the first failure."""

        async def delete_one(pod: Obj) -> None:
            pm = meta(pod)
            try:
                await self.registry.delete(
                    POD, pm.get("namespace"), str(pm.get("name")), expected_uid=pm.get("uid")
                )
            except ApiError as e:
                self.expectations.deletion_observed(key, object_key(pod))
                if e.code == 404:
                    return
                await self.recorder.record(
                    owner, "Warning", "FailedDelete", f"Error deleting: {e.message}"
                )
                raise
            await self.recorder.record(
                owner, "Normal", "SuccessfulDelete", f"Deleted pod: {pm.get('name')}"
            )

        await gather_all([delete_one(p) for p in victims])


async def gather_all(aws: list[Any]) -> None:
    """Run them all; then raise the first failure, if any."""
    results = await asyncio.gather(*aws, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r


async def delete_object(registry: Registry, rt: ResourceType, obj: Obj, policy: str) -> bool:
    """Delete this very object (its uid) with a propagation policy; False when
    it was gone already."""
    m = meta(obj)
    options = DeleteOptions(propagation_policy=policy)
    try:
        await registry.delete(
            rt, m.get("namespace"), str(m.get("name")), options, expected_uid=m.get("uid")
        )
    except ApiError as e:
        if e.code != 404:
            raise
        return False
    return True


async def write_status(
    registry: Registry, rt: ResourceType, obj: Obj, status: Obj, *, only_over_read: bool = False
) -> Obj | None:
    """Set `obj`'s status through the status subresource; the object written,
    or None when it is gone. With `only_over_read`, a status built on top of
    the one read is never written over a newer one: that is a 409."""
    m = meta(obj)
    name, read = str(m.get("name")), m.get("resourceVersion")

    def set_status(current: Obj) -> Obj:
        if only_over_read and meta(current).get("resourceVersion") != read:
            raise errors.conflict(rt.plural, name, rt.group, "the object has been modified")
        current["status"] = copy.deepcopy(status)
        return current

    try:
        kv = await registry.patch(rt, m.get("namespace"), name, set_status, subresource="status")
    except ApiError as e:
        if e.code != 404:
            raise
        return None
    return kv.obj
