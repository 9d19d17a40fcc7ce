"""ListOptions: the resourceVersion a list or watch is read at, and how.

`resourceVersion` and `resourceVersionMatch` (Exact, NotOlderThan) on lists;
`sendInitialEvents` and `allowWatchBookmarks` on watches (the watch-list
protocol client-go uses). Bad combinations are refused with the 422 that
kube-apiserver gives (`ListOptions.meta.k8s.io "" is invalid: ...`); a list
at a revision compacted away is a 410 Gone, one at a revision the store has
not reached a 504 (Kubernetes' "Too large resource version").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from control import errors
from control.api.query import TRUE, revision
from control.api.registry import Registry
from control.errors import ApiError, Cause
from control.objects.kinds import ResourceType
from control.store.interface import ListResult, Matcher

EXACT = "Exact"
NOT_OLDER_THAN = "NotOlderThan"
_FALSE = {"0", "false", "False"}


@dataclass(frozen=True, slots=True)
class ListOptions:
    watch: bool
    resource_version: str  # "" when absent
    match: str  # "", EXACT or NOT_OLDER_THAN
    send_initial_events: bool | None  # None when absent
    allow_bookmarks: bool
    continue_token: str | None

    def revision(self) -> int | None:
        """The resourceVersion as a revision; None for "" and "0" (any)."""
        rv = self.resource_version
        return None if rv in ("", "0") else revision(rv)


def list_options(q: Any) -> ListOptions:
    """The query's ListOptions, validated as kube-apiserver does."""
    opts = ListOptions(
        watch=q.get("watch") in TRUE,
        resource_version=q.get("resourceVersion") or "",
        match=q.get("resourceVersionMatch") or "",
        send_initial_events=_optional_bool(q, "sendInitialEvents"),
        allow_bookmarks=q.get("allowWatchBookmarks") in TRUE,
        continue_token=q.get("continue") or None,
    )
    opts.revision()  # a watch's is refused here, before its stream starts
    causes = _watch_causes(opts) if opts.watch else _list_causes(opts)
    if causes:
        joined = ", ".join(f"{c.field}: {c.message}" for c in causes)
        raise ApiError(
            422,
            "Invalid",
            f'ListOptions.meta.k8s.io "" is invalid: {joined}',
            "ListOptions",
            "",
            "meta.k8s.io",
            causes,
        )
    return opts


def _optional_bool(q: Any, name: str) -> bool | None:
    value = q.get(name)
    if value is None or value == "":
        return None
    if value in TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(f"{name}: invalid value {value!r}, want true or false")


def _forbidden(field: str, why: str) -> Cause:
    return Cause(field, f"Forbidden: {why}", "FieldValueForbidden")


def _not_supported(field: str, value: str, supported: list[str]) -> Cause:
    listed = ", ".join(f'"{s}"' for s in supported)
    return Cause(
        field, f'Unsupported value: "{value}": supported values: {listed}', "FieldValueNotSupported"
    )


def _list_causes(opts: ListOptions) -> list[Cause]:
    causes: list[Cause] = []
    match = opts.match
    if match:
        if not opts.resource_version:
            causes.append(
                _forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                )
            )
        if opts.continue_token:
            causes.append(
                _forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                )
            )
        if match not in (EXACT, NOT_OLDER_THAN):
            causes.append(
                _not_supported("resourceVersionMatch", match, [EXACT, NOT_OLDER_THAN, ""])
            )
        if match == EXACT and opts.resource_version == "0":
            causes.append(
                _forbidden(
                    "resourceVersionMatch",
                    'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                )
            )
    if opts.send_initial_events is not None:
        causes.append(_forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    return causes


def _watch_causes(opts: ListOptions) -> list[Cause]:
    causes: list[Cause] = []
    match = opts.match
    if opts.send_initial_events is not None and match != NOT_OLDER_THAN:
        causes.append(
            _forbidden(
                "resourceVersionMatch",
                f"sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}",
            )
        )
    if match:
        if opts.send_initial_events is None:
            causes.append(
                _forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                )
            )
        if match != NOT_OLDER_THAN:
            causes.append(_not_supported("resourceVersionMatch", match, [NOT_OLDER_THAN]))
        if opts.continue_token:
            causes.append(
                _forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                )
            )
    return causes


def too_large(requested: int, current: int) -> ApiError:
    """Kubernetes' answer to a resourceVersion the store has not reached."""
    return ApiError(
        504,
        "Timeout",
        f"Too large resource version: {requested}, current: {current}",
        causes=[Cause("", "Too large resource version", "ResourceVersionTooLarge")],
        retry_after=1,
    )


async def require_reached(registry: Registry, revision: int) -> None:
    """504 unless the store has reached `revision`."""
    current = await registry.store.revision()
    if revision > current:
        raise too_large(revision, current)


async def read_list(
    registry: Registry,
    rt: ResourceType,
    ns: str | None,
    match: Matcher | None,
    limit: int,
    opts: ListOptions,
) -> ListResult:
    """A list as `opts` asks: the newest state, or exactly one revision
    (`Exact`, or a resourceVersion with a limit and no match, as Kubernetes
    pages). NotOlderThan is answered with the newest state."""
    revision = opts.revision()
    if opts.continue_token:
        if revision is not None:
            raise errors.bad_request(
                "specifying resource version is not allowed when using continue"
            )
        return await registry.list(
            rt, ns, match=match, limit=limit, continue_token=opts.continue_token
        )
    if revision is None:
        return await registry.list(rt, ns, match=match, limit=limit)
    await require_reached(registry, revision)
    exact = opts.match == EXACT or (not opts.match and limit > 0)
    return await registry.list(
        rt, ns, match=match, limit=limit, revision=revision if exact else None
    )
