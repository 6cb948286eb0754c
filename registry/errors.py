"""Domain errors shared by every Rogatory domain package.

They say *what* is wrong in domain words; `services/` maps them to gRPC status codes
with `google.rpc` details. Keeping them free of gRPC lets the same command handler
serve a gRPC call, a CLI call and a NATS-triggered call.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: `field` is a dotted path into the request (AIP-193 BadRequest)."""

    field: str
    description: str
    reason: str = ""


class DomainError(Exception):
    """Base of every error a command may raise on purpose.

    `reason` is an UPPER_SNAKE_CASE constant a client can switch on (ErrorInfo.reason).
    """

    reason: str = "DOMAIN_ERROR"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(DomainError):
    """Bad request fields. Its reason (ErrorInfo.reason) is the one given, else the first field
    violation's (`first_reason`), else INVALID_ARGUMENT."""

    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        violations: list[FieldViolation] | None = None,
        *,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ):
        self.violations: list[FieldViolation] = list(violations or [])
        super().__init__(message, reason=reason or first_reason(self.violations), metadata=metadata)

    @classmethod
    def of(cls, violations: list[FieldViolation], *, reason: str | None = None) -> InvalidArgument:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
        return cls(summary or "invalid request", violations, reason=reason)


def first_reason(violations: list[FieldViolation]) -> str:
    """The reason of the first violation that has one (violations come in request field order,
    so it is the first problem a client fixes); INVALID_ARGUMENT when none has."""
    return next((v.reason for v in violations if v.reason), InvalidArgument.reason)


class NotFound(DomainError):
    reason = "NOT_FOUND"

    def __init__(self, resource_type: str, name: str):
        super().__init__(f"{resource_type} {name!r} not found", metadata={"resource_type": resource_type, "name": name})
        self.resource_type = resource_type
        self.name = name


class AlreadyExists(DomainError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrent change won: the caller's etag / version is stale (AIP-154)."""

    reason = "ABORTED"


class PermissionDenied(DomainError):
    reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    reason = "UNAUTHENTICATED"


@dataclass
class Violations:
    """Collects every violation of a request before failing, so a caller fixes all at once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str, reason: str = "") -> None:
        self.items.append(FieldViolation(field_path, description, reason))

    def extend(self, other: list[FieldViolation], prefix: str = "") -> None:
        for v in other:
            path = f"{prefix}.{v.field}" if prefix and v.field else (prefix or v.field)
            self.items.append(FieldViolation(path, v.description, v.reason))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, reason: str | None = None) -> None:
        if self.items:
            raise InvalidArgument.of(self.items, reason=reason)


def parse_enum(kind: type[E], value: str, field: str, violations: Violations) -> E | None:
    """The member named `value`, or None after recording REQUIRED ("" = unspecified) or BAD_VALUE."""
    member = _members(kind).get(value)  # not kind(value): this runs per agency reply, and the enum call is slow
    if member is None:
        allowed = ", ".join(member.value for member in kind)
        violations.add(field, f"must be one of {allowed}", "REQUIRED" if not value else "BAD_VALUE")
    return member


@functools.cache
def _members(kind: type[E]) -> dict[str, E]:
    return {member.value: member for member in kind}
