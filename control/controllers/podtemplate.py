"""A new pod from a workload's pod template, controlled by the workload."""

from __future__ import annotations

import copy

from agent.protocol.primitives import new_controller_ref
from control.controllers.objectmeta import Obj, meta
from control.objects.kinds import ResourceType


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
