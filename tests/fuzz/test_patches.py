"""Fuzzing the three patchers of control/api/patch.py as units: any target
and any patch give a result or a PatchError, and neither input changes."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from control.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from tests.fuzz.fuzzing import JSON, JSON_OBJECTS, KEYS, budget, mutated, paths, ran
from tests.fuzz.seeds import seed, seeded

SEEDS = st.sampled_from([seed(rt) for rt in seeded()])
TARGETS = st.one_of(SEEDS, JSON_OBJECTS, JSON)

_SEGMENTS = st.one_of(KEYS, st.sampled_from(["0", "1", "-", "01", "~0", "~1", "~", "~2", "9"]))
POINTERS = st.one_of(
    st.lists(_SEGMENTS, max_size=4).map(lambda parts: "".join("/" + p for p in parts)),
    st.sampled_from(
        ["", "/", "/metadata/labels", "/spec/containers/0", "/spec/containers/-", "a/b"]
    ),
    JSON,
)
_OPS = st.sampled_from(["add", "remove", "replace", "move", "copy", "test"])


@st.composite
def operations(draw: st.DrawFn, target: Any = None) -> Any:
    """A JSON patch operation, well formed or nearly; its paths now and then
    those of `target`."""
    pointers = POINTERS
    if target is not None:
        pointers = st.one_of(st.sampled_from(pointers_into(target)), POINTERS)
    op: dict[str, Any] = {
        "op": draw(st.integers(0, 9).flatmap(lambda i: JSON if i == 9 else _OPS)),
        "path": draw(pointers),
    }
    if draw(st.booleans()):
        op["value"] = draw(JSON)
    if draw(st.booleans()):
        op["from"] = draw(pointers)
    if draw(st.integers(0, 9)) == 0:
        del op[draw(st.sampled_from(sorted(op)))]
    return op


def pointers_into(value: Any) -> list[str]:
    """The JSON pointer of every value in `value`."""
    return [
        "".join("/" + str(step).replace("~", "~0").replace("/", "~1") for step in path)
        for path in paths(value)
    ]


JSON_PATCHES = st.one_of(
    TARGETS.flatmap(lambda t: st.lists(operations(t), max_size=5)),
    st.lists(operations(), max_size=5),
    JSON,
)
# Strategic merge patches: a seed changed (so lists meet their merge keys), or any object.
STRATEGIC_PATCHES = st.one_of(SEEDS.flatmap(mutated), JSON_OBJECTS, JSON)


def _apply(patcher: Any, target: Any, patch: Any) -> None:
    before = copy.deepcopy((target, patch))
    try:
        patcher(target, patch)
    except PatchError:
        pass
    assert (target, patch) == before, "the patcher changed its inputs"


@budget(150)
@given(target=TARGETS, patch=st.one_of(STRATEGIC_PATCHES, JSON))
def test_merge_patch(target: Any, patch: Any) -> None:
    ran("test_merge_patch")
    _apply(merge_patch, target, patch)
    _apply(lambda t, p: merge_patch(t, p, share=True), target, patch)


@budget(250)
@given(target=TARGETS, patch=JSON_PATCHES)
@example(target={}, patch=[{"op": [], "path": ""}])  # an op that cannot be hashed
def test_json_patch(target: Any, patch: Any) -> None:
    ran("test_json_patch")
    _apply(json_patch, target, patch)


@budget(250)
@given(target=TARGETS, patch=STRATEGIC_PATCHES)
def test_strategic_merge_patch(target: Any, patch: Any) -> None:
    ran("test_strategic_merge_patch")
    _apply(strategic_merge_patch, target, patch)
