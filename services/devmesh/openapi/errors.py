"""The error body, the error responses and the security scheme of the document."""

from __future__ import annotations

from services.devmesh.openapi.wellknown import Schema

STATUS_SCHEMA: Schema = {
    "type": "object",
    "description": (
        "An error. A gRPC error of a service is google.rpc.Status as JSON: `code` is the "
        "gRPC status code and `details` carries google.rpc error details (ErrorInfo with "
        "its `reason`, BadRequest with field violations, ...). An error the edge answers "
        "itself (a missing or invalid token, a rate limit, an unknown path, a body too "
        "large, no healthy service) has `code` set to the HTTP status and no details."
    ),
    "properties": {
        "code": {"type": "integer", "format": "int32", "examples": [3]},
        "message": {"type": "string", "examples": ["page_size must not be negative"]},
        "details": {"type": "array", "items": {"$ref": "#/components/schemas/Any"}},
    },
    "required": ["code", "message"],
}

# What each error status means at this edge; the transcoder maps gRPC codes to HTTP
# statuses the way google.rpc.Code documents, and the edge adds its own local replies.
ERROR_MEANINGS = {
    "400": "Invalid input (INVALID_ARGUMENT, OUT_OF_RANGE), a precondition that does not "
    "hold (FAILED_PRECONDITION), or a request body or parameter the transcoder cannot parse.",
    "401": "No valid access token (UNAUTHENTICATED), or a token that was sent is invalid.",
    "403": "The caller may not do this (PERMISSION_DENIED).",
    "404": "The resource does not exist or is not visible to the caller (NOT_FOUND).",
    "409": "A conflict: it exists already (ALREADY_EXISTS) or a concurrent change won (ABORTED).",
    "413": "The request body is larger than the edge accepts.",
    "414": "The request URI is longer than the edge accepts.",
    "431": "The request's headers are larger than the edge accepts.",
    "429": "Too many requests (RESOURCE_EXHAUSTED or the edge's rate limit); see Retry-After.",
    "503": "A service or one of its dependencies is unavailable (UNAVAILABLE); retry later.",
    "504": "The service did not answer in time (DEADLINE_EXCEEDED).",
}


def response_name(status: str) -> str:
    """The name in components/responses of the error response of an HTTP status."""
    return {
        "400": "BadRequest",
        "401": "Unauthorized",
        "403": "Forbidden",
        "404": "NotFound",
        "409": "Conflict",
        "413": "PayloadTooLarge",
        "414": "UriTooLong",
        "429": "TooManyRequests",
        "431": "RequestHeaderFieldsTooLarge",
        "503": "Unavailable",
        "504": "GatewayTimeout",
    }[status]
