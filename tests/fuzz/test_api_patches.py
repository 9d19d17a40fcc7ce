"""Fuzzing PATCH through the API: merge, JSON and strategic merge patches of
every resource and subresource discovery lists with `patch`. Each is
applied, or refused with a 4xx Status and the store unchanged; a dry run
never writes."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.fuzzing import JSON, JSON_OBJECTS, budget, dumps, mutated, ran
from tests.fuzz.seeds import seed
from tests.fuzz.served import Api, check_answer, check_refusal_wrote_nothing
from tests.fuzz.targets import Resource, resources
from tests.fuzz.test_patches import operations

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"

PATCHABLE = [r for r in resources() if "patch" in r.verbs]
_IDENTITY = ("name", "namespace", "uid")


def _seed_of(r: Resource) -> dict[str, Any]:
    """What the object at `r` holds, less its name and namespace."""
    if r.sub == "scale":
        return {"spec": {"replicas": 2}}
    assert r.rt is not None, r
    obj = seed(r.rt)
    obj["metadata"] = {k: v for k, v in obj["metadata"].items() if k not in _IDENTITY}
    return obj


@st.composite
def patches(draw: st.DrawFn) -> tuple[str, str, Any, bool]:
    """(path, content type, patch, dry run)."""
    r = draw(st.sampled_from(PATCHABLE))
    content_type = draw(st.sampled_from([MERGE, JSON_PATCH, STRATEGIC]))
    if content_type == JSON_PATCH:
        ops = st.lists(operations(_seed_of(r)), min_size=1, max_size=4)
        patch = draw(st.integers(0, 9).flatmap(lambda i: JSON if i == 9 else ops))
    else:
        objects = st.one_of(mutated(_seed_of(r)), JSON_OBJECTS)
        patch = draw(st.integers(0, 9).flatmap(lambda i: JSON if i == 9 else objects))
    return r.object, content_type, patch, draw(st.integers(0, 3)) == 0


@budget(450)
@given(case=patches())
@example(case=("/api/v1/namespaces/fuzz/pods/seed", JSON_PATCH, [{"op": {}, "path": ""}], False))
async def test_patches(api: Api, case: tuple[str, str, Any, bool]) -> None:
    path, content_type, patch, dry_run = case
    ran("test_patches")
    what = f"PATCH {path} {content_type} dryRun={dry_run}: {patch!r}"
    before = await api.revision()
    answer = await api.request(
        "PATCH",
        path,
        body=dumps(patch),
        content_type=content_type,
        query={"dryRun": "All"} if dry_run else None,
    )
    check_answer(answer, what)
    await check_refusal_wrote_nothing(api, before, answer, what, dry_run=dry_run)
