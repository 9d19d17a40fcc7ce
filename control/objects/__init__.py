"""Kubernetes objects: the resource types, models, manifests and helpers."""

from typing import Any

Obj = dict[str, Any]  # a Kubernetes object as JSON, as the API serves it
