"""Printing objects: tables, YAML, JSON and names, in kubectl's formats."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import orjson
import yaml

from control.objects.columns import rows
from control.objects.kinds import ResourceType


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(obj: Any) -> str:
    return yaml.dump(
        obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )


def table(headers: list[str], body: list[list[str]], out: TextIO | None = None) -> None:
    out = out or sys.stdout  # now, not at import: tests and callers replace sys.stdout
    widths = [len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for row in [headers, *body]:
        line = "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))
        out.write(line.rstrip() + "\n")


def print_objects(
    rt: ResourceType,
    objs: list[dict[str, Any]],
    fmt: str,
    *,
    all_namespaces: bool = False,
    single: bool = False,
    namespace: str | None = None,
    out: TextIO | None = None,
) -> None:
    """Print in `fmt`: "" (table), "wide", "yaml", "json" or "name". `namespace`:
    the one listed, which an empty table names as kubectl does."""
    out = out or sys.stdout
    if fmt in ("yaml", "json"):
        doc: Any = (
            objs[0]
            if single and len(objs) == 1
            else {
                "apiVersion": "v1",
                "kind": "List",
                "metadata": {"resourceVersion": ""},
                "items": objs,
            }
        )
        out.write(
            to_yaml(doc)
            if fmt == "yaml"
            else orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
        )
        return
    if fmt == "name":
        for o in objs:
            out.write(
                f"{rt.singular}{'.' + rt.group if rt.group else ''}/{o['metadata']['name']}\n"
            )
        return
    if not objs:
        where = f" in {namespace} namespace" if namespace and rt.namespaced else ""
        sys.stderr.write(f"No resources found{where}.\n")
        return
    headers, body = rows(rt.kind, objs, wide=fmt == "wide")
    if all_namespaces and rt.namespaced:
        headers = ["NAMESPACE", *headers]
        body = [
            [str(o["metadata"].get("namespace", "")), *r] for o, r in zip(objs, body, strict=True)
        ]
    table(headers, body, out)
