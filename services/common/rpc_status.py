"""Domain errors <-> gRPC statuses with AIP-193 details, both ways, through grpcio-status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import google.rpc.code_pb2 as code_pb2
import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2
import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from services.common.errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    ErrorKind,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

# The one table from error kinds to canonical codes; the domain never sees a status code.
STATUS_CODES: Mapping[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.ABORTED: grpc.StatusCode.ABORTED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}
_KINDS: Mapping[grpc.StatusCode, ErrorKind] = {code: kind for kind, code in STATUS_CODES.items()}
_ERROR_CLASSES: Mapping[ErrorKind, type[DomainError]] = {
    ErrorKind.NOT_FOUND: NotFound,
    ErrorKind.ALREADY_EXISTS: AlreadyExists,
    ErrorKind.FAILED_PRECONDITION: FailedPrecondition,
    ErrorKind.ABORTED: Aborted,
    ErrorKind.PERMISSION_DENIED: PermissionDenied,
    ErrorKind.UNAUTHENTICATED: Unauthenticated,
    ErrorKind.RESOURCE_EXHAUSTED: ResourceExhausted,
    ErrorKind.INTERNAL: DomainError,
}


def status_code(kind: ErrorKind) -> grpc.StatusCode:
    """The canonical gRPC code of an error kind."""
    return STATUS_CODES[kind]


def error_status(error: DomainError, *, domain: str) -> status_pb2.Status:
    """The google.rpc.Status of `error`: ErrorInfo, then BadRequest and RetryInfo if any.

    Args:
        error: The domain error to report.
        domain: The ErrorInfo domain of the answering service (its settings say which).
    """
    status = status_pb2.Status(code=status_code(error.kind).value[0], message=error.message)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=error.metadata)
    status.details.add().Pack(info)
    if isinstance(error, InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        status.details.add().Pack(bad_request)
    if isinstance(error, Unavailable) and error.retry_after is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromTimedelta(error.retry_after)
        status.details.add().Pack(retry)
    return status


def to_grpc_status(error: DomainError, *, domain: str) -> grpc.Status:
    """The grpc.Status a server aborts with: code, message and grpc-status-details-bin."""
    status: grpc.Status = rpc_status.to_status(error_status(error, domain=domain))
    return status


def internal_status() -> grpc.Status:
    """The status for a bug: no internals leak to the caller."""
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
    )
    return status


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], status: grpc.Status) -> None:
    """End the RPC with `status` (grpc.aio contexts have no abort_with_status)."""
    await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)


@dataclass(frozen=True)
class RemoteError:
    """A failed call to another service, with the AIP-193 details it carried."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    violations: tuple[FieldViolation, ...] = ()
    retry_after: timedelta | None = None

    @property
    def kind(self) -> ErrorKind | None:
        """The error kind of the code, or None for codes no domain error has (DEADLINE_EXCEEDED...)."""
        return _KINDS.get(self.code)

    def to_domain_error(self) -> DomainError:
        """The same failure as our own domain error, keeping reason, metadata and violations.

        Codes without a kind (DEADLINE_EXCEEDED, UNKNOWN...) become Unavailable: the other
        service did not give a business answer, so a retry may help.
        """
        reason = self.reason or None
        kind = self.kind
        if kind is ErrorKind.INVALID_ARGUMENT:
            violations = self.violations or (FieldViolation("", self.message),)
            return InvalidArgument(violations, reason=reason)
        if kind is None or kind is ErrorKind.UNAVAILABLE:
            return Unavailable(
                self.message, reason=reason, metadata=self.metadata, retry_after=self.retry_after
            )
        return _ERROR_CLASSES[kind](self.message, reason=reason, metadata=self.metadata)


def remote_error(error: grpc.aio.AioRpcError) -> RemoteError:
    """Parse a failed call's status and rich details (via grpc_status.from_call).

    A peer that sent no details, or details that do not decode or disagree with the
    status line, yields a RemoteError with the code and message only.
    """
    code = error.code()
    message = error.details() or ""
    try:
        status: status_pb2.Status | None = rpc_status.from_call(error)
    except (ValueError, DecodeError):
        status = None
    if status is None:
        return RemoteError(code=code, message=message)
    reason, domain = "", ""
    metadata: dict[str, str] = {}
    violations: tuple[FieldViolation, ...] = ()
    retry_after: timedelta | None = None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Unpack(bad_request):
            violations = tuple(
                FieldViolation(v.field, v.description) for v in bad_request.field_violations
            )
        elif detail.Unpack(retry):
            retry_after = retry.retry_delay.ToTimedelta()
    return RemoteError(
        code=code,
        message=message,
        reason=reason,
        domain=domain,
        metadata=metadata,
        violations=violations,
        retry_after=retry_after,
    )
