"""Fuzzing query strings: lists and watches (label and field selectors,
resourceVersion and its match, limit and continue, watch parameters, Table
answers), deletes (gracePeriodSeconds, dryRun, propagationPolicy,
orphanDependents, with and without a DeleteOptions body) and the writes'
options (dryRun, fieldValidation). Each request is answered, or refused with
a 4xx Status and the store unchanged.

One 5xx is Kubernetes' own answer and allowed: 504 "Too large resource
version" for a resourceVersion the store has not reached.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.fuzzing import TEXT, budget, dumps, ran
from tests.fuzz.seeds import NAMESPACE, seed, seeded
from tests.fuzz.served import Api, check_answer, check_refusal_wrote_nothing, too_large_rv
from tests.fuzz.targets import Resource, resources

_RV_LIMIT = 2**64
_GRACE_LIMIT = 2**64

INTS = st.one_of(st.integers(-5, 60), st.integers(-_RV_LIMIT, _RV_LIMIT - 1)).map(str)
BOOLS = st.sampled_from(["true", "false", "1", "0", "t", "True", "FALSE", "yes", ""])

_LABEL_SELECTORS = st.one_of(
    st.sampled_from(
        [
            "app=web",
            "app==web",
            "app!=web",
            "app",
            "!app",
            "app in (web,db)",
            "app notin (web)",
            "app in ()",
            "app in (web",
            "a=b,c!=d",
            "example.com/app=web",
            "=web",
            "app=",
            "app=web,",
            "x" * 70 + "=y",
            "app>1",
            "app gt 1",
        ]
    ),
    TEXT,
)
_FIELD_SELECTORS = st.one_of(
    st.sampled_from(
        [
            "metadata.name=seed",
            "metadata.namespace!=fuzz",
            "metadata.name==seed,metadata.namespace=fuzz",
            "spec.nodeName=",
            "status.phase=Running",
            "involvedObject.name=p",
            "type=Normal",
            "spec.unschedulable=false",
            "metadata.name",
            "metadata.name in (a)",
            "=x",
        ]
    ),
    TEXT,
)
_TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def _params(names: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Some of `names`' parameters (one now and then twice), and now and then one unknown."""
    pair = st.sampled_from(sorted(names)).flatmap(lambda n: st.tuples(st.just(n), names[n]))
    return st.lists(st.one_of(pair, st.tuples(TEXT, TEXT)), max_size=6)


LIST_PARAMS = _params(
    {
        "labelSelector": _LABEL_SELECTORS,
        "fieldSelector": _FIELD_SELECTORS,
        "resourceVersion": st.one_of(INTS, TEXT),
        "resourceVersionMatch": st.one_of(st.sampled_from(["Exact", "NotOlderThan"]), TEXT),
        "limit": st.one_of(INTS, TEXT),
        "continue": st.one_of(TEXT, st.binary(max_size=24).map(lambda b: b.hex())),
        "watch": BOOLS,
        "allowWatchBookmarks": BOOLS,
        "sendInitialEvents": BOOLS,
        "timeoutSeconds": st.one_of(INTS, TEXT),
        "includeObject": st.one_of(st.sampled_from(["None", "Object", "Metadata"]), TEXT),
    }
)
# Stored kinds (metrics come from the node agents, which this server has not).
LISTABLE = [r for r in resources() if "list" in r.verbs and not r.sub and r.rt is not None]


@budget(250)
@given(
    r=st.sampled_from(LISTABLE),
    everywhere=st.booleans(),
    query=LIST_PARAMS,
    table=st.booleans(),
)
async def test_lists_and_watches(
    api: Api, r: Any, everywhere: bool, query: list[tuple[str, str]], table: bool
) -> None:
    ran("test_lists_and_watches")
    path = f"{r.root}/{r.plural}" if everywhere else r.collection
    what = f"GET {path} {query}"
    before = await api.revision()
    answer = await api.request(
        "GET",
        path,
        query=query,
        headers={"Accept": _TABLE} if table else None,
        stream=True,
    )
    if not too_large_rv(answer):
        check_answer(answer, what)
    await check_refusal_wrote_nothing(api, before, answer, what, dry_run=True)


