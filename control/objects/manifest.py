"""Reading manifests: YAML or JSON, many documents per file, `kind: List` expanded."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from control.objects.decoding import YAMLBoundsError, load_json, yaml_documents

_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the source and document."""


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
        # JSON it cannot read (too deep, say) is read as YAML, whose errors say where.
        try:
            yield load_json(text)
            return
        except ValueError:
            pass
    index = 1
    try:
        for doc in yaml_documents(text):
            yield doc
            index += 1
    except YAMLBoundsError as exc:
        raise ManifestError(f"{source}: document {exc.document}: {yaml_problem(exc)}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: document {index}: {yaml_problem(exc)}") from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: where, then what (PyYAML's own text spans several)."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return " ".join(str(exc).split())
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return where + (exc.problem or exc.context or "invalid YAML")


def _check_type(doc: dict[str, Any], where: str) -> None:
    missing = [k for k in ("apiVersion", "kind") if not doc.get(k)]
    if missing:
        raise ManifestError(f"{where}: missing {' and '.join(missing)}")


def _is_list(doc: dict[str, Any]) -> bool:
    kind = doc.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list)
