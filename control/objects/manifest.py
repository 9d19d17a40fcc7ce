"""Reading manifests: YAML or JSON, many documents per file, `kind: List` expanded."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the source and document."""


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


def load_yaml(text: str | bytes) -> Any:
    """One YAML document as Kubernetes reads it (timestamps stay strings);
    anything it cannot read is a yaml.YAMLError."""
    return yaml.load(text, Loader=_Loader)


def load_manifests(text: str, source: str = "-") -> list[dict[str, Any]]:
    """Parse every object in `text`. Empty documents are skipped; Lists are expanded."""
    objects: list[dict[str, Any]] = []
    for index, doc in enumerate(_documents(text, source), start=1):
        if doc is None:
            continue
        where = f"{source}: document {index}"
        if not isinstance(doc, dict):
            raise ManifestError(f"{where}: not a mapping")
        _check_type(doc, where)
        if _is_list(doc):
            for i, item in enumerate(doc.get("items") or []):
                at = f"{where}: items[{i}]"
                if not isinstance(item, dict):
                    raise ManifestError(f"{at}: not a mapping")
                _check_type(item, at)
                objects.append(item)
        else:
            objects.append(doc)
    return objects


def load_paths(paths: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Objects from files, directories (their *.yaml, *.yml and *.json files, sorted,
    not recursive) and `-` for stdin, each with the file it came from."""
    out: list[tuple[str, dict[str, Any]]] = []
    for arg in paths:
        if arg == "-":
            out += [("-", obj) for obj in load_manifests(sys.stdin.read(), "-")]
            continue
        path = Path(arg)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        elif path.exists():
            files = [path]
        else:
            raise ManifestError(f"{arg}: no such file or directory")
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ManifestError(f"{file}: {exc}") from None
            out += [(str(file), obj) for obj in load_manifests(text, str(file))]
    return out


def _documents(text: str, source: str) -> Iterator[Any]:
    if text.lstrip().startswith(("{", "[")):
        # JSON is YAML, but PyYAML rejects tab indentation, which JSON allows.
        try:
            yield json.loads(text)
            return
        except ValueError:  # not JSON, or a number past Python's digit limit
            pass
    index = 1
    try:
        for doc in yaml.load_all(text, Loader=_Loader):
            yield doc
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        raise ManifestError(f"{source}: document {index}: {where}{what}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: document {index}: {exc}") from None


def _check_type(doc: dict[str, Any], where: str) -> None:
    missing = [k for k in ("apiVersion", "kind") if not doc.get(k)]
    if missing:
        raise ManifestError(f"{where}: missing {' and '.join(missing)}")


def _is_list(doc: dict[str, Any]) -> bool:
    kind = doc.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list)
