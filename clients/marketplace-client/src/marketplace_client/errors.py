"""google.rpc error details decoded into typed exceptions that carry the reason."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request (google.rpc.BadRequest.FieldViolation)."""

    field: str
    description: str
    reason: str = ""


# eq=False: an exception stays hashable (tracebacks keep them in sets).
@dataclass(eq=False)
class MarketplaceError(Exception):
    """A call that failed, with its AIP-193 details.

    Attributes:
        code: The gRPC status code.
        message: The server's message, for people.
        reason: ErrorInfo.reason (UPPER_SNAKE), the field programs branch on; "" if absent.
        domain: ErrorInfo.domain, the service that gave the reason.
        metadata: ErrorInfo.metadata.
        field_violations: BadRequest field violations, for invalid input.
        retry_delay: RetryInfo.retry_delay in seconds, when the server says when to retry.
    """

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: list[FieldViolation] = field(default_factory=list)
    retry_delay: float | None = None

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.code.name}{reason}: {self.message}"


class InvalidArgumentError(MarketplaceError):
    """INVALID_ARGUMENT: the request is wrong; see field_violations."""


class NotFoundError(MarketplaceError):
    """NOT_FOUND."""


class AlreadyExistsError(MarketplaceError):
    """ALREADY_EXISTS."""


class PermissionDeniedError(MarketplaceError):
    """PERMISSION_DENIED: signed in, but not allowed."""


class UnauthenticatedError(MarketplaceError):
    """UNAUTHENTICATED: no, expired or wrong credentials."""


class FailedPreconditionError(MarketplaceError):
    """FAILED_PRECONDITION: the system is not in the state the call needs."""


class AbortedError(MarketplaceError):
    """ABORTED: a conflict (for example an etag mismatch); read again and retry."""


class ResourceExhaustedError(MarketplaceError):
    """RESOURCE_EXHAUSTED: a limit; retry_delay says when to try again."""


class UnavailableError(MarketplaceError):
    """UNAVAILABLE: the service or one it depends on is down; safe to retry later."""


class DeadlineExceededError(MarketplaceError):
    """DEADLINE_EXCEEDED: the outcome is unknown; retry with the same idempotency key."""


_BY_CODE: dict[grpc.StatusCode, type[MarketplaceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


def from_status(
    code: grpc.StatusCode, message: str, status: status_pb2.Status | None
) -> MarketplaceError:
    """The typed exception for a status code and its google.rpc.Status, if any.

    Args:
        code: The gRPC status code.
        message: The status message.
        status: The rich status from grpc-status-details-bin, or None.

    Returns:
        The exception of the code's class, with every detail it understood.
    """
    error = _BY_CODE.get(code, MarketplaceError)(code, message)
    for detail in status.details if status is not None else []:
        # Unpack answers False when the Any holds another type.
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            error.reason, error.domain = info.reason, info.domain
            error.metadata = dict(info.metadata)
        elif detail.Unpack(bad):
            error.field_violations.extend(
                FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations
            )
        elif detail.Unpack(retry):
            error.retry_delay = retry.retry_delay.ToTimedelta().total_seconds()
    return error


def from_rpc_error(error: grpc.aio.AioRpcError) -> MarketplaceError:
    """Decode a failed call's status and details (grpc-status-details-bin).

    Args:
        error: What the stub raised.

    Returns:
        The typed exception; raise it `from error`.
    """
    try:
        status: status_pb2.Status | None = rpc_status.from_call(error)
    except (ValueError, DecodeError):
        # The details disagree with the status line (a proxy rewrote one) or do not
        # decode: trust the line.
        status = None
    return from_status(error.code(), error.details() or "", status)


async def checked[T](call: Awaitable[T]) -> T:
    """Await a stub call, turning its failure into a typed MarketplaceError.

    Args:
        call: The stub call.

    Returns:
        What the call answered.
    """
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error) from error
