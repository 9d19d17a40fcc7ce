"""OpenAPI v3: `/openapi/v3` (the index of group-versions) and
`/openapi/v3/<api|apis/group>/<version>` (one document per group-version).

Built once from the kind registry and the models that validate the kinds
(control.api.schemas). Every write operation declares the `fieldValidation`
query parameter: that is how kubectl learns that the server validates fields,
and leaves validation to it.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import orjson

from control.api.discovery import KUBE_VERSION
from control.api.schemas import REF_PREFIX, SchemaSet
from control.objects.admission import MODELS
from control.objects.kinds import GROUP_VERSIONS, RESOURCES, ResourceType

PREFIX = "/openapi/v3"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_STATUS = f"{_META}.Status"
_LIST_META = f"{_META}.ListMeta"


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": kind}}


_DRY_RUN = _query("dryRun", "When present, modifications are not persisted: All.")
_FIELD_MANAGER = _query("fieldManager", "A name for the actor making these changes.")
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "How the server treats unknown and duplicate fields: Ignore, Warn or Strict.",
)
_WRITE_PARAMS = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
_LIST_PARAMS = [
    _query("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _query("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _query("limit", "The maximum number of objects to return.", "integer"),
    _query("continue", "The continue token of the previous page."),
    _query("resourceVersion", "The resource version to list or watch from."),
    _query("watch", "Watch for changes to the described resources.", "boolean"),
    _query("timeoutSeconds", "Timeout for the list or watch call.", "integer"),
]
_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "uniqueItems": True},
    }


def _content(ref: str, types: tuple[str, ...] = ("application/json", "application/yaml")) -> Any:
    return {t: {"schema": {"$ref": REF_PREFIX + ref}} for t in types}


def _operation(
    rt: ResourceType, action: str, verb: str, answer: str, params: list[Any], body: str = ""
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "description": f"{verb} {rt.kind}",
        "operationId": f"{action}{rt.kind}",
        "tags": [rt.api_version.replace("/", "_")],
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": _content(answer)}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
        },
    }
    if body:
        types = _PATCH_TYPES if action == "patch" else ("application/json", "application/yaml")
        op["requestBody"] = {"required": True, "content": _content(body, types)}
    return op


def _paths(rt: ResourceType, schema: str, list_schema: str) -> dict[str, Any]:
    base = rt.base_path("{namespace}" if rt.namespaced else None)
    scope = [_path_param("namespace", "object name and auth scope")] if rt.namespaced else []
    named = [_path_param("name", f"name of the {rt.kind}"), *scope]
    paths: dict[str, Any] = {
        base: {
            "get": _operation(
                rt, "list", "list or watch objects of kind", list_schema, _LIST_PARAMS
            ),
            "post": _operation(rt, "post", "create a", schema, _WRITE_PARAMS, schema),
            "delete": _operation(rt, "deletecollection", "delete a collection of", _STATUS, []),
            "parameters": scope,
        },
        f"{base}/{{name}}": {
            "get": _operation(rt, "get", "read the specified", schema, []),
            "put": _operation(rt, "put", "replace the specified", schema, _WRITE_PARAMS, schema),
            "patch": _operation(
                rt, "patch", "partially update the specified", schema, _WRITE_PARAMS, schema
            ),
            "delete": _operation(rt, "delete", "delete a", _STATUS, [_DRY_RUN]),
            "parameters": named,
        },
    }
    if rt.namespaced:
        paths[rt.base_path()] = {
            "get": _operation(
                rt, "list", "list or watch objects of kind", list_schema, _LIST_PARAMS
            )
        }
    if rt.status:
        paths[f"{base}/{{name}}/status"] = {
            "get": _operation(rt, "get", "read status of the specified", schema, []),
            "put": _operation(
                rt, "put", "replace status of the specified", schema, _WRITE_PARAMS, schema
            ),
            "patch": _operation(
                rt,
                "patch",
                "partially update status of the specified",
                schema,
                _WRITE_PARAMS,
                schema,
            ),
            "parameters": named,
        }
    return paths


def _object(description: str, **properties: Any) -> dict[str, Any]:
    """An object schema; a property given as a type name is of that type."""
    props = {k: {"type": v} if isinstance(v, str) else v for k, v in properties.items()}
    return {"type": "object", "description": description, "properties": props}


def _meta_schemas() -> dict[str, Any]:
    int64 = {"type": "integer", "format": "int64"}
    return {
        _LIST_META: _object(
            "Metadata of a list: its resourceVersion and continue token.",
            resourceVersion="string",
            remainingItemCount=int64,
            **{"continue": "string"},
        ),
        _STATUS: _object(
            "Status is the return value for calls that don't return other objects.",
            apiVersion="string",
            kind="string",
            status="string",
            message="string",
            reason="string",
            code={"type": "integer", "format": "int32"},
            details={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        ),
    }


def _document(group: str, version: str) -> dict[str, Any]:
    schemas = SchemaSet()
    paths: dict[str, Any] = {}
    for rt in RESOURCES:
        if (rt.group, rt.version) != (group, version):
            continue
        name = schemas.add_kind(MODELS[rt.kind], rt.group, rt.version, rt.kind)
        list_name = f"{name}List"
        schemas.schemas[list_name] = {
            "type": "object",
            "description": f"{rt.list_kind} is a list of {rt.kind} objects.",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"$ref": REF_PREFIX + _LIST_META},
                "items": {"type": "array", "items": {"$ref": REF_PREFIX + name}},
            },
            "x-kubernetes-group-version-kind": [
                {"group": rt.group, "version": rt.version, "kind": rt.list_kind}
            ],
        }
        paths.update(_paths(rt, name, list_name))
    major, minor = KUBE_VERSION
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": f"v{major}.{minor}.0"},
        "paths": paths,
        "components": {"schemas": {**_meta_schemas(), **schemas.schemas}},
    }


def _key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@functools.cache
def _documents() -> dict[str, bytes]:
    """Every group-version's document, encoded once."""
    gvs = [("", "v1"), *GROUP_VERSIONS]
    return {_key(g, v): orjson.dumps(_document(g, v)) for g, v in gvs}


@functools.cache
def _index() -> bytes:
    paths = {
        key: {
            "serverRelativeURL": (f"{PREFIX}/{key}?hash={hashlib.sha512(raw).hexdigest().upper()}")
        }
        for key, raw in _documents().items()
    }
    return orjson.dumps({"paths": paths})


def document(path: str) -> bytes | None:
    """The OpenAPI answer to a GET of `path`, encoded, if it names one."""
    if path == PREFIX:
        return _index()
    if path.startswith(PREFIX + "/"):
        return _documents().get(path.removeprefix(PREFIX + "/"))
    return None
