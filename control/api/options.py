"""The options a write carries: Kubernetes' CreateOptions, UpdateOptions and
PatchOptions (of which pilothouse honours `dryRun`), and DeleteOptions.

Every write verb of the registry takes a `WriteOptions`, and a delete takes a
`DeleteOptions`, which is one; the registry's store writes cannot be reached
without them, so a dry run never writes. The HTTP layer parses them once per
request; in-process callers use `WRITE` and `DELETE`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multidict import MultiMapping

from control import errors
from control.api.query import int64, revision
from control.errors import Cause

DRY_RUN_ALL = "All"
ORPHAN = "Orphan"
BACKGROUND = "Background"
FOREGROUND = "Foreground"
PROPAGATION_POLICIES = (FOREGROUND, BACKGROUND, ORPHAN)
# The finalizers through which the garbage collector carries out a propagation policy.
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"

# DeleteOptions fields a DELETE may give as query parameters instead of in its body.
_DELETE_QUERY = ("dryRun", "gracePeriodSeconds", "propagationPolicy", "orphanDependents")
_META_GROUP = "meta.k8s.io"
_TRUE = ("1", "t", "T", "true", "True", "TRUE")
_FALSE = ("0", "f", "F", "false", "False", "FALSE")


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """What every write verb takes. `dry_run`: validate and answer with what
    would be stored, but write nothing."""

    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DeleteOptions(WriteOptions):
    """Kubernetes' DeleteOptions (preconditions flattened into `uid` and
    `resource_version`)."""

    propagation_policy: str | None = None
    orphan_dependents: bool | None = None  # deprecated; excludes propagation_policy
    uid: str | None = None
    resource_version: int | None = None
    grace_period_seconds: int | None = None


WRITE = WriteOptions()
DRY_RUN = WriteOptions(dry_run=True)
DELETE = DeleteOptions()


def write_options(query: MultiMapping[str], kind: str) -> WriteOptions:
    """The CreateOptions, UpdateOptions or PatchOptions (`kind`) of a request's query."""
    values = query.getall("dryRun", ())
    if not values:
        return WRITE
    return DRY_RUN if _dry_run(list(values), kind, "dryRun") else WRITE


def delete_options(query: MultiMapping[str] | None, body: Any, *, path: str = "") -> DeleteOptions:
    """DeleteOptions from a request: each field from `body` (a decoded
    DeleteOptions object, or None) when the body has it, else from the
    query. `path` prefixes field names in errors (an Eviction's
    `deleteOptions.`)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise errors.bad_request(f"{path or 'the request body'}: must be a DeleteOptions object")
    kind = body.get("kind")
    if kind not in (None, "DeleteOptions"):
        raise errors.bad_request(f"{path}kind: must be DeleteOptions, not {kind!r}")
    q = {f: query.getall(f) for f in _DELETE_QUERY if f in query} if query is not None else {}

    def raw(name: str) -> Any:
        return body.get(name)

    dry = raw("dryRun")
    if dry is not None and (not isinstance(dry, list) or not all(isinstance(v, str) for v in dry)):
        raise errors.bad_request(f"{path}dryRun: must be an array of strings")
    if not dry:
        dry = q.get("dryRun") or []
    policy = raw("propagationPolicy")
    if policy is None and "propagationPolicy" in q:
        policy = q["propagationPolicy"][-1]
    if policy is not None and not isinstance(policy, str):
        raise errors.bad_request(f"{path}propagationPolicy: must be a string")
    orphan = _bool(raw("orphanDependents"), f"{path}orphanDependents")
    if orphan is None and "orphanDependents" in q:
        orphan = _query_bool(q["orphanDependents"][-1], f"{path}orphanDependents")
    grace = int64(raw("gracePeriodSeconds"), f"{path}gracePeriodSeconds")
    if grace is None and "gracePeriodSeconds" in q:
        grace = int64(q["gracePeriodSeconds"][-1], f"{path}gracePeriodSeconds")
    if grace is not None and grace < 0:
        grace = 1  # as Kubernetes' delete path reads a negative grace period
    uid, rv = _preconditions(raw("preconditions"), f"{path}preconditions")

    causes: list[Cause] = []
    dry_run = _dry_run(dry, "DeleteOptions", f"{path}dryRun") if dry else False
    if policy is not None and policy not in PROPAGATION_POLICIES:
        supported = ", ".join(f'"{p}"' for p in PROPAGATION_POLICIES)
        causes.append(
            Cause(
                f"{path}propagationPolicy",
                f'Unsupported value: "{policy}": supported values: {supported}, "nil"',
                "FieldValueNotSupported",
            )
        )
    if policy is not None and orphan is not None:
        causes.append(
            Cause(
                f"{path}propagationPolicy",
                f'Invalid value: "{policy}": orphanDependents and deletionPropagation cannot be both set',
            )
        )
    if causes:
        raise errors.invalid("DeleteOptions", "", causes, _META_GROUP)
    return DeleteOptions(
        dry_run=dry_run,
        propagation_policy=policy,
        orphan_dependents=orphan,
        uid=uid,
        resource_version=rv,
        grace_period_seconds=grace,
    )


def _dry_run(values: list[str], kind: str, field: str) -> bool:
    """Kubernetes allows only "All" (and no value at all); anything else is Invalid."""
    bad = [v for v in values if v != DRY_RUN_ALL]
    if bad:
        raise errors.invalid(
            kind,
            "",
            [
                Cause(
                    field,
                    f'Unsupported value: "{bad[0]}": supported values: "{DRY_RUN_ALL}"',
                    "FieldValueNotSupported",
                )
            ],
            _META_GROUP,
        )
    return bool(values)


def _bool(value: Any, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise errors.bad_request(f"{field}: must be a boolean")


def _query_bool(value: str, field: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(f"{field}: must be a boolean, got {value!r}")


def _preconditions(value: Any, field: str) -> tuple[str | None, int | None]:
    if value is None:
        return None, None
    if not isinstance(value, Mapping):
        raise errors.bad_request(f"{field}: must be an object")
    uid = value.get("uid")
    if uid is not None and not isinstance(uid, str):
        raise errors.bad_request(f"{field}.uid: must be a string")
    rv = value.get("resourceVersion")
    if rv is None or rv == "":
        return uid or None, None
    if isinstance(rv, bool) or not isinstance(rv, int | str):
        raise errors.bad_request(f"{field}.resourceVersion: must be a string")
    return uid or None, revision(rv, f"{field}.resourceVersion")
