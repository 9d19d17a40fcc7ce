"""The Deployment controller's pure parts, against Kubernetes' documented semantics:
replica arithmetic, proportional scaling, revisions and the pod template hash."""

from __future__ import annotations

from typing import Any

import pytest

from control.controllers.deployment.annotations import (
    MAX_REVISION_HISTORY_CHARS,
    next_revision,
    set_new_rs_annotations,
)
from control.controllers.deployment.replicas import (
    max_surge,
    max_unavailable,
    new_rs_replicas,
    proportional_sizes,
    resolve_fenceposts,
    scaled_value,
)
from control.controllers.deployment.templatehash import fnv1a_32, pod_template_hash
from control.objects.revisions import (
    DESIRED_REPLICAS,
    LAST_APPLIED,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
)
from tests.controllers.helpers import deployment

Obj = dict[str, Any]


def rolling(replicas: int, surge: int | str = "25%", unavailable: int | str = "25%") -> Obj:
    strategy = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
    }
    return deployment(replicas=replicas, strategy=strategy)


def recreate(replicas: int) -> Obj:
    return deployment(replicas=replicas, strategy={"type": "Recreate"})


def rs(
    name: str,
    replicas: int,
    *,
    created: str = "2024-01-01T00:00:00Z",
    revision: str | None = None,
    **annotations: str,
) -> Obj:
    ann = dict(annotations)
    if revision is not None:
        ann[REVISION] = revision
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": created,
            "annotations": ann,
        },
        "spec": {"replicas": replicas},
    }


def sizes(result: list[tuple[Obj, int]]) -> list[tuple[str, int]]:
    return [(r["metadata"]["name"], size) for r, size in result]


# -- int-or-percent and the fenceposts -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "total", "up", "down"),
    [
        (3, 10, 3, 3),  # an int is taken as is, whatever the total
        ("25%", 10, 3, 2),  # 2.5
        ("33%", 3, 1, 0),  # 0.99
        ("50%", 4, 2, 2),  # exact
        ("100%", 7, 7, 7),
        ("0%", 7, 0, 0),
        ("25%", 0, 0, 0),
    ],
)
def test_scaled_value_rounds_a_percent(value: int | str, total: int, up: int, down: int) -> None:
    assert scaled_value(value, total, round_up=True) == up
    assert scaled_value(value, total, round_up=False) == down


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),
        ("25%", "25%", 1, (1, 0)),
        ("0%", "10%", 5, (0, 1)),  # rounded down to zero: at least one may be unavailable
        (0, 0, 0, (0, 1)),
        (2, "100%", 4, (2, 4)),
    ],
)
def test_resolve_fenceposts(
    surge: int | str, unavailable: int | str, desired: int, expected: tuple[int, int]
) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


def test_resolve_fenceposts_keeps_a_zero_that_is_not_both() -> None:
    assert resolve_fenceposts(0, "25%", 10) == (0, 2)
    assert resolve_fenceposts("25%", 0, 10) == (3, 0)


def test_max_surge_and_unavailable_of_a_rolling_update() -> None:
    d = rolling(10)
    assert (max_surge(d), max_unavailable(d)) == (3, 2)
    assert (max_surge(rolling(10, 4, 1)), max_unavailable(rolling(10, 4, 1))) == (4, 1)


def test_rolling_update_is_the_default_strategy_with_25_percent() -> None:
    d = deployment(replicas=10)
    assert "strategy" not in d["spec"]
    assert (max_surge(d), max_unavailable(d)) == (3, 2)


def test_recreate_has_no_surge_and_no_unavailability_budget() -> None:
    assert (max_surge(recreate(10)), max_unavailable(recreate(10))) == (0, 0)


def test_max_unavailable_is_capped_at_the_replicas() -> None:
    assert max_unavailable(rolling(3, 1, 5)) == 3
    assert max_unavailable(rolling(3, 1, "200%")) == 3


def test_zero_replicas_have_no_unavailability_budget() -> None:
    # Both fenceposts round to zero, so unavailable resolves to 1; with no replicas it is 0.
    assert (max_surge(rolling(0)), max_unavailable(rolling(0))) == (0, 0)
    assert (max_surge(rolling(0, 2, 1)), max_unavailable(rolling(0, 2, 1))) == (2, 0)


def test_unset_replicas_count_as_one() -> None:
    d = rolling(1)
    del d["spec"]["replicas"]
    assert (max_surge(d), max_unavailable(d)) == (1, 0)


