"""Domain errors: what went wrong, as a kind the gRPC layer maps to a status (pure Python)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import ClassVar

from services.common.reasons import ErrorReason

# The reason of every outage of a service's own store (PostgreSQL, MongoDB, Redis).
DEPENDENCY_UNAVAILABLE = ErrorReason.DEPENDENCY_UNAVAILABLE


class ErrorKind(Enum):
    """What kind of failure an error is; `services.common.rpc_status` maps each to a status.

    The names are those of the canonical gRPC codes, so a kind's name can be stored and
    compared with a status code's name.
    """

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request: its path and what is wrong with it."""

    field: str
    description: str


class DomainError(Exception):
    """A failure the caller can act on; the gRPC layer turns it into a status with details."""

    kind: ClassVar[ErrorKind] = ErrorKind.INTERNAL
    default_reason: ClassVar[str] = ErrorReason.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})


class InvalidArgument(DomainError):
    """The request is malformed; lists every offending field."""

    kind = ErrorKind.INVALID_ARGUMENT
    default_reason = ErrorReason.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation], *, reason: str | None = None) -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {summary}", reason=reason)
        self.violations = list(violations)


class NotFound(DomainError):
    """The named resource does not exist, or the caller may not know it does."""

    kind = ErrorKind.NOT_FOUND
    default_reason = ErrorReason.NOT_FOUND


class AlreadyExists(DomainError):
    """A resource with the same unique key exists."""

    kind = ErrorKind.ALREADY_EXISTS
    default_reason = ErrorReason.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    """The system is not in a state that allows the operation."""

    kind = ErrorKind.FAILED_PRECONDITION
    default_reason = ErrorReason.FAILED_PRECONDITION


class Aborted(DomainError):
    """A concurrency conflict; the caller should re-read and retry."""

    kind = ErrorKind.ABORTED
    default_reason = ErrorReason.ABORTED


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    kind = ErrorKind.PERMISSION_DENIED
    default_reason = ErrorReason.PERMISSION_DENIED


class Unauthenticated(DomainError):
    """The caller did not prove who they are."""

    kind = ErrorKind.UNAUTHENTICATED
    default_reason = ErrorReason.UNAUTHENTICATED


class ResourceExhausted(DomainError):
    """A quota or limit was hit; the caller should slow down."""

    kind = ErrorKind.RESOURCE_EXHAUSTED
    default_reason = ErrorReason.RESOURCE_EXHAUSTED


class Unavailable(DomainError):
    """A dependency is down; the call may succeed if retried later."""

    kind = ErrorKind.UNAVAILABLE
    default_reason = ErrorReason.UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after = retry_after


def dependency_unavailable(dependency: str, *, retry_after: timedelta) -> Unavailable:
    """The error for a store the service cannot reach; names its kind, never its address."""
    return Unavailable(
        f"the service's {dependency} store is unavailable; retry later",
        reason=DEPENDENCY_UNAVAILABLE,
        metadata={"dependency": dependency},
        retry_after=retry_after,
    )


class Violations:
    """Collects field violations while a request is validated, then raises them at once."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        """Record that `field` is invalid."""
        self._items.append(FieldViolation(field, description))

    def check(self, ok: bool, field: str, description: str) -> None:
        """Record a violation of `field` unless `ok`."""
        if not ok:
            self.add(field, description)

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self) -> None:
        """Raise InvalidArgument listing every recorded violation."""
        if self._items:
            raise InvalidArgument(self._items)
