"""Generated from proto/marketplace/common/v1/error_reason.proto by `nox -s gen`; do not edit."""

from enum import StrEnum, unique


@unique
class ErrorReason(StrEnum):
    """marketplace.common.v1.ErrorReason: the ErrorInfo.reason values, without the prefix."""

    # The request is malformed (INVALID_ARGUMENT); a BadRequest detail lists every offending
    # field.
    INVALID_ARGUMENT = "INVALID_ARGUMENT"

    # A resource is missing and no more specific reason applies (NOT_FOUND).
    NOT_FOUND = "NOT_FOUND"

    # A resource with the same unique key exists and no more specific reason applies
    # (ALREADY_EXISTS).
    ALREADY_EXISTS = "ALREADY_EXISTS"

    # The system's state does not allow the call and no more specific reason applies
    # (FAILED_PRECONDITION).
    FAILED_PRECONDITION = "FAILED_PRECONDITION"

    # A concurrent change got in the way; read again and retry (ABORTED).
    ABORTED = "ABORTED"

    # The caller may not do this and no more specific reason applies (PERMISSION_DENIED).
    PERMISSION_DENIED = "PERMISSION_DENIED"

    # The caller did not prove who they are and no more specific reason applies
    # (UNAUTHENTICATED).
    UNAUTHENTICATED = "UNAUTHENTICATED"

    # A quota or limit was hit and no more specific reason applies (RESOURCE_EXHAUSTED).
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"

    # A dependency is down and no more specific reason applies; retry later (UNAVAILABLE).
    UNAVAILABLE = "UNAVAILABLE"

    # A domain error without a more specific kind (INTERNAL); bugs answer a bare INTERNAL
    # without ErrorInfo.
    INTERNAL = "INTERNAL"

    # The service's own store (PostgreSQL, MongoDB or Redis) cannot be reached; metadata
    # "dependency" names its kind and RetryInfo says when to retry (UNAVAILABLE).
    DEPENDENCY_UNAVAILABLE = "DEPENDENCY_UNAVAILABLE"

    # The RPC needs a bearer access token and none was sent (UNAUTHENTICATED).
    TOKEN_MISSING = "TOKEN_MISSING"

    # The access token (or a mailed one-time token) is malformed, forged, or signed by an
    # unknown key (UNAUTHENTICATED, or INVALID_ARGUMENT for a mailed token).
    TOKEN_INVALID = "TOKEN_INVALID"

    # The access token has expired; refresh it (UNAUTHENTICATED).
    TOKEN_EXPIRED = "TOKEN_EXPIRED"

    # The service could not fetch the signing keys to check a token (UNAVAILABLE).
    JWKS_UNAVAILABLE = "JWKS_UNAVAILABLE"

    # An internal RPC was called without a mesh certificate naming a service (UNAUTHENTICATED).
    INTERNAL_ONLY = "INTERNAL_ONLY"

    # The caller lacks the role the RPC needs (PERMISSION_DENIED).
    ROLE_REQUIRED = "ROLE_REQUIRED"

    # An internal RPC was called with a valid mesh certificate of a service the contract does
    # not list among the RPC's callers (PERMISSION_DENIED); "caller" names it.
    CALLER_NOT_ALLOWED = "CALLER_NOT_ALLOWED"