# -- how far the new ReplicaSet may grow (NewRSNewReplicas) ---------------------------


def test_recreate_sizes_the_new_replicaset_at_once() -> None:
    assert new_rs_replicas(recreate(5), 0, 5) == 5


def test_new_replicaset_grows_into_the_surge() -> None:
    d = rolling(10, 3, 2)  # at most 13 pods
    assert new_rs_replicas(d, 0, 10) == 3
    assert new_rs_replicas(d, 3, 11) == 5


def test_new_replicaset_waits_when_the_surge_is_used() -> None:
    d = rolling(10, 3, 2)
    assert new_rs_replicas(d, 3, 13) == 3
    assert new_rs_replicas(d, 3, 15) == 3  # above the bound (pods still going): no growth


def test_new_replicaset_never_grows_past_the_replicas() -> None:
    assert new_rs_replicas(rolling(10, 3, 2), 8, 9) == 10


# -- proportional scaling ---------------------------------------------------------------


def test_proportional_scaling_as_the_kubernetes_documentation_shows_it() -> None:
    # 10 replicas, maxSurge 3, mid-rollout with 8 old and 5 new, scaled to 15:
    # "3 replicas are added to the old ReplicaSet and 2 replicas are added to the new".
    d = rolling(15, 3, 2)
    old = rs("old", 8, created="2024-01-01T00:00:00Z", **{MAX_REPLICAS: "13"})
    new = rs("new", 5, created="2024-01-02T00:00:00Z", **{MAX_REPLICAS: "13"})
    assert sizes(proportional_sizes(d, [old, new])) == [("old", 11), ("new", 7)]


def test_proportional_scaling_down() -> None:
    d = rolling(5, 3, 2)  # from 10: at most 8 pods now
    old = rs("old", 8, created="2024-01-01T00:00:00Z", **{MAX_REPLICAS: "13"})
    new = rs("new", 5, created="2024-01-02T00:00:00Z", **{MAX_REPLICAS: "13"})
    assert sizes(proportional_sizes(d, [new, old])) == [("old", 5), ("new", 3)]


def test_proportional_scaling_to_zero_empties_every_replicaset() -> None:
    d = rolling(0, 3, 2)
    old = rs("old", 8, **{MAX_REPLICAS: "13"})
    new = rs("new", 5, created="2024-01-02T00:00:00Z", **{MAX_REPLICAS: "13"})
    assert sorted(sizes(proportional_sizes(d, [old, new]))) == [("new", 0), ("old", 0)]


def test_the_largest_replicaset_takes_what_rounding_left() -> None:
    d = rolling(11, 0, 1)  # from 10, without surge
    rss = [
        rs("a", 3, created="2024-01-01T00:00:00Z", **{MAX_REPLICAS: "10"}),
        rs("b", 4, created="2024-01-02T00:00:00Z", **{MAX_REPLICAS: "10"}),
        rs("c", 3, created="2024-01-03T00:00:00Z", **{MAX_REPLICAS: "10"}),
    ]
    # Each share rounds to zero; the one replica goes to the largest.
    assert sizes(proportional_sizes(d, rss)) == [("b", 5), ("c", 3), ("a", 3)]


def test_equal_sizes_grow_newest_first_and_shrink_oldest_first() -> None:
    older = rs("older", 5, created="2024-01-01T00:00:00Z", **{MAX_REPLICAS: "10"})
    newer = rs("newer", 5, created="2024-01-02T00:00:00Z", **{MAX_REPLICAS: "10"})
    grown = proportional_sizes(rolling(11, 0, 1), [older, newer])
    assert sizes(grown) == [("newer", 6), ("older", 5)]
    shrunk = proportional_sizes(rolling(9, 0, 1), [newer, older])
    assert sizes(shrunk) == [("older", 4), ("newer", 5)]


def test_proportional_scaling_without_the_annotation_uses_the_status() -> None:
    d = rolling(15, 3, 2)
    d["status"] = {"replicas": 13}
    old = rs("old", 8, created="2024-01-01T00:00:00Z")
    new = rs("new", 5, created="2024-01-02T00:00:00Z")
    assert sizes(proportional_sizes(d, [old, new])) == [("old", 11), ("new", 7)]


