"""The requests discovery promises, built from the same discovery documents
the server answers with: every resource and subresource, by verb."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from control.api import discovery
from control.objects.kinds import ResourceType, by_path
from tests.fuzz.seeds import NAME, NAMESPACE


@dataclass(frozen=True)
class Resource:
    """One entry of a discovery resource list, where the fuzzers reach it."""

    root: str  # /api/v1, /apis/GROUP/VERSION
    group_version: str
    plural: str
    sub: str  # "" or the subresource
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    rt: ResourceType | None  # the stored kind, when it is one

    @property
    def collection(self) -> str:
        return (
            f"{self.root}/{'namespaces/' + NAMESPACE + '/' if self.namespaced else ''}{self.plural}"
        )

    @property
    def object(self) -> str:
        """The seed object's path, or its subresource's."""
        return f"{self.collection}/{NAME}{'/' + self.sub if self.sub else ''}"


def resources() -> Iterator[Resource]:
    roots = ["/api/v1"] + [
        f"/apis/{g['preferredVersion']['groupVersion']}" for g in _doc("/apis")["groups"]
    ]
    for root in roots:
        listing = _doc(root)
        group, _, version = listing["groupVersion"].rpartition("/")
        for r in listing["resources"]:
            plural, _, sub = r["name"].partition("/")
            yield Resource(
                root,
                listing["groupVersion"],
                plural,
                sub,
                r["kind"],
                r["namespaced"],
                tuple(r["verbs"]),
                by_path(group, version, plural),
            )


def _doc(path: str) -> Any:
    doc = discovery.document(path)
    assert doc is not None, path
    return doc
