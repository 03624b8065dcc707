"""Domain errors and their mapping to gRPC statuses with AIP-193 error details."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import google.rpc.code_pb2 as code_pb2
import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2
import grpc

ERROR_DOMAIN = "marketplace.example.com"
# The reason of every outage of a service's own store (PostgreSQL, MongoDB, Redis).
DEPENDENCY_UNAVAILABLE = "DEPENDENCY_UNAVAILABLE"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request: its path and what is wrong with it."""

    field: str
    description: str


class DomainError(Exception):
    """A failure the caller can act on; the interceptor turns it into a gRPC status."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    default_reason: ClassVar[str] = "INTERNAL"

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

    def to_status(self) -> status_pb2.Status:
        """Build the google.rpc.Status carried in grpc-status-details-bin."""
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata
        )
        status.details.add().Pack(info)
        return status


class InvalidArgument(DomainError):
    """The request is malformed; lists every offending field."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, violations: Sequence[FieldViolation], *, reason: str | None = None) -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {summary}", reason=reason)
        self.violations = list(violations)

    def to_status(self) -> status_pb2.Status:
        """Add a BadRequest detail with the field violations."""
        status = super().to_status()
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in self.violations
            ]
        )
        status.details.add().Pack(bad_request)
        return status


class NotFound(DomainError):
    """The named resource does not exist, or the caller may not know it does."""

    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    """A resource with the same unique key exists."""

    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The system is not in a state that allows the operation."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrency conflict; the caller should re-read and retry."""

    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    """The caller did not prove who they are."""

    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    """A quota or limit was hit; the caller should slow down."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    """A dependency is down; the call may succeed if retried later."""

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"

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

    def to_status(self) -> status_pb2.Status:
        """Add a RetryInfo detail when the error knows when a retry makes sense."""
        status = super().to_status()
        if self.retry_after is not None:
            retry = error_details_pb2.RetryInfo()
            retry.retry_delay.FromTimedelta(self.retry_after)
            status.details.add().Pack(retry)
        return status


def dependency_unavailable(dependency: str, *, retry_after: timedelta) -> Unavailable:
    """The error for a store the service cannot reach; names its kind, never its address."""
    return Unavailable(
        f"the service's {dependency} store is unavailable; retry later",
        reason=DEPENDENCY_UNAVAILABLE,
        metadata={"dependency": dependency},
        retry_after=retry_after,
    )


def internal_error_status() -> status_pb2.Status:
    """The status for a bug: no internals leak to the caller."""
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")


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
