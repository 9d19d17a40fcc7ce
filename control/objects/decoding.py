"""The one decoder of untrusted JSON and YAML: request bodies and manifests.

What a small input may cost is bounded. Nesting deeper than MAX_DEPTH levels
is refused (orjson reads 1,024 levels but writes only 254, and Python's
recursion limit is near 1,000; Kubernetes' objects need about 20). YAML is
checked on its parse events, before a node is composed, so a deep or
alias-laden document costs one pass of the C parser: aliases may add at most
MAX_ALIAS_NODES nodes to a document (a "billion laughs" of 475 bytes would
expand to millions). YAML timestamps stay strings, as Kubernetes' YAML
decoder keeps them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    ScalarEvent,
)

MAX_DEPTH = 100
MAX_ALIAS_NODES = 10_000


class DecodeError(ValueError):
    """JSON beyond the decoder's bounds."""


class YAMLBoundsError(yaml.MarkedYAMLError):
    """YAML beyond the decoder's bounds, in document number `document` (from 1)."""

    def __init__(self, problem: str, mark: Any, document: int) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.document = document


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader that keeps timestamps as strings, as Kubernetes' YAML decoder
    does, and fails only with YAMLError."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:
            # PyYAML's scalar constructors fail with whatever their parsing
            # raises on bad explicit tags (`!!int`, `!!float x`, `!!timestamp`,
            # `!!timestamp 2024-13-45`) and on too many digits.
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this {node.tag} value: {exc}", node.start_mark
            ) from None


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _int64(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """An integer the JSON encoder can write: int64, or uint64 (orjson's range)."""
    value = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    if not -(2**63) <= value < 2**64:
        raise yaml.constructor.ConstructorError(
            None, None, f"integer {node.value} is out of the 64-bit range", node.start_mark
        )
    return value


_Loader.add_constructor("tag:yaml.org,2002:int", _int64)

TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"


def load_json(text: bytes | str) -> Any:
    """One JSON value. Raises ValueError (orjson.JSONDecodeError, DecodeError)."""
    value = orjson.loads(text)
    # Depth needs as many opening brackets: most bodies are spared the walk.
    raw = text if isinstance(text, bytes) else text.encode()
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise DecodeError(TOO_DEEP)
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests containers more than `limit` deep, level by level
    (no recursion)."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        level = [
            child
            for v in level
            for child in (v.values() if isinstance(v, dict) else v)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def load_yaml(text: bytes | str) -> Any:
    """One YAML document. Raises yaml.YAMLError (YAMLBoundsError beyond the bounds)."""
    check_yaml(text)
    return yaml.load(text, Loader=_Loader)


def yaml_documents(text: bytes | str) -> Iterator[Any]:
    """Every document of a YAML stream. Raises yaml.YAMLError (YAMLBoundsError
    beyond the bounds, before any document is given)."""
    check_yaml(text)
    yield from yaml.load_all(text, Loader=_Loader)


def check_yaml(text: bytes | str) -> None:
    """Refuse a stream nested deeper than MAX_DEPTH, or a document whose
    aliases stand for more than MAX_ALIAS_NODES nodes, from its parse events."""
    document = 0
    expanded = 0
    anchored: dict[str, int] = {}  # anchor -> the nodes it stands for
    open_nodes: list[list[Any]] = []  # [anchor, nodes so far] of each open collection
    for event in _events(text):
        nodes = 0
        if isinstance(event, ScalarEvent):
            nodes = 1
            if event.anchor:
                anchored[event.anchor] = 1
        elif isinstance(event, CollectionStartEvent):
            if len(open_nodes) >= MAX_DEPTH:
                raise YAMLBoundsError(TOO_DEEP, event.start_mark, document)
            open_nodes.append([event.anchor, 1])
        elif isinstance(event, CollectionEndEvent):
            anchor, nodes = open_nodes.pop()
            if anchor:
                anchored[anchor] = nodes
        elif isinstance(event, AliasEvent):
            nodes = anchored.get(event.anchor or "", 1)
            expanded += nodes
            if expanded > MAX_ALIAS_NODES:
                why = f"aliases expand to more than {MAX_ALIAS_NODES} nodes"
                raise YAMLBoundsError(why, event.start_mark, document)
        elif isinstance(event, DocumentStartEvent):
            document += 1
            expanded = 0
            anchored.clear()
        if nodes and open_nodes:
            open_nodes[-1][1] += nodes


def _events(text: bytes | str) -> Iterator[yaml.Event]:
    """The parse events up to the first syntax error, if any: loading meets
    it at the same place, and says which document it is in."""
    try:
        yield from yaml.parse(text, Loader=_Loader)
    except yaml.YAMLError:
        return