_PROPAGATION = st.one_of(st.sampled_from(["Foreground", "Background", "Orphan"]), TEXT)
_DRY_RUN = st.one_of(st.just("All"), TEXT)
DELETE_PARAMS = _params(
    {
        "gracePeriodSeconds": st.one_of(
            st.integers(-5, 60).map(str), st.integers(-_GRACE_LIMIT, _GRACE_LIMIT).map(str), TEXT
        ),
        "dryRun": _DRY_RUN,
        "propagationPolicy": _PROPAGATION,
        "orphanDependents": BOOLS,
        "labelSelector": _LABEL_SELECTORS,
        "fieldSelector": _FIELD_SELECTORS,
    }
)
# DeleteOptions bodies with fields of the right types (wrong types: test_known_classes.py).
DELETE_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["DeleteOptions", "Status"]),
        "apiVersion": st.sampled_from(["v1", "meta.k8s.io/v1"]),
        "gracePeriodSeconds": st.integers(0, 2**31),
        "propagationPolicy": _PROPAGATION,
        "orphanDependents": st.booleans(),
        "dryRun": st.lists(_DRY_RUN, max_size=2),
        "preconditions": st.fixed_dictionaries(
            {}, optional={"uid": TEXT, "resourceVersion": st.one_of(INTS, TEXT)}
        ),
    },
)
DELETABLE = [r for r in resources() if "delete" in r.verbs or "deletecollection" in r.verbs]


async def _restore_seeds(api: Api) -> None:
    """Put back the seeds an accepted delete removed."""
    for rt in seeded():
        answer = await api.send_json("POST", rt.base_path(NAMESPACE), seed(rt))
        assert answer.status in (201, 409), answer


@budget(250)
@given(
    r=st.sampled_from(DELETABLE),
    collection=st.booleans(),
    query=DELETE_PARAMS,
    body=st.one_of(st.none(), DELETE_BODIES),
)
async def test_deletes(
    api: Api, r: Any, collection: bool, query: list[tuple[str, str]], body: Any
) -> None:
    ran("test_deletes")
    path = r.collection if collection else r.object
    what = f"DELETE {path} {query} {body}"
    before = await api.revision()
    answer = await api.request(
        "DELETE", path, query=query, body=None if body is None else dumps(body)
    )
    check_answer(answer, what)
    await check_refusal_wrote_nothing(api, before, answer, what)
    if answer.status < 400:
        await _restore_seeds(api)


WRITE_PARAMS = _params(
    {
        "dryRun": _DRY_RUN,
        "fieldValidation": st.one_of(st.sampled_from(["Strict", "Warn", "Ignore"]), TEXT),
        "fieldManager": TEXT,
        "pretty": BOOLS,
    }
)
WRITABLE = [r for r in resources() if r.rt is not None and not r.sub and "create" in r.verbs]


@budget(150)
@given(
    call=st.tuples(st.sampled_from(WRITABLE), st.sampled_from(["POST", "PUT", "PATCH"])),
    query=WRITE_PARAMS,
    extra=st.booleans(),
)
async def test_write_options(
    api: Api, call: tuple[Resource, str], query: list[tuple[str, str]], extra: bool
) -> None:
    """A valid body (with an unknown field when `extra`) under any write options."""
    r, method = call
    ran("test_write_options")
    assert r.rt is not None
    obj = seed(r.rt, None if method == "POST" else "seed")
    if extra:
        obj["unknownField"] = 1
    path = r.collection if method == "POST" else r.object
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    what = f"{method} {path} {query}"
    before = await api.revision()
    answer = await api.request(
        method, path, query=query, body=dumps(obj), content_type=content_type
    )
    check_answer(answer, what)
    dry_run = "dryRun" in dict(query)
    await check_refusal_wrote_nothing(api, before, answer, what, dry_run=dry_run)
