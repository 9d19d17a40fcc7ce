"""The three PATCH flavours of the Kubernetes API.

- `merge_patch`: JSON merge patch, RFC 7386 (`application/merge-patch+json`).
- `json_patch`: JSON patch, RFC 6902 (`application/json-patch+json`).
- `strategic_merge_patch`: Kubernetes' strategic merge patch
  (`application/strategic-merge-patch+json`), as `kubectl apply` and
  `kubectl patch` send it: a merge patch where known lists merge by key.

All three return a new object and never modify their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class PatchError(ValueError):
    """A patch that is malformed or cannot be applied to this object."""


def _copy(v: Any) -> Any:
    """Deep copy of a JSON value; much faster than copy.deepcopy."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


# --- RFC 7386 ----------------------------------------------------------------


def merge_patch(target: Any, patch: Any, *, share: bool = False) -> Any:
    """Apply a JSON merge patch (RFC 7386): objects merge, null deletes, all else replaces.

    Neither argument is changed, and the result shares nothing with them;
    with `share`, it shares with `target` the values the patch leaves alone
    (for a caller that only reads the result, or builds a new object from it).
    """
    if not isinstance(patch, dict):
        return _copy(patch)
    if not isinstance(target, dict):
        result = {}
    elif share:
        result = dict(target)
    else:
        result = {k: _copy(v) for k, v in target.items()}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            result[k] = merge_patch(result.get(k), v, share=share)
        else:
            result[k] = _copy(v)
    return result


# --- RFC 6902 ----------------------------------------------------------------


def _parse_pointer(ptr: Any, op: str) -> list[str]:
    if not isinstance(ptr, str):
        raise PatchError(f"{op} operation: path must be a string, got {ptr!r}")
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise PatchError(f"{op} operation: invalid JSON pointer {ptr!r}: must start with '/'")
    tokens = ptr[1:].split("/")
    for t in tokens:
        i = t.find("~")
        while i >= 0:
            if i + 1 >= len(t) or t[i + 1] not in "01":
                raise PatchError(f"{op} operation: invalid JSON pointer {ptr!r}: bad escape '~'")
            i = t.find("~", i + 2)
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def _array_index(token: str, length: int, *, allow_end: bool) -> int | None:
    """The index `token` names in an array, or None when it is not a valid one."""
    if token == "-":
        return length if allow_end else None
    if not token.isdigit() or (len(token) > 1 and token[0] == "0") or not token.isascii():
        return None
    i = int(token)
    limit = length if allow_end else length - 1
    return i if i <= limit else None


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and bool(a == b)


