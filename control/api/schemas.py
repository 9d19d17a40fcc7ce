"""OpenAPI v3 schemas of the kinds, generated from the models that validate them.

Each model becomes one schema under Kubernetes' name for it
(`io.k8s.api.core.v1.Pod`); a kind's schema carries
`x-kubernetes-group-version-kind`, and lists that strategic merge patch
merges by a key carry `x-kubernetes-patch-merge-key`, from the same table
the patcher uses.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, PlainValidator
from pydantic.fields import FieldInfo

from control.api.patch import merge_key, merges_scalars
from control.objects.descriptions import FIELD_DESCRIPTIONS, KIND_DESCRIPTIONS
from control.objects.meta import ObjectMeta

Schema = dict[str, Any]
REF_PREFIX = "#/components/schemas/"
_META_PACKAGE = "io.k8s.apimachinery.pkg.apis.meta.v1"
_PACKAGES = {
    "control.objects.meta": _META_PACKAGE,
    "control.objects.core": "io.k8s.api.core.v1",
    "control.objects.apps": "io.k8s.api.apps.v1",
    "control.objects.batch": "io.k8s.api.batch.v1",
    "control.objects.networking": "io.k8s.api.networking.v1",
    "control.objects.discovery": "io.k8s.api.discovery.v1",
    "control.objects.gateway": "io.k8s.networking.gateway.v1",
}
# Fields every object has that no one writes a manifest without saying: not "required".
_NEVER_REQUIRED = frozenset({"apiVersion", "kind", "metadata"})
_SCALARS: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer", "format": "int64"},
    float: {"type": "number", "format": "double"},
    bool: {"type": "boolean"},
}
# The scalar types Kubernetes names (kubectl explain shows <IntOrString>,
# <map[string]Quantity>): each a component of its own, referenced.
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_NAMED_SCALARS: dict[str, Schema] = {
    _INT_OR_STRING: {
        "description": "An int32 or a string: a number, or a name or percentage.",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
        "format": "int-or-string",
    },
    _QUANTITY: {
        "description": "A fixed-point number with a unit suffix: 100m, 1.5Gi, 2.",
        "oneOf": [{"type": "string"}, {"type": "number"}],
    },
}


def schema_name(model: type[BaseModel]) -> str:
    """Kubernetes' name of a model's schema. The metadata variants with a
    name rule are all ObjectMeta."""
    if issubclass(model, ObjectMeta):
        model = ObjectMeta
    package = _PACKAGES.get(model.__module__, "io.pilothouse.v1")
    return f"{package}.{model.__name__}"


class SchemaSet:
    """The schemas of some models and of every model they reach."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}

    def add_kind(self, model: type[BaseModel], group: str, version: str, kind: str) -> str:
        """Add a kind's model (and what it reaches); its schema's name."""
        name = self.add_model(model, "")
        schema = self.schemas[name]
        schema["x-kubernetes-group-version-kind"] = [
            {"group": group, "version": version, "kind": kind}
        ]
        if kind in KIND_DESCRIPTIONS:
            schema["description"] = KIND_DESCRIPTIONS[kind]
        return name

    def add_model(self, model: type[BaseModel], parent: str) -> str:
        name = schema_name(model)
        if name in self.schemas:
            return name
        if issubclass(model, ObjectMeta):
            model = ObjectMeta
        schema: Schema = {"type": "object", "properties": {}}
        self.schemas[name] = schema  # before the fields: models may reach themselves
        required: list[str] = []
        for field_name, info in model.model_fields.items():
            key = info.alias or field_name
            schema["properties"][key] = self._field(info, key, parent)
            if info.is_required() and key not in _NEVER_REQUIRED:
                required.append(key)
        if required:
            schema["required"] = required
        return name

    def _field(self, info: FieldInfo, key: str, parent: str) -> Schema:
        schema = self.schema_of(info.annotation, key, info.metadata)
        description = info.description or FIELD_DESCRIPTIONS.get(key)
        if description:
            if "$ref" in schema:
                schema = {"allOf": [schema]}
            schema["description"] = description
        if schema.get("type") == "array":
            merge = merge_key(key, parent)
            if merge:
                schema["x-kubernetes-patch-merge-key"] = merge
                schema["x-kubernetes-patch-strategy"] = "merge"
            elif merges_scalars(key):
                schema["x-kubernetes-patch-strategy"] = "merge"
        return schema

    def _named(self, name: str) -> Schema:
        self.schemas.setdefault(name, dict(_NAMED_SCALARS[name]))
        return {"$ref": REF_PREFIX + name}

    def schema_of(self, annotation: Any, key: str, metadata: list[Any] | None = None) -> Schema:
        """The schema of a type; `key` is the field it is the type of."""
        for item in metadata or ():
            if isinstance(item, PlainValidator):
                # Ports by number or name and percents are IntOrString;
                # quantities (which YAML may give as numbers) are str.
                return self._named(_QUANTITY if annotation is str else _INT_OR_STRING)
        origin = get_origin(annotation)
        if origin is Annotated:
            inner, *extra = get_args(annotation)
            return self.schema_of(inner, key, [*extra, *(metadata or ())])
        if origin in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            if len(options) == 1:
                return self.schema_of(options[0], key)
            return self._named(_INT_OR_STRING) if set(options) == {int, str} else {}
        if origin is Literal:
            values = list(get_args(annotation))
            kind = "integer" if all(isinstance(v, int) for v in values) else "string"
            return {"type": kind, "enum": values}
        if origin is list:
            (item,) = get_args(annotation) or (Any,)
            return {"type": "array", "items": self.schema_of(item, key)}
        if origin is dict:
            _, value = get_args(annotation) or (str, Any)
            return {"type": "object", "additionalProperties": self.schema_of(value, key)}
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return {"$ref": REF_PREFIX + self.add_model(annotation, key)}
        if annotation in _SCALARS:
            return dict(_SCALARS[annotation])
        # Any: whatever the client sends is kept.
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