def test_no_change_when_the_replicasets_fill_the_bound() -> None:
    d = rolling(10, 3, 2)
    old = rs("old", 8, **{MAX_REPLICAS: "13"})
    new = rs("new", 5, created="2024-01-02T00:00:00Z", **{MAX_REPLICAS: "13"})
    assert sizes(proportional_sizes(d, [old, new])) == [("old", 8), ("new", 5)]


# -- revisions ---------------------------------------------------------------------------


def test_the_first_revision_is_one() -> None:
    assert next_revision([]) == 1


def test_the_next_revision_is_one_above_the_highest() -> None:
    olds = [rs("a", 0, revision="1"), rs("b", 0, revision="7"), rs("c", 0, revision="3")]
    assert next_revision(olds) == 8


def test_a_revision_that_is_not_a_number_is_skipped() -> None:
    assert next_revision([rs("a", 0, revision="two"), rs("b", 0, revision="2")]) == 3
    assert next_revision([rs("a", 0, revision="two"), rs("b", 0)]) == 1


def test_a_new_replicaset_gets_the_revision_and_the_replica_annotations() -> None:
    d = rolling(10, 3, 2)
    d["metadata"]["annotations"] = {
        "team": "web",
        LAST_APPLIED: "{}",
        REVISION: "4",
    }
    new = rs("new", 0)
    assert set_new_rs_annotations(d, new, 5, exists=False)
    assert new["metadata"]["annotations"] == {
        "team": "web",  # copied from the Deployment
        REVISION: "5",
        DESIRED_REPLICAS: "10",
        MAX_REPLICAS: "13",
    }


def test_a_rollback_raises_the_revision_and_keeps_the_old_one_in_the_history() -> None:
    back = rs("back", 0, revision="2", **{REVISION_HISTORY: "1"})
    assert set_new_rs_annotations(rolling(3), back, 5, exists=True)
    ann = back["metadata"]["annotations"]
    assert (ann[REVISION], ann[REVISION_HISTORY]) == ("5", "1,2")


def test_a_revision_is_never_lowered() -> None:
    current = rs("current", 3, revision="6")
    assert not set_new_rs_annotations(rolling(3), current, 4, exists=True)
    assert current["metadata"]["annotations"] == {REVISION: "6"}


def test_the_revision_history_drops_its_oldest_entries_past_its_size() -> None:
    long = ",".join(str(n) for n in range(1000, 1000 + MAX_REVISION_HISTORY_CHARS // 5 + 1))
    back = rs("back", 0, revision="9999", **{REVISION_HISTORY: long})
    set_new_rs_annotations(rolling(3), back, 10000, exists=True)
    history = back["metadata"]["annotations"][REVISION_HISTORY]
    assert len(history) <= MAX_REVISION_HISTORY_CHARS
    assert history.endswith(",9999") and not history.startswith("1000,")


# -- the pod template hash ---------------------------------------------------------------


def test_pod_template_hash_is_stable_and_short() -> None:
    t1 = deployment()["spec"]["template"]
    t2 = deployment(image="nginx:1.26")["spec"]["template"]
    h = pod_template_hash(t1)
    assert h == pod_template_hash(dict(reversed(list(t1.items()))))  # key order does not matter
    assert h != pod_template_hash(t2)
    assert h != pod_template_hash(t1, 1)  # a collision count gives another name
    assert 1 <= len(h) <= 10 and not set(h) & set("aeiou")


def test_fnv1a_32_matches_the_reference_vectors() -> None:
    assert fnv1a_32(b"") == 0x811C9DC5
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968


def test_pod_template_hash_spells_decimal_digits_in_the_safe_alphabet() -> None:
    # Kubernetes' hashes (e.g. "66b6c48dd5") only use the letters digits map to.
    for image in ("nginx:1.25", "nginx:1.26", "redis:7"):
        h = pod_template_hash(deployment(image=image)["spec"]["template"])
        assert set(h) <= set("456789bcdf")


def test_pod_template_hash_does_not_change_between_releases() -> None:
    # ReplicaSet names carry it: a different hash for the same template would
    # make every Deployment roll out again after an upgrade.
    assert pod_template_hash({}) == "5859f96865"
    assert pod_template_hash({}, 0) == "7b58f74dd9"


def test_a_collision_count_of_zero_is_not_no_collision_count() -> None:
    t = deployment()["spec"]["template"]
    assert pod_template_hash(t, 0) != pod_template_hash(t)
    assert pod_template_hash(t, 1) != pod_template_hash(t, 2)
