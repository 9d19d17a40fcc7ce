"""The handlers of Kubernetes' resource verbs: list (and watch), create, get,
update, patch, delete and delete collection; the status and scale
subresources; pods' binding and eviction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web

from control import errors
from control.api.bodies import body, patch_change
from control.api.deletion import RETURNS_DELETED_OBJECT, Deletion
from control.api.fieldvalidation import add_warnings, check_fields
from control.api.listoptions import list_options, read_list
from control.api.options import DeleteOptions, WriteOptions, delete_options
from control.api.query import int_param, matcher
from control.api.registry import Registry
from control.api.responses import created, json_response, raw_response, status_response
from control.api.routing import Target
from control.api.tables import table_request, table_response
from control.api.watch import serve_watch
from control.errors import Cause, status_body
from control.objects.kinds import ResourceType
from control.store.interface import KV


class ResourceHandlers:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # -- collections -----------------------------------------------------------

    async def list(self, request: web.Request, target: Target) -> web.StreamResponse:
        """A list, or with `watch` a watch. Items are spliced in as stored."""
        rt, ns = target.rt, target.namespace
        q = request.query
        match = matcher(q.get("labelSelector"), q.get("fieldSelector"))
        asked = table_request(request)
        opts = list_options(q)
        if opts.watch:
            return await serve_watch(request, self.registry, rt, ns, match, opts, asked)
        limit = int_param(q, "limit", 0)
        listed = await read_list(self.registry, rt, ns, match, limit, opts)
        meta: dict[str, Any] = {"resourceVersion": str(listed.revision)}
        if listed.continue_token:
            meta["continue"] = listed.continue_token
            if listed.remaining is not None:
                meta["remainingItemCount"] = listed.remaining
        if asked is not None:
            return table_response(rt, listed.items, meta, asked)
        return raw_response(_list_body(rt, meta, listed.items))

    async def create(
        self, request: web.Request, target: Target, options: WriteOptions
    ) -> web.StreamResponse:
        new = await body(request)
        warnings = await check_fields(request, target.rt)
        kv = await self.registry.create(target.rt, target.namespace, new, options)
        return add_warnings(raw_response(kv.raw, 201), warnings)

    async def delete_collection(
        self, request: web.Request, target: Target, options: DeleteOptions
    ) -> web.StreamResponse:
        rt, ns = target.rt, target.namespace
        # Where Kubernetes serves it: a namespaced kind only within one
        # namespace, a cluster-scoped one at its root; never for Namespaces.
        if rt.kind == "Namespace" or (rt.namespaced and ns is None):
            raise errors.method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        q = request.query
        match = matcher(q.get("labelSelector"), q.get("fieldSelector"))
        deleted = await self.registry.delete_collection(rt, ns, options, match)
        return raw_response(_list_body(rt, {}, deleted))

    # -- objects and their status ------------------------------------------------

    async def get(self, request: web.Request, target: Target) -> web.StreamResponse:
        asked = table_request(request)
        kv = await self.registry.get(*_object_at(target))
        if asked is not None:
            return table_response(target.rt, [kv], {}, asked)
        return raw_response(kv.raw)

    async def update(
        self, request: web.Request, target: Target, options: WriteOptions
    ) -> web.StreamResponse:
        new = await body(request)
        warnings = await check_fields(request, target.rt)
        kv = await self.registry.update(
            *_object_at(target), new, subresource=target.subresource, options=options
        )
        return add_warnings(raw_response(kv.raw), warnings)

    async def patch(
        self, request: web.Request, target: Target, options: WriteOptions
    ) -> web.StreamResponse:
        change = await patch_change(request)
        warnings = await check_fields(request, target.rt, patch=True)
        kv = await self.registry.patch(
            *_object_at(target),
            change,
            subresource=target.subresource,
            options=options,
            pure=True,  # the patchers leave their target as it is
        )
        return add_warnings(raw_response(kv.raw), warnings)

    async def delete(
        self, request: web.Request, target: Target, options: DeleteOptions
    ) -> web.StreamResponse:
        rt, namespace, name = _object_at(target)
        done = await self.registry.delete_object(rt, namespace, name, options)
        return _deleted(rt, name, done, options)

    # -- scale ---------------------------------------------------------------------

    async def get_scale(self, request: web.Request, target: Target) -> web.StreamResponse:
        scale = await self.registry.get_scale(*_object_at(target))
        return json_response(scale)

    async def update_scale(
        self, request: web.Request, target: Target, options: WriteOptions
    ) -> web.StreamResponse:
        new = await body(request)
        scale = await self.registry.update_scale(
            *_object_at(target), lambda _s: new, options=options
        )
        return json_response(scale)

    async def patch_scale(
        self, request: web.Request, target: Target, options: WriteOptions
    ) -> web.StreamResponse:
        change = await patch_change(request)
        scale = await self.registry.update_scale(*_object_at(target), change, options=options)
        return json_response(scale)

    # -- pods ------------------------------------------------------------------------

    async def bind(
        self, request: web.Request, target: Target, options: WriteOptions
    ) -> web.StreamResponse:
        name = _name(target)
        binding = await body(request)
        to = binding.get("target") if isinstance(binding, dict) else None
        node = to.get("name") if isinstance(to, dict) else None
        if not isinstance(node, str) or not node:
            raise errors.invalid(
                "Binding", name, [Cause("target.name", "required", "FieldValueRequired")]
            )
        await self.registry.bind(target.namespace or "default", name, node, options)
        return created()

    async def evict(
        self, request: web.Request, target: Target, options: WriteOptions
    ) -> web.StreamResponse:
        """`POST pods/{name}/eviction` (policy/v1 Eviction): a graceful delete
        with the Eviction's deleteOptions; the query's dryRun counts when
        they have none."""
        name = _name(target)
        eviction = await body(request)
        if not isinstance(eviction, dict) or eviction.get("kind", "Eviction") != "Eviction":
            raise errors.bad_request("the request body must be a policy/v1 Eviction")
        meta = eviction.get("metadata") or {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata: must be an object")
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"name in URL does not match name in Eviction object: {name} != {meta.get('name')}"
            )
        delete = delete_options(None, eviction.get("deleteOptions"), path="deleteOptions.")
        delete = replace(delete, dry_run=delete.dry_run or options.dry_run)
        await self.registry.evict(target.namespace or "default", name, delete)
        return created()


def _name(target: Target) -> str:
    """The object's name (the router calls object handlers only on object paths)."""
    return str(target.name)


def _object_at(target: Target) -> tuple[ResourceType, str | None, str]:
    """The kind, namespace and name of the object a request is about."""
    return target.rt, target.namespace, _name(target)


def _list_body(rt: ResourceType, meta: dict[str, Any], items: Iterable[KV]) -> bytes:
    head = orjson.dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
    return b"".join((head[:-1], b',"items":[', b",".join(kv.raw for kv in items), b"]}"))


def _deleted(rt: ResourceType, name: str, done: Deletion, options: DeleteOptions) -> web.Response:
    """A delete's answer as Kubernetes gives it: the object for the kinds
    that return it and while its deletion is pending, else a Status; 202 for
    a pending delete that asked for orphanDependents=false."""
    code = 202 if not done.gone and options.orphan_dependents is False else 200
    if not done.gone or rt.kind in RETURNS_DELETED_OBJECT:
        return raw_response(done.kv.raw, code)
    details = {"name": name, "group": rt.group, "kind": rt.plural, "uid": done.uid}
    if not rt.group:
        del details["group"]
    return status_response(status_body("Success", details=details), code)
