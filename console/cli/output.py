"""Printing objects: tables, YAML, JSON and names, in kubectl's formats."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import orjson

from control.objects.columns import aligned, rows
from control.objects.kinds import ResourceType
from control.objects.yamltext import to_yaml


def table(headers: list[str], body: list[list[str]], out: TextIO | None = None) -> None:
    out = out or sys.stdout  # now, not at import: tests and callers replace sys.stdout
    for line in aligned(headers, body):
        out.write(line + "\n")


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