class _Doc:
    """The document under patch, held in a box so that the root can be replaced."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def parent(self, tokens: list[str], op: str, path: str) -> Any:
        cur = self.root
        for t in tokens[:-1]:
            if isinstance(cur, dict):
                if t not in cur:
                    raise PatchError(f"{op} operation failed at {path}: path does not exist")
                cur = cur[t]
            elif isinstance(cur, list):
                i = _array_index(t, len(cur), allow_end=False)
                if i is None:
                    raise PatchError(f"{op} operation failed at {path}: path does not exist")
                cur = cur[i]
            else:
                raise PatchError(f"{op} operation failed at {path}: path does not exist")
        return cur

    def get(self, tokens: list[str], op: str, path: str) -> Any:
        if not tokens:
            return self.root
        parent = self.parent(tokens, op, path)
        last = tokens[-1]
        if isinstance(parent, dict) and last in parent:
            return parent[last]
        if isinstance(parent, list):
            i = _array_index(last, len(parent), allow_end=False)
            if i is not None:
                return parent[i]
        raise PatchError(f"{op} operation failed at {path}: path does not exist")

    def add(self, tokens: list[str], value: Any, op: str, path: str) -> None:
        if not tokens:
            self.root = value
            return
        parent = self.parent(tokens, op, path)
        last = tokens[-1]
        if isinstance(parent, dict):
            parent[last] = value
        elif isinstance(parent, list):
            i = _array_index(last, len(parent), allow_end=True)
            if i is None:
                raise PatchError(
                    f"{op} operation failed at {path}: array index {last!r} out of range "
                    f"(length {len(parent)})"
                )
            parent.insert(i, value)
        else:
            raise PatchError(f"{op} operation failed at {path}: parent is not an object or array")

    def remove(self, tokens: list[str], op: str, path: str) -> Any:
        if not tokens:
            raise PatchError(f"{op} operation failed: cannot remove the whole document")
        parent = self.parent(tokens, op, path)
        last = tokens[-1]
        if isinstance(parent, dict) and last in parent:
            return parent.pop(last)
        if isinstance(parent, list):
            i = _array_index(last, len(parent), allow_end=False)
            if i is not None:
                return parent.pop(i)
        raise PatchError(f"{op} operation failed at {path}: path does not exist")


_REQUIRED = {
    "add": ("path", "value"),
    "remove": ("path",),
    "replace": ("path", "value"),
    "move": ("from", "path"),
    "copy": ("from", "path"),
    "test": ("path", "value"),
}


def json_patch(target: Any, ops: Sequence[Mapping[str, Any]]) -> Any:
    """Apply a JSON patch (RFC 6902). All operations apply, or none (PatchError)."""
    if not isinstance(ops, list):
        raise PatchError(f"a JSON patch must be an array of operations, got {type(ops).__name__}")
    doc = _Doc(_copy(target))
    for n, operation in enumerate(ops):
        if not isinstance(operation, Mapping):
            raise PatchError(f"operation {n}: expected an object, got {operation!r}")
        op = operation.get("op")
        if not isinstance(op, str) or op not in _REQUIRED:
            raise PatchError(f"operation {n}: unknown op {op!r}")
        for member in _REQUIRED[op]:
            if member not in operation:
                raise PatchError(f"{op} operation {n}: missing {member!r}")
        path = operation["path"]
        tokens = _parse_pointer(path, op)
        if op == "add":
            doc.add(tokens, _copy(operation["value"]), op, path)
        elif op == "remove":
            doc.remove(tokens, op, path)
        elif op == "replace":
            doc.get(tokens, op, path)  # must exist
            if tokens:
                doc.remove(tokens, op, path)
            doc.add(tokens, _copy(operation["value"]), op, path)
        elif op == "test":
            actual = doc.get(tokens, op, path)
            if not _json_equal(actual, operation["value"]):
                raise PatchError(
                    f"test operation failed at {path}: "
                    f"expected {operation['value']!r}, found {actual!r}"
                )
        else:  # move, copy
            src = operation["from"]
            from_tokens = _parse_pointer(src, op)
            if op == "move":
                if from_tokens == tokens:
                    doc.get(from_tokens, op, src)  # must exist, even for a no-op
                    continue
                if tokens[: len(from_tokens)] == from_tokens:
                    raise PatchError(
                        f"move operation failed at {path}: cannot move {src} into itself"
                    )
                value = doc.remove(from_tokens, op, src)
            else:
                value = _copy(doc.get(from_tokens, op, src))
            doc.add(tokens, value, op, path)
    return doc.root


# --- strategic merge patch ---------------------------------------------------

_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})

# Lists that merge by a key, from the Kubernetes API's patchMergeKey tags:
# field name -> merge key, or a dict of parent field name -> merge key where the
# same name means different things. "" as parent is the object root.
_MERGE_KEYS: dict[str, str | dict[str, str]] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "ownerReferences": "uid",
    "conditions": "type",
    "addresses": "type",
    "podIPs": "ip",
    "ports": {
        "containers": "containerPort",
        "initContainers": "containerPort",
        "ephemeralContainers": "containerPort",
        "spec": "port",  # Service spec.ports
    },
}

# Lists of scalars whose patch strategy is "merge": patch values are added.
_MERGE_SCALAR_LISTS = frozenset({"finalizers"})

_DIRECTIVE = "$patch"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"
_RETAIN_KEYS = "$retainKeys"


def merge_key(field: str, parent: str) -> str | None:
    """The key a list field merges by, in the object reached through `parent`."""
    key = _MERGE_KEYS.get(field)
    if isinstance(key, dict):
        return key.get(parent)
    return key


def merges_scalars(field: str) -> bool:
    """Whether a list of scalars merges (patch values are added) rather than replaces."""
    return field in _MERGE_SCALAR_LISTS


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Apply a Kubernetes strategic merge patch.

    Maps merge as in a JSON merge patch. Known lists (containers by name, env by
    name, volumeMounts by mountPath, conditions by type, ...) merge by their key;
    other lists replace. Honours `$patch: replace` and `$patch: delete` on maps
    and list items, and `$deleteFromPrimitiveList/<field>`. `$retainKeys` and
    `$setElementOrder/<field>` are accepted and ignored.
    """
    if not isinstance(patch, dict):
        raise PatchError(f"a strategic merge patch must be an object, got {type(patch).__name__}")
    result = _merge_map(target if isinstance(target, dict) else {}, patch, "", "")
    return {} if result is None else result


