"""The Deployment controller, in-process, on hollow nodes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.protocol.primitives import controller_ref
from console.cli.arguments import UsageError
from control.controlplane import ControlPlane
from control.objects.kinds import DEPLOYMENT
from control.objects.revisions import (
    HASH_LABEL,
    RESTARTED_AT,
    REVISION,
    REVISION_HISTORY,
    equal_ignore_hash,
)
from control.operations import OperationError
from tests.controllers.helpers import (
    NS,
    Observer,
    cli,
    deployed,
    deployment,
    events,
    get,
    is_ready,
    pods,
    replicasets,
    rolled_out,
    set_image,
    update,
)
from tests.controllers.hollow_nodes import HollowNodes
from tests.polling import eventually

Obj = dict[str, Any]


def image(obj: Obj) -> str:
    """The first container's image of a pod, or of a workload's pod template."""
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    return str(spec["containers"][0]["image"])


def condition(d: Obj, type_: str) -> Obj:
    return next(c for c in d["status"].get("conditions") or () if c["type"] == type_)


def by_revision(rss: list[Obj]) -> dict[str, Obj]:
    return {rs["metadata"]["annotations"][REVISION]: rs for rs in rss}


@pytest.mark.parametrize(
    ("replicas", "max_surge", "max_unavailable", "surge", "unavailable"),
    [
        (10, 3, 2, 3, 2),
        (8, "25%", "25%", 2, 2),
        (5, 0, 1, 0, 1),
        (5, "30%", 0, 2, 0),  # surge rounds up: 1.5 -> 2
        (3, "10%", "50%", 1, 1),  # unavailable rounds down: 1.5 -> 1
    ],
)
async def test_rolling_update_stays_within_bounds(
    plane: ControlPlane,
    replicas: int,
    max_surge: int | str,
    max_unavailable: int | str,
    surge: int,
    unavailable: int,
) -> None:
    reg = plane.registry
    strategy = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable},
    }
    generations: set[int] = set()

    def bounds(obs: Observer) -> None:
        active = obs.active_pods("web")
        ready = sum(1 for p in active if is_ready(p))
        sized = sum(
            rs["spec"]["replicas"]
            for rs in obs.replicasets.values()
            if rs["metadata"]["labels"].get("app") == "web"
        )
        generations.add(len({p["metadata"]["labels"][HASH_LABEL] for p in active}))
        assert len(active) <= replicas + surge, f"{len(active)} pods exceed maxSurge"
        assert sized <= replicas + surge, f"{sized} replicas in ReplicaSets exceed maxSurge"
        assert ready >= replicas - unavailable, f"only {ready} available"

    async with HollowNodes(plane):
        first = await deployed(reg, replicas=replicas, strategy=strategy)
        assert first["metadata"]["annotations"][REVISION] == "1"
        async with Observer(plane, bounds) as obs:
            await set_image(reg, "web", "nginx:1.26")
            d = await rolled_out(reg, "web")
    assert obs.events > 2 * replicas
    assert 2 in generations  # old and new pods served side by side: a rolling update

    live = await pods(reg, "web")
    assert len(live) == replicas and all(image(p) == "nginx:1.26" for p in live)
    revisions = by_revision(await replicasets(reg, "web"))
    old, new = revisions["1"], revisions["2"]
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == replicas
    h = new["metadata"]["labels"][HASH_LABEL]
    assert new["metadata"]["name"] == f"web-{h}"
    assert new["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: h}
    assert new["spec"]["template"]["metadata"]["labels"] == {"app": "web", HASH_LABEL: h}
    assert all(p["metadata"]["labels"][HASH_LABEL] == h for p in live)
    assert all(controller_ref(p)["uid"] == new["metadata"]["uid"] for p in live)  # type: ignore[index]
    assert HASH_LABEL not in d["spec"]["template"]["metadata"]["labels"]
    assert d["metadata"]["annotations"][REVISION] == "2"
    assert d["status"]["updatedReplicas"] == d["status"]["availableReplicas"] == replicas
    assert d["status"]["unavailableReplicas"] == 0
    assert condition(d, "Available")["reason"] == "MinimumReplicasAvailable"
    progressing = condition(d, "Progressing")
    assert progressing["reason"] == "NewReplicaSetAvailable"
    assert (
        progressing["message"]
        == f'ReplicaSet "{new["metadata"]["name"]}" has successfully progressed.'
    )
    messages = {e["message"] for e in await events(reg, "ScalingReplicaSet")}
    assert f"Scaled down replica set {old['metadata']['name']} to 0" in messages
    assert f"Scaled up replica set {new['metadata']['name']} to {replicas}" in messages


async def test_rollback_restores_the_previous_template(
    plane: ControlPlane, kubelet: HollowNodes, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = plane.registry
    await deployed(reg, image="nginx:1.25")
    first = (await replicasets(reg, "web"))[0]
    await set_image(reg, "web", "nginx:1.26")
    await rolled_out(reg, "web")
    capsys.readouterr()

    assert await cli(plane, "rollout", "undo", "deployment/web") == 0
    assert capsys.readouterr().out == "deployment.apps/web rolled back\n"
    d = await rolled_out(reg, "web")
    assert image(d) == "nginx:1.25"
    assert d["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    assert equal_ignore_hash(d["spec"]["template"], first["spec"]["template"])
    # The first ReplicaSet is the new one again, under a new revision.
    rss = await replicasets(reg, "web")
    assert len(rss) == 2
    again = by_revision(rss)["3"]
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
    assert again["metadata"]["annotations"][REVISION_HISTORY] == "1"
    assert again["spec"]["replicas"] == 3
    assert d["metadata"]["annotations"][REVISION] == "3"
    assert all(image(p) == "nginx:1.25" for p in await pods(reg, "web"))

    assert await cli(plane, "rollout", "history", "deployment/web") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "deployment.apps/web"
    assert [line.split()[0] for line in out[1:]] == ["REVISION", "2", "3"]

    assert await cli(plane, "rollout", "undo", "deployment", "web", "--to-revision=2") == 0
    d = await rolled_out(reg, "web")
    assert image(d) == "nginx:1.26"
    assert await cli(plane, "rollout", "undo", "deployment/web", "--to-revision=4") == 0
    assert (
        "skipped rollback (current template already matches revision 4)" in capsys.readouterr().out
    )
    with pytest.raises(OperationError, match="unable to find specified revision 9"):
        await cli(plane, "rollout", "undo", "deployment/web", "--to-revision=9")


async def test_rollout_restart_makes_a_new_replicaset(
    plane: ControlPlane, kubelet: HollowNodes, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = plane.registry
    await deployed(reg)
    before = {p["metadata"]["name"] for p in await pods(reg, "web")}

    assert await cli(plane, "rollout", "restart", "deployment/web") == 0
    assert capsys.readouterr().out == "deployment.apps/web restarted\n"
    d = await rolled_out(reg, "web")
    assert RESTARTED_AT in d["spec"]["template"]["metadata"]["annotations"]
    rss = by_revision(await replicasets(reg, "web"))
    assert set(rss) == {"1", "2"}
    assert rss["2"]["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    after = await pods(reg, "web")
    assert not before & {p["metadata"]["name"] for p in after}
    assert all(controller_ref(p)["uid"] == rss["2"]["metadata"]["uid"] for p in after)  # type: ignore[index]


async def test_recreate_removes_old_pods_before_new_ones(
    plane: ControlPlane, kubelet: HollowNodes
) -> None:
    reg = plane.registry
    await deployed(reg, replicas=4, strategy={"type": "Recreate"})
    (old,) = await replicasets(reg, "web")
    old_hash = old["metadata"]["labels"][HASH_LABEL]
    overlap: list[str] = []

    def one_generation(obs: Observer) -> None:
        hashes = {p["metadata"]["labels"].get(HASH_LABEL) for p in obs.pods.values()}
        if old_hash in hashes and len(hashes) > 1:
            overlap.append(f"old and new pods at once: {hashes}")
        sized = {
            rs["metadata"]["labels"][HASH_LABEL]
            for rs in obs.replicasets.values()
            if rs["spec"]["replicas"] > 0
        }
        assert len(sized) <= 1, f"two ReplicaSets sized at once: {sized}"

    async with Observer(plane, one_generation):
        await set_image(reg, "web", "nginx:1.26")
        await rolled_out(reg, "web")
    assert overlap == []
    messages = [e["message"] for e in await events(reg, "ScalingReplicaSet")]
    assert f"Scaled down replica set {old['metadata']['name']} to 0" in messages


async def test_revision_history_limit(plane: ControlPlane, kubelet: HollowNodes) -> None:
    reg = plane.registry
    await deployed(reg, replicas=2, revisionHistoryLimit=1)
    for n in range(2, 5):
        await set_image(reg, "web", f"nginx:1.{n}")
        await rolled_out(reg, "web")

    async def pruned() -> dict[str, Obj] | None:
        rss = by_revision(await replicasets(reg, "web"))
        return rss if len(rss) == 2 else None

    rss = await eventually(pruned, "old ReplicaSets beyond the limit to be deleted", within=10.0)
    assert set(rss) == {"3", "4"}
    assert rss["3"]["spec"]["replicas"] == 0


async def test_paused_deployment_scales_but_does_not_roll(
    plane: ControlPlane, kubelet: HollowNodes, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = plane.registry
    await deployed(reg)
    assert await cli(plane, "rollout", "pause", "deployment/web") == 0
    d = await set_image(reg, "web", "nginx:1.26")

    async def observed() -> Obj | None:
        d2 = await get(reg, DEPLOYMENT, "web")
        seen = d2["status"]["observedGeneration"] == d["metadata"]["generation"]
        return d2 if seen else None

    d = await eventually(observed, "the paused change to be observed", within=10.0)
    assert condition(d, "Progressing")["reason"] == "DeploymentPaused"
    assert len(await replicasets(reg, "web")) == 1

    def more(obj: Obj) -> None:
        obj["spec"]["replicas"] = 5

    await update(reg, DEPLOYMENT, "web", more)

    async def scaled() -> bool:
        (rs,) = await replicasets(reg, "web")
        return rs["spec"]["replicas"] == 5 and len(await pods(reg, "web")) == 5

    await eventually(scaled, "the paused deployment to scale", within=10.0)
    assert all(image(p) == "nginx:1.25" for p in await pods(reg, "web"))
    with pytest.raises(OperationError, match="paused"):
        await cli(plane, "rollout", "restart", "deployment/web")

    assert await cli(plane, "rollout", "resume", "deployment/web") == 0
    d = await rolled_out(reg, "web")
    assert len(await pods(reg, "web")) == 5
    assert all(image(p) == "nginx:1.26" for p in await pods(reg, "web"))
    assert "paused" in capsys.readouterr().out


async def test_scaling_mid_rollout_is_proportional(plane: ControlPlane) -> None:
    reg = plane.registry
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 0}}
    async with HollowNodes(plane, hold=lambda p: image(p) == "nginx:1.26") as kubelet:
        await deployed(reg, replicas=10, strategy=strategy)
        await set_image(reg, "web", "nginx:1.26")

        async def sizes(old: int, new: int) -> bool:
            rss = by_revision(await replicasets(reg, "web"))
            got = (
                rss.get("1", {}).get("spec", {}).get("replicas"),
                rss.get("2", {}).get("spec", {}).get("replicas"),
            )
            return got == (old, new)

        # The new pods never become ready, and maxUnavailable is 0: the rollout stalls.
        await eventually(lambda: sizes(10, 3), "the rollout to stall at 10 + 3", within=10.0)

        def bigger(obj: Obj) -> None:
            obj["spec"]["replicas"] = 20

        await update(reg, DEPLOYMENT, "web", bigger)
        # 23 allowed, 13 there: the 10 more go 10:3 (Kubernetes rounds 17.7 and 5.3).
        await eventually(lambda: sizes(18, 5), "proportional scaling to 18 + 5", within=10.0)
        await kubelet.release()
        await rolled_out(reg, "web")
    assert len(await pods(reg, "web")) == 20


async def test_progress_deadline_exceeded(
    plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = plane.registry
    async with HollowNodes(plane, hold=lambda p: image(p) == "nginx:1.26"):
        await deployed(reg, replicas=2, progressDeadlineSeconds=1)
        await set_image(reg, "web", "nginx:1.26")

        async def timed_out() -> Obj | None:
            d = await get(reg, DEPLOYMENT, "web")
            progressing = condition(d, "Progressing")
            return progressing if progressing["reason"] == "ProgressDeadlineExceeded" else None

        c = await eventually(timed_out, "the progress deadline to pass", within=6)
        assert c["status"] == "False"
        assert c["message"].endswith("has timed out progressing.")
        with pytest.raises(UsageError, match='deployment "web" exceeded its progress deadline'):
            await cli(plane, "rollout", "status", "deployment/web")


async def test_rollout_status_follows_the_rollout(
    plane: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = plane.registry
    async with HollowNodes(plane, hold=lambda p: True) as kubelet:
        await reg.create(DEPLOYMENT, NS, deployment(replicas=2))
        assert await cli(plane, "rollout", "status", "deployment/web", "--timeout=300ms") == 1
        assert "error: timed out waiting for the condition" in capsys.readouterr().err
        assert await cli(plane, "rollout", "status", "deployment/web", "--no-watch") == 0
        assert capsys.readouterr().out.startswith('Waiting for deployment "web" rollout to finish')

        status = asyncio.create_task(cli(plane, "rollout", "status", "deployment/web"))
        printed = ""

        async def waiting() -> bool:
            nonlocal printed
            printed += capsys.readouterr().out
            return "of 2 updated replicas are available..." in printed

        await eventually(waiting, "rollout status to report the wait", within=10.0)
        await kubelet.release()
        assert await asyncio.wait_for(status, 10) == 0
    printed += capsys.readouterr().out
    lines = printed.splitlines()
    assert (
        lines[0]
        == 'Waiting for deployment "web" rollout to finish: 0 of 2 updated replicas are available...'
    )
    assert lines[-1] == 'deployment "web" successfully rolled out'
    with pytest.raises(UsageError, match="rollout is not supported on pods"):
        await cli(plane, "rollout", "status", "pods/web")
