"""API errors, rendered as Kubernetes `Status` objects, and the error of an unreachable node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DataDirLocked(Exception):
    """Another control plane holds this data dir (the store raises it)."""


@dataclass(frozen=True)
class Cause:
    """One reason an object is invalid: a field path and what is wrong with it."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass
class ApiError(Exception):
    """An error the API server answers with a `Status` object."""

    code: int
    reason: str
    message: str
    kind: str = ""
    name: str = ""
    group: str = ""
    causes: list[Cause] = field(default_factory=list)
    retry_after: int | None = None

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [
                {"reason": c.reason, "message": c.message, "field": c.field} for c in self.causes
            ]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        return status_body(
            "Failure", message=self.message, reason=self.reason, details=details, code=self.code
        )

    @classmethod
    def from_status(cls, body: dict[str, Any], code: int) -> ApiError:
        details = body.get("details") or {}
        causes = [
            Cause(c.get("field", ""), c.get("message", ""), c.get("reason", ""))
            for c in details.get("causes") or []
        ]
        return cls(
            code=int(body.get("code") or code),
            reason=str(body.get("reason") or ""),
            message=str(body.get("message") or f"HTTP {code}"),
            kind=str(details.get("kind") or ""),
            name=str(details.get("name") or ""),
            group=str(details.get("group") or ""),
            causes=causes,
        )


def status_body(
    status: str,
    *,
    message: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
    code: int = 0,
) -> dict[str, Any]:
    """A `Status` object, its fields in kube-apiserver's order and left out
    when empty as there (`metadata` always present): the one place they are made."""
    optional = {"message": message, "reason": reason, "details": details, "code": code}
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": status,
        **{key: value for key, value in optional.items() if value},
    }


class TransportError(ConnectionError):
    """The agent could not be reached; the message says why, for operators."""


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    qual = f"{resource}.{group}" if group else resource
    return ApiError(404, "NotFound", f'{qual} "{name}" not found', resource, name, group)


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    qual = f"{resource}.{group}" if group else resource
    return ApiError(409, "AlreadyExists", f'{qual} "{name}" already exists', resource, name, group)


def conflict(resource: str, name: str, group: str = "", why: str = "") -> ApiError:
    qual = f"{resource}.{group}" if group else resource
    why = (
        why
        or "the object has been modified; please apply your changes to the latest version and try again"
    )
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qual} "{name}": {why}',
        resource,
        name,
        group,
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> ApiError:
    joined = ", ".join(str(c) for c in causes)
    return ApiError(
        422, "Invalid", f'{kind} "{name}" is invalid: {joined}', kind, name, group, causes
    )


def insufficient_storage(message: str) -> ApiError:
    """507: the store cannot take the write (its disk is full); nothing was written."""
    return ApiError(507, "InternalError", message)


def internal_error() -> ApiError:
    """A failure of the server's own: the log has the details, the client a Status."""
    return ApiError(500, "InternalError", "an internal error occurred; see the server log")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def request_entity_too_large(
    message: str, kind: str = "", name: str = "", group: str = ""
) -> ApiError:
    return ApiError(
        413, "RequestEntityTooLarge", f"Request entity too large: {message}", kind, name, group
    )


def check_type(obj: dict[str, Any], api_version: str, kind: str) -> None:
    """Default a body's apiVersion and kind to those of its path; 400 when it
    names others."""
    given = obj.setdefault("apiVersion", api_version), obj.setdefault("kind", kind)
    if given != (api_version, kind):
        raise bad_request(
            f"the API version in the data ({given[0]}) and kind ({given[1]}) "
            f"do not match the request path, which expects {api_version} {kind}"
        )


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format: {content_type}",
    )
