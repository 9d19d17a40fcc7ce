"""`fieldValidation`: what a write does with unknown and duplicate fields.

As kube-apiserver: `Strict` refuses the write (400, naming each field),
`Warn` accepts it with one `Warning: 299` header per field, `Ignore` says
nothing. A write that does not ask keeps the fields silently, as pilothouse
always has (its models keep what they do not model).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from control import errors
from control.api.bodies import YAML, read_body
from control.objects.admission import MODELS
from control.objects.kinds import ResourceType
from control.objects.unknownfields import unknown_fields

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
_DIRECTIVES = (IGNORE, STRICT, WARN)
_MERGE_PATCHES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


def directive(request: web.Request) -> str | None:
    """The request's fieldValidation, or None when it names none."""
    value = request.query.get("fieldValidation")
    if not value:
        return None
    if value not in _DIRECTIVES:
        supported = ", ".join(f'"{d}"' for d in _DIRECTIVES)
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{value}": supported values: {supported}'
        )
    return value


async def check_fields(request: web.Request, rt: ResourceType, *, patch: bool = False) -> list[str]:
    """Check a create, update or patch body's fields as its fieldValidation
    asks; the Warning headers to answer with (400 on Strict)."""
    asked = directive(request)
    if asked is None or asked == IGNORE:
        return []
    content_type, raw = await read_body(request)
    if patch and content_type not in _MERGE_PATCHES:
        return []  # a JSON patch names operations, not fields
    try:
        data = _parse(content_type, raw)
    except ValueError:
        return []  # the write itself answers a body that does not parse
    duplicates: list[str] = []
    _collect(data, "", duplicates)
    problems = [f'duplicate field "{p}"' for p in duplicates]
    problems += [f'unknown field "{p}"' for p in unknown_fields(MODELS[rt.kind], data, patch=patch)]
    if not problems:
        return []
    if asked == STRICT:
        reason = "strict decoding error: " + ", ".join(problems)
        if not patch:
            kind = rt.kind
            reason = f'{kind} in version "{rt.version}" cannot be handled as a {kind}: {reason}'
        raise errors.bad_request(reason)
    return problems


def add_warnings(response: web.StreamResponse, warnings: list[str]) -> web.StreamResponse:
    for text in warnings:
        response.headers.add("Warning", f"299 - {json.dumps(text)}")
    return response


class _Fields(dict[str, Any]):
    """A JSON object that remembers the keys it was given twice."""

    duplicates: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, Any]]) -> _Fields:
    fields = _Fields(pairs)
    if len(fields) != len(pairs):
        seen: set[str] = set()
        duplicates = []
        for k, _ in pairs:
            if k in seen:
                duplicates.append(k)
            seen.add(k)
        fields.duplicates = tuple(duplicates)
    return fields


class _YamlFields(yaml.SafeLoader):
    pass


def _yaml_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Fields:
    loader.flatten_mapping(node)
    return _pairs([(loader.construct_object(k), loader.construct_object(v)) for k, v in node.value])


_YamlFields.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _yaml_mapping)


def _parse(content_type: str, raw: bytes) -> Any:
    try:
        if content_type == YAML:
            return yaml.load(raw, Loader=_YamlFields)
        return json.loads(raw, object_pairs_hook=_pairs)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(str(e)) from e


def _collect(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, _Fields):
        found.extend(f"{path}.{k}" if path else k for k in value.duplicates)
        for k, v in value.items():
            _collect(v, f"{path}.{k}" if path else k, found)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _collect(v, f"{path}[{i}]", found)
