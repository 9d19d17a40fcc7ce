"""Kubernetes REST semantics over the store, independent of HTTP.

The registry is what turns "put this JSON at this key" into Kubernetes
behaviour: server-set metadata (uid, timestamps, generation), defaults and
validation, the status and scale subresources, finalizers and deletion
(control.api.deletion), namespace existence, dry runs (every write takes its
options down to control.api.storewrites), and Status errors. The HTTP layer
(control.api.server) only parses requests and serializes answers; in-process
controllers may call the registry directly.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any

from agent.protocol.primitives import now_rfc3339
from control import errors
from control.api import deletion, namespaces
from control.api.clusterip import ClusterIPAllocator
from control.api.deletion import Deletion
from control.api.nodeports import NodePortAllocator, keep_node_ports
from control.api.options import DELETE, WRITE, DeleteOptions, WriteOptions
from control.api.query import revision
from control.api.storewrites import StoreWrites
from control.errors import ApiError, Cause
from control.objects.admission import admit, admit_update
from control.objects.batch import prepare_job_create
from control.objects.kinds import INGRESSCLASS, NAMESPACE, POD, ResourceType
from control.objects.names import generated_name
from control.objects.networking import default_ingress_class
from control.objects.selectors import selector_from_match
from control.objects.tolerations import DEFAULT_TOLERATION_SECONDS, add_default_tolerations
from control.store.interface import (
    KV,
    Compacted,
    ListResult,
    Matcher,
    Obj,
    Store,
    WatchEvent,
)
from control.store.keyspace import encode_token

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_NAMESPACE_MISMATCH = (
    "the namespace of the provided object does not match the namespace sent on the request"
)
# How often a read-modify-write (patch, scale) retries on a concurrent write.
_PATCH_RETRIES = 5


def _try_again(e: ApiError, attempt: int, *, raced: bool) -> bool:
    """Whether a write that failed with `e` on try `attempt` (from 0) is worth
    another: a Conflict, from losing a race with another writer, with tries left."""
    return e.reason == "Conflict" and raced and attempt < _PATCH_RETRIES - 1


_random_pool = memoryview(b"")


def random_bytes(n: int) -> bytes:
    """`n` random bytes from the OS (as os.urandom gives), drawn 4 KiB at a
    time rather than with a system call for each uid or event name."""
    global _random_pool
    if len(_random_pool) < n:
        _random_pool = memoryview(os.urandom(max(4096, n)))
    out = bytes(_random_pool[:n])
    _random_pool = _random_pool[n:]
    return out


def _drop_random_pool() -> None:
    global _random_pool
    _random_pool = memoryview(b"")


# A forked child must not hand out the same bytes as its parent.
os.register_at_fork(after_in_child=_drop_random_pool)


def new_uid() -> str:
    """A random (version 4, RFC 4122 variant) UUID string, as str(uuid.uuid4()) gives."""
    b = bytearray(random_bytes(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


class Registry:
    """Create, read, update, patch, delete, list and watch Kubernetes objects."""

    def __init__(
        self,
        store: Store,
        service_cidr: str,
        *,
        default_toleration_seconds: int = DEFAULT_TOLERATION_SECONDS,
    ) -> None:
        """New pods tolerate a not-ready or unreachable node for
        `default_toleration_seconds` (control.objects.tolerations)."""
        self.store = store
        self.default_toleration_seconds = default_toleration_seconds
        self.writes = StoreWrites(
            store, ClusterIPAllocator(store, service_cidr), NodePortAllocator(store)
        )

    async def ensure_system_namespaces(self) -> None:
        ns_type = NAMESPACE
        for name in SYSTEM_NAMESPACES:
            if await self.store.get(ns_type.key(None, name)) is None:
                try:
                    await self.create(ns_type, None, {"metadata": {"name": name}})
                except ApiError as e:
                    if e.reason != "AlreadyExists":
                        raise

    # -- reads ---------------------------------------------------------------

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> KV:
        kv = await self.store.get(rt.key(namespace, name))
        if kv is None:
            raise errors.not_found(rt.plural, name, rt.group)
        return kv

    async def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        match: Matcher | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        revision: int | None = None,
    ) -> ListResult:
        """`revision` reads the list as it was then (410 Gone once compacted)."""
        prefix = rt.prefix(namespace)
        if revision is not None:
            # A continue token from before the first key reads the whole list at `revision`.
            continue_token = encode_token(revision, prefix, prefix)
        try:
            return await self.store.list(
                prefix, match=match, limit=limit, continue_token=continue_token
            )
        except Compacted as e:
            if revision is not None:
                raise errors.gone("The resourceVersion for the provided list is too old.") from e
            raise errors.gone(
                "The provided continue parameter is too old to display a consistent list result."
            ) from e
        except ValueError as e:
            raise errors.bad_request(f"invalid continue token: {e}") from e

    async def watch(
        self, rt: ResourceType, namespace: str | None, from_revision: int
    ) -> AsyncIterator[WatchEvent]:
        try:
            async for event in self.store.watch(rt.prefix(namespace), from_revision):
                yield event
        except Compacted as e:
            raise errors.gone(f"too old resource version: {e.requested} ({e.compacted})") from e

    # -- writes --------------------------------------------------------------

    async def create(
        self, rt: ResourceType, namespace: str | None, body: Obj, options: WriteOptions = WRITE
    ) -> KV:
        obj = self._prepare_body(rt, namespace, body)
        meta = _meta(obj)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generated_name(str(meta["generateName"]))
        uid = new_uid()
        if rt.kind == "Job":
            prepare_job_create(obj, uid)
        obj = admit(obj)
        if rt.kind == "Pod":
            add_default_tolerations(obj, self.default_toleration_seconds)
        elif rt.kind == "Namespace":
            namespaces.prepare_create(obj)
        elif rt.kind == "Ingress":
            await self._default_ingress_class(obj)
        meta = _meta(obj)
        name = meta["name"]
        if rt.namespaced:
            await self._require_namespace(namespace or "default", rt, name)
        for server_field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(server_field, None)
        meta["uid"] = uid
        meta["creationTimestamp"] = now_rfc3339()
        meta["generation"] = 1
        _reset_status_on_create(rt, obj)
        return await self.writes.create(rt, namespace, name, obj, options)

    async def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Obj,
        *,
        subresource: str = "",
        options: WriteOptions = WRITE,
    ) -> KV:
        """PUT: replace the object (or only its status, with subresource="status")."""
        obj = self._prepare_body(rt, namespace, body)
        meta = _meta(obj)
        _check_names(rt, namespace, name, meta)
        meta["name"] = name
        rv = meta.get("resourceVersion")
        expected = revision(rv, "metadata.resourceVersion") if rv else None
        current = await self.get(rt, namespace, name)
        return await self._write(
            rt, namespace, current, current.obj, obj, expected, subresource, options
        )

    async def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        apply_patch: Callable[[Obj], Obj],
        *,
        subresource: str = "",
        options: WriteOptions = WRITE,
        pure: bool = False,
    ) -> KV:
        """Read, patch, write; retried when another writer got in between.

        `apply_patch` gets a copy of the stored object that it may change; with
        `pure` (it changes nothing it is given, and its result is not kept
        elsewhere) it gets the object parsed once for the whole write."""

        def build(current: KV, old: Obj) -> Obj:
            patched = apply_patch(old if pure else current.obj)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch did not produce an object")
            return patched

        return await self._read_modify_write(rt, namespace, name, build, subresource, options)

    async def _read_modify_write(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        build: Callable[[KV, Obj], Obj],
        subresource: str,
        options: WriteOptions,
    ) -> KV:
        """`build` gets the stored object, and that object parsed, which it
        must not change (current.obj parses a copy it may change)."""
        for attempt in range(_PATCH_RETRIES):
            current = await self.get(rt, namespace, name)
            old = current.obj
            new = build(current, old)
            meta = _meta(new)
            _check_names(rt, namespace, name, meta)
            meta["name"] = name
            # The built object carries the revision it was read at, unless the
            # caller set another one as a precondition. Only a race on the
            # revision we read is worth another try.
            rv = meta.get("resourceVersion")
            expected = revision(rv, "metadata.resourceVersion") if rv else None
            try:
                return await self._write(
                    rt, namespace, current, old, new, expected, subresource, options
                )
            except ApiError as e:
                if not _try_again(e, attempt, raced=rv == str(current.mod_revision)):
                    raise
        raise AssertionError("unreachable")

    async def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        options: DeleteOptions = DELETE,
        *,
        expected_uid: str | None = None,
        grace_period_seconds: int | None = None,
    ) -> KV:
        """Delete an object, or start deleting it (see control.api.deletion):
        the object as deleted, or as it stays while its deletion is pending.
        `expected_uid` and `grace_period_seconds` set those options."""
        if expected_uid is not None or grace_period_seconds is not None:
            options = replace(
                options,
                uid=expected_uid or options.uid,
                grace_period_seconds=(
                    options.grace_period_seconds
                    if grace_period_seconds is None
                    else grace_period_seconds
                ),
            )
        return (await self.delete_object(rt, namespace, name, options)).kv

    async def delete_object(
        self, rt: ResourceType, namespace: str | None, name: str, options: DeleteOptions
    ) -> Deletion:
        """Delete, and say whether the object is gone or its deletion pending.
        Without a resourceVersion precondition, a write that races the delete
        makes it try again."""
        for attempt in range(_PATCH_RETRIES):
            current = await self.get(rt, namespace, name)
            try:
                return await deletion.delete(self.writes, rt, name, current, options)
            except ApiError as e:
                if not _try_again(e, attempt, raced=options.resource_version is None):
                    raise
        raise AssertionError("unreachable")

    async def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        options: DeleteOptions,
        match: Matcher | None = None,
    ) -> Sequence[KV]:
        """Delete every object `match` selects: each as deleted, or as it
        stays while its deletion is pending."""
        listed = await self.list(rt, namespace, match=match)
        prefix = len(rt.prefix(None))
        done: list[KV] = []
        for kv in listed.items:
            ns, _, name = kv.key[prefix:].rpartition("/")
            try:
                done.append((await self.delete_object(rt, ns or None, name, options)).kv)
            except ApiError as e:
                if e.code != 404:
                    raise
        return done

    async def evict(self, namespace: str, name: str, options: DeleteOptions) -> Deletion:
        """The Eviction API (`pods/{name}/eviction`): a graceful delete.
        There are no PodDisruptionBudgets to refuse it."""
        return await self.delete_object(POD, namespace, name, options)

    async def bind(self, namespace: str, name: str, node: str, options: WriteOptions = WRITE) -> KV:
        """Assign a pod to a node, as the `pods/binding` subresource does."""

        def build(_current: KV, old: Obj) -> Obj:
            # Copies of what changes only: `old` stays as stored.
            spec = old.get("spec") or {}
            if spec.get("nodeName"):
                raise errors.conflict(
                    "pods", name, "", f"pod {name} is already assigned to node {spec['nodeName']!r}"
                )
            status = old.get("status") or {}
            conditions = [
                c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
            ]
            conditions.append(
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}
            )
            return {
                **old,
                "metadata": dict(_meta(old)),
                "spec": {**spec, "nodeName": node},
                "status": {**status, "conditions": conditions},
            }

        return await self._read_modify_write(POD, namespace, name, build, "binding", options)

    # -- scale subresource ---------------------------------------------------

    async def get_scale(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        return to_scale(rt, await self.get(rt, namespace, name))

    async def update_scale(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        change: Callable[[Obj], Obj],
        *,
        options: WriteOptions = WRITE,
    ) -> Obj:
        """Apply `change` to the Scale view and write spec.replicas back."""

        def build(current: KV, _old: Obj) -> Obj:
            scale = change(to_scale(rt, current))
            spec = scale.get("spec") if isinstance(scale, dict) else None
            replicas = spec.get("replicas") if isinstance(spec, dict) else None
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise errors.invalid(
                    "Scale",
                    name,
                    [Cause("spec.replicas", "must be >= 0", "FieldValueInvalid")],
                    "autoscaling",
                )
            obj = current.obj
            obj.setdefault("spec", {})["replicas"] = replicas
            _meta(obj)["resourceVersion"] = _meta(scale).get("resourceVersion")
            return obj

        kv = await self._read_modify_write(rt, namespace, name, build, "", options)
        return to_scale(rt, kv)

    # -- internals -----------------------------------------------------------

    def _prepare_body(self, rt: ResourceType, namespace: str | None, body: Obj) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        obj = dict(body)
        errors.check_type(obj, rt.api_version, rt.kind)
        meta = dict(_meta(obj))
        obj["metadata"] = meta
        if rt.namespaced:
            ns = meta.get("namespace") or namespace
            if namespace and ns != namespace:
                raise errors.bad_request(_NAMESPACE_MISMATCH)
            meta["namespace"] = ns or "default"
        else:
            meta.pop("namespace", None)
        return obj

    async def _write(
        self,
        rt: ResourceType,
        namespace: str | None,
        current: KV,
        old: Obj,
        obj: Obj,
        expected: int | None,
        subresource: str,
        options: WriteOptions,
    ) -> KV:
        """Write `obj` over `current` (parsed: `old`, which is not changed)."""
        old_meta = _meta(old)
        name = old_meta["name"]
        if expected is not None and expected != current.mod_revision:
            raise errors.conflict(rt.plural, name, rt.group)
        uid = _meta(obj).get("uid")
        if uid and uid != old_meta.get("uid"):
            why = f'Invalid value: "{uid}": field is immutable'
            raise errors.invalid(rt.kind, name, [Cause("metadata.uid", why)], rt.group)
        if subresource == "status":
            # Only status changes through /status; the rest is kept as stored.
            merged = dict(old)
            if "status" in obj:
                merged["status"] = obj["status"]
            new = admit(merged)
        elif subresource == "binding":
            # The stored pod was valid, and a binding sets only spec.nodeName and
            # the PodScheduled condition: no need to validate it all again.
            new = obj
        elif subresource == namespaces.FINALIZE:
            new = admit(namespaces.prepare_update(old, obj, subresource))
        else:
            new = admit_update(obj, old)
            if rt.kind == "Namespace":
                new = namespaces.prepare_update(old, new, subresource)
            if rt.status:
                # Status changes only through /status.
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
        meta = _meta(new)
        # Server-owned and immutable metadata comes from the stored object.
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["namespace"] = old_meta.get("namespace")
        if not rt.namespaced:
            meta.pop("namespace", None)
        if rt.kind == "Service" and subresource != "status":
            # Before the generation: leaving out what the server set is no change.
            _keep_cluster_ip(name, old, new)
            keep_node_ports(name, old, new)
        if rt.kind in ("Secret", "ConfigMap"):
            _keep_immutable_data(rt, name, old, new)
        generation = int(old_meta.get("generation") or 1)
        if subresource != "status" and new.get("spec") != old.get("spec"):
            generation += 1
        meta["generation"] = generation
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        if new == old:
            return current  # a no-op write keeps its resourceVersion, as in Kubernetes
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not meta.get("deletionGracePeriodSeconds")
            and (rt.kind != "Namespace" or namespaces.finalized(new))
        ):
            # The last finalizer is gone: the object goes too, unless a node
            # agent has yet to confirm a graceful pod deletion.
            return await self.writes.delete(rt, name, current, options)
        return await self.writes.update(rt, name, current, new, options)

    async def _default_ingress_class(self, ingress: Obj) -> None:
        """Kubernetes' DefaultIngressClass admission: an Ingress naming no
        class gets the default one."""
        classes = await self.list(INGRESSCLASS, None)
        chosen = default_ingress_class(ingress, (kv.obj for kv in classes.items))
        if chosen is not None:
            ingress.setdefault("spec", {})["ingressClassName"] = chosen

    async def _require_namespace(self, namespace: str, rt: ResourceType, name: str) -> None:
        ns = await self.store.get(NAMESPACE.key(None, namespace))
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        # Every create in the namespace asks: look in the raw bytes before parsing.
        if b'"deletionTimestamp"' in ns.raw and _meta(ns.obj).get("deletionTimestamp"):
            raise namespaces.terminating(rt, name, namespace)


def _check_names(rt: ResourceType, namespace: str | None, name: str, meta: dict[str, Any]) -> None:
    """A write names the object its URL names (Kubernetes' checkName), 400 otherwise."""
    field, why = "", ""
    if meta.get("name", name) != name:
        field = "metadata.name"
        why = f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
    elif rt.namespaced and namespace and meta.get("namespace") not in (None, "", namespace):
        field = "metadata.namespace"
        why = _NAMESPACE_MISMATCH
    if field:
        raise ApiError(400, "BadRequest", why, causes=[Cause(field, why)])


def _reset_status_on_create(rt: ResourceType, obj: Obj) -> None:
    if not rt.status:
        return
    # Nodes report their own status from the moment they register.
    if rt.kind == "Node":
        return
    obj.pop("status", None)
    if rt.kind == "Pod":
        obj["status"] = {"phase": "Pending"}
    elif rt.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif rt.kind == "Service":
        obj["status"] = {"loadBalancer": {}}


def _keep_cluster_ip(name: str, old: Obj, new: Obj) -> None:
    old_spec = old.get("spec") or {}
    new_spec = new.setdefault("spec", {})
    old_ip = old_spec.get("clusterIP")
    new_ip = new_spec.get("clusterIP")
    if "ipFamilies" in old_spec:
        new_spec.setdefault("ipFamilies", old_spec["ipFamilies"])
    if not new_ip:
        if old_ip:
            new_spec["clusterIP"] = old_ip
            new_spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_ip]
        return
    if new_ip != old_ip:
        raise errors.invalid(
            "Service", name, [Cause("spec.clusterIP", "field is immutable", "FieldValueInvalid")]
        )
    new_spec.setdefault("clusterIPs", old_spec.get("clusterIPs") or [old_ip])


def _keep_immutable_data(rt: ResourceType, name: str, old: Obj, new: Obj) -> None:
    """A Secret or ConfigMap marked `immutable: true` keeps its data, and the mark."""
    if not old.get("immutable"):
        return
    why = "field is immutable when `immutable` is set"
    causes = [
        Cause(field, why, "FieldValueForbidden")
        for field in ("data", "binaryData", "immutable")
        if new.get(field) != old.get(field)
    ]
    if causes:
        raise errors.invalid(rt.kind, name, causes, rt.group)


def to_scale(rt: ResourceType, kv: KV) -> Obj:
    """The autoscaling/v1 Scale view of a Deployment or ReplicaSet."""
    if not rt.scale:
        raise errors.not_found(f"{rt.plural}/scale", "")
    obj = kv.obj
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = spec.get("selector") or {}
    try:
        selector_str = str(selector_from_match(selector))
    except ValueError:
        selector_str = ""
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": str(kv.mod_revision),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {"replicas": status.get("replicas", 0), "selector": selector_str},
    }
