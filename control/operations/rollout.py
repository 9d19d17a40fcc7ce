"""A Deployment's rollout: restart, pause, resume, its history and undo, as
`kubectl rollout` does them (on the client side)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.protocol.primitives import now_rfc3339
from control.client import Client
from control.objects import Obj
from control.objects.kinds import DEPLOYMENT, REPLICASET
from control.objects.revisions import (
    RESTARTED_AT,
    SKIP_ANNOTATIONS,
    equal_ignore_hash,
    revision,
    template_without_hash,
)
from control.operations import OperationError
from control.operations.listing import list_all


def _paused(d: Obj) -> bool:
    return bool((d.get("spec") or {}).get("paused"))


async def history(client: Client, d: Obj, namespace: str) -> dict[int, Obj]:
    """The Deployment's ReplicaSets by the revision each records."""
    uid = (d.get("metadata") or {}).get("uid")
    out: dict[int, Obj] = {}
    for rs in await list_all(client, REPLICASET, namespace):
        refs = (rs.get("metadata") or {}).get("ownerReferences") or []
        if any(r.get("controller") and r.get("uid") == uid for r in refs):
            out[revision(rs)] = rs
    return out


@dataclass(frozen=True)
class Rollback:
    revision: int  # the revision whose pod template the Deployment now has
    skipped: bool  # it had that template already: nothing was written

    def message(self, name: str) -> str:
        """kubectl's line for it."""
        if self.skipped:
            return (
                f"deployment.apps/{name} skipped rollback "
                f"(current template already matches revision {self.revision})"
            )
        return f"deployment.apps/{name} rolled back"


async def undo(client: Client, name: str, namespace: str, to_revision: int = 0) -> Rollback:
    """Roll back to `to_revision`, or to the revision before the newest: copy its
    pod template (without the pod-template-hash label) and its annotations into
    the Deployment, as modern kubectl does. A paused Deployment is refused."""
    d = await client.get(DEPLOYMENT, name, namespace)
    if _paused(d):
        raise OperationError(
            "you cannot rollback a paused deployment; resume it first with "
            f"'pilothouse rollout resume deployment/{name}' and try again"
        )
    revisions = await history(client, d, namespace)
    if to_revision:
        target = revisions.get(to_revision)
        if target is None:
            raise OperationError(f"unable to find specified revision {to_revision} in history")
        rev = to_revision
    else:
        older = sorted(revisions)[:-1]
        if not older:
            raise OperationError(f'no rollout history found for deployment "{name}"')
        rev = older[-1]
        target = revisions[rev]
    template = (target.get("spec") or {}).get("template") or {}
    if equal_ignore_hash(template, (d.get("spec") or {}).get("template") or {}):
        return Rollback(rev, skipped=True)
    meta = d.setdefault("metadata", {})
    current = meta.get("annotations") or {}
    annotations = {k: v for k, v in current.items() if k in SKIP_ANNOTATIONS}
    for k, v in ((target.get("metadata") or {}).get("annotations") or {}).items():
        if k not in SKIP_ANNOTATIONS:
            annotations[k] = v
    meta["annotations"] = annotations
    d["spec"]["template"] = template_without_hash(template)
    await client.replace(DEPLOYMENT, d)
    return Rollback(rev, skipped=False)


async def restart(client: Client, name: str, namespace: str) -> None:
    """Stamp the pod template with the time, so that every pod is replaced."""
    d = await client.get(DEPLOYMENT, name, namespace)
    if _paused(d):
        raise OperationError(
            f'deployments.apps "{name}" can\'t restart paused deployment (run rollout resume first)'
        )
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now_rfc3339()}}}}}
    await client.patch(DEPLOYMENT, name, patch, namespace)


async def set_paused(client: Client, name: str, namespace: str, paused: bool) -> None:
    """Pause or resume; OperationError when it already is."""
    d = await client.get(DEPLOYMENT, name, namespace)
    if _paused(d) == paused:
        state = "already paused" if paused else "not paused"
        raise OperationError(f'deployments.apps "{name}" is {state}')
    await client.patch(DEPLOYMENT, name, {"spec": {"paused": paused}}, namespace)
