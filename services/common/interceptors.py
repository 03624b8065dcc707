"""Server interceptors, in this order: request id and logging, metrics, deadline, auth, errors.

The outermost interceptor sees every call first and last, so logs and metrics record the
status the error mapper (innermost) settled on. The server runs them, and the text guard
after them, as the steps of one interceptor (`interceptor_chain.ChassisInterceptor`).
"""

from __future__ import annotations

# The interceptors live in interceptor_base (the shared wrapper) and interceptor_kinds (the
# five kinds); this module is the one place the services and tests import them from.
from services.common.access import AccessPolicy
from services.common.interceptor_base import (
    DEPENDENCY_RETRY_AFTER,
    HEALTH_METHOD_PREFIX,
    MethodHandlers,
    Stream,
    Unary,
    _AroundInterceptor,
)
from services.common.interceptor_kinds import (
    DEFAULT_SLOW_CALL_MS,
    DEFAULT_SUCCESS_SAMPLE_EVERY,
    AuthInterceptor,
    ErrorMappingInterceptor,
    MetricsInterceptor,
    RequestLoggingInterceptor,
    sampled,
)
from services.common.metadata import REQUEST_ID_HEADER

__all__ = [
    "DEFAULT_SLOW_CALL_MS",
    "DEFAULT_SUCCESS_SAMPLE_EVERY",
    "DEPENDENCY_RETRY_AFTER",
    "HEALTH_METHOD_PREFIX",
    "REQUEST_ID_HEADER",
    "AccessPolicy",
    "AuthInterceptor",
    "ErrorMappingInterceptor",
    "MethodHandlers",
    "MetricsInterceptor",
    "RequestLoggingInterceptor",
    "Stream",
    "Unary",
    "_AroundInterceptor",
    "sampled",
]
