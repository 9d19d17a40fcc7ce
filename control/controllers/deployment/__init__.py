"""The Deployment controller: one ReplicaSet per pod template, rolled by strategy.

It follows Kubernetes' controller (pkg/controller/deployment) closely: the
`pod-template-hash` label, revisions and their history, RollingUpdate with
maxSurge/maxUnavailable, Recreate, proportional scaling, pause, and the
Progressing and Available conditions. Its modules follow Kubernetes' files:
controller (informers, handlers, the reconcile entry), sync (ReplicaSets and
revisions, scaling, status), rolling, recreate, progress (conditions and the
progress deadline), and the pure parts: replicas (the arithmetic),
annotations (revisions on ReplicaSets) and templatehash.

One deliberate difference: rollout decisions count pods, not only ReplicaSet
specs and statuses. Per ReplicaSet, the size is max(spec.replicas, active pods
seen) and the available count is min(spec.replicas, available pods seen), so
pods still being deleted count against maxSurge, and pods about to be deleted
do not count as available. That keeps both bounds true at every observed
moment, not only once the ReplicaSets have caught up.
"""

from control.controllers.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
