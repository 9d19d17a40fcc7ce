"""Fuzzing manifests: the decoder (control/objects/manifest.py) reads any
text into objects with an apiVersion and a kind, or refuses it with a
ManifestError; and `apply` (control/apply.py, as the CLI runs it) applies any
decoded object or refuses it with a 4xx ApiError, the store unchanged."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from control.apply import apply_one
from control.client import Client
from control.errors import ApiError
from control.objects.manifest import ManifestError, load_manifests
from tests.fuzz.fuzzing import JSON, YAML_SOUP, budget, mutated, ran
from tests.fuzz.seeds import seed, seeded
from tests.fuzz.served import Api

SEEDS = st.sampled_from([seed(rt) for rt in seeded()])


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Manifests as YAML or JSON: seeds mutated, lists of them, any values."""
    docs = draw(st.lists(st.one_of(SEEDS.flatmap(mutated), JSON), min_size=1, max_size=3))
    if draw(st.booleans()):
        docs = [
            {"apiVersion": "v1", "kind": draw(st.sampled_from(["List", "PodList"])), "items": docs}
        ]
    if draw(st.booleans()):
        return json.dumps(docs[0] if len(docs) == 1 else docs)
    return "---\n".join(yaml.safe_dump(d) for d in docs)


TEXTS = st.one_of(documents(), YAML_SOUP, st.text(max_size=80))


@budget(300)
@given(text=TEXTS)
@example(text="a: !!timestamp 2024-13-45")  # constructors' ValueErrors
@example(text="a: !!float x")
@example(text="!!timestamp")
@example(text="[" + "1" * 5000 + "]")  # past Python's digit limit, in JSON and YAML
def test_decoder(text: str) -> None:
    ran("test_decoder")
    try:
        objects = load_manifests(text, "fuzz.yaml")
    except ManifestError as e:
        assert str(e).startswith("fuzz.yaml"), e
        return
    for obj in objects:
        assert isinstance(obj, dict) and obj.get("apiVersion") and obj.get("kind"), obj


@budget(200)
@given(manifest=SEEDS.flatmap(mutated), namespace=st.sampled_from([None, "fuzz", "default"]))
@example(manifest={"apiVersion": "v1", "kind": "Namespace", "metadata": True}, namespace=None)
@example(  # past 64 bits: orjson cannot send it
    manifest={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": -(2**63) - 1}},
    namespace=None,
)
@example(  # a name that would name the seed's status subresource
    manifest={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "seed/status"}},
    namespace="fuzz",
)
async def test_apply(api: Api, manifest: Any, namespace: str | None) -> None:
    """What `apply` does with each object the decoder gives."""
    if not isinstance(manifest, dict) or not manifest.get("apiVersion") or not manifest.get("kind"):
        return  # the decoder refuses it
    ran("test_apply")
    before = await api.revision()
    async with Client(str(api.plane.socket_path)) as client:
        try:
            await apply_one(client, manifest, namespace)
        except ApiError as e:
            assert 400 <= e.code < 500, f"apply {manifest!r}: {e.code} {e.message}"
            assert await api.revision() == before, f"apply {manifest!r}: refused, but wrote"