def _merge_map(target: dict[str, Any], patch: dict[str, Any], path: str, field: str) -> Any:
    """Merge `patch` into a copy of `target`; None means the map is deleted.

    `field` is the name of the map's own field, used to pick list merge keys.
    """
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        return _merge_map({}, {k: v for k, v in patch.items() if k != _DIRECTIVE}, path, field)
    if directive not in (None, "merge"):
        raise PatchError(f"{path or '<root>'}: unknown $patch directive {directive!r}")

    result = {k: _copy(v) for k, v in target.items()}
    for k, v in patch.items():
        if k == _DIRECTIVE or k == _RETAIN_KEYS or k.startswith(_SET_ORDER):
            continue
        if k.startswith(_DELETE_PRIMITIVE):
            name = k[len(_DELETE_PRIMITIVE) :]
            if not isinstance(v, list):
                raise PatchError(f"{_join(path, k)}: expected a list")
            current = result.get(name)
            if isinstance(current, list):
                result[name] = [x for x in current if not any(_json_equal(x, g) for g in v)]
            continue
        sub = _join(path, k)
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            cur = result.get(k)
            merged = _merge_map(cur if isinstance(cur, dict) else {}, v, sub, k)
            if merged is None:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            cur = result.get(k)
            result[k] = _merge_list(cur if isinstance(cur, list) else [], v, k, field, sub)
        else:
            result[k] = v
    return result


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _merge_list(
    target: list[Any], patch: list[Any], field: str, parent: str, path: str = ""
) -> list[Any]:
    path = path or field
    # A `{"$patch": "replace"}` element replaces the whole list with the others.
    if any(isinstance(x, dict) and x.get(_DIRECTIVE) == "replace" and len(x) == 1 for x in patch):
        rest = [x for x in patch if not (isinstance(x, dict) and x.get(_DIRECTIVE) == "replace")]
        return _merge_list([], rest, field, parent, path)

    if merges_scalars(field):
        out = [_copy(x) for x in target]
        for x in patch:
            if not any(_json_equal(x, y) for y in out):
                out.append(_copy(x))
        return out

    key = merge_key(field, parent)
    if key is None:
        # Atomic list: replaced, with any directives in its maps resolved.
        out = []
        for i, x in enumerate(patch):
            if isinstance(x, dict):
                m = _merge_map({}, x, f"{path}[{i}]", field)
                if m is not None:
                    out.append(m)
            else:
                out.append(_copy(x))
        return out

    result = [_copy(x) for x in target]
    index: dict[Any, int] = {}
    for i, item in enumerate(result):
        if isinstance(item, dict) and key in item:
            index.setdefault(_hashable(item[key]), i)
    deleted: set[int] = set()
    for i, item in enumerate(patch):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise PatchError(f"{where}: expected an object with merge key {key!r}, got {item!r}")
        if key not in item:
            raise PatchError(f"{where}: does not contain declared merge key {key!r}")
        k = _hashable(item[key])
        pos = index.get(k)
        if item.get(_DIRECTIVE) == "delete":
            if pos is not None:
                deleted.add(pos)
                del index[k]
            continue
        if pos is None:
            merged = _merge_map({}, item, where, field)
            if merged is not None:
                index[k] = len(result)
                result.append(merged)
        else:
            merged = _merge_map(result[pos], item, where, field)
            if merged is None:
                deleted.add(pos)
                del index[k]
            else:
                result[pos] = merged
    return [x for i, x in enumerate(result) if i not in deleted]


def _hashable(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return repr(v)
    # Keep 80 and "80" apart, but let 80 and 80.0 meet as they would in JSON.
    return (type(v) is str, v)
