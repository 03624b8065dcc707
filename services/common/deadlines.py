"""Deadline propagation: an outgoing call never outlives the incoming call it serves.

The server interceptor records when the incoming call's deadline falls; the client
interceptors of every mesh channel cap each outgoing call's timeout at what remains of
it. Calls made outside any incoming call (workers, start-up) keep their own timeout.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc

# time.monotonic() at which the incoming call being served expires; None without one.
_INCOMING_DEADLINE: ContextVar[float | None] = ContextVar("incoming_deadline", default=None)


def remaining_seconds() -> float | None:
    """Seconds left of the incoming call's deadline, or None when there is none."""
    deadline = _INCOMING_DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


def bind_incoming_deadline(context: grpc.aio.ServicerContext[Any, Any]) -> object:
    """Record the deadline of the call `context` serves; returns a token to reset it."""
    remaining = context.time_remaining()
    deadline = None if remaining is None else time.monotonic() + remaining
    return _INCOMING_DEADLINE.set(deadline)


def reset_incoming_deadline(token: object) -> None:
    """Forget the deadline bound by `bind_incoming_deadline`."""
    _INCOMING_DEADLINE.reset(token)  # type: ignore[arg-type]


def capped_timeout(timeout: float | None) -> float | None:
    """`timeout`, shortened to the incoming call's remaining time (never below zero)."""
    remaining = remaining_seconds()
    if remaining is None:
        return timeout
    remaining = max(remaining, 0.0)
    return remaining if timeout is None else min(timeout, remaining)


def _capped(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    timeout = capped_timeout(details.timeout)
    if timeout == details.timeout:
        return details
    return grpc.aio.ClientCallDetails(
        details.method, timeout, details.metadata, details.credentials, details.wait_for_ready
    )


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(_capped(client_call_details), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> AsyncIterator[Any] | Any:
        return await continuation(_capped(client_call_details), request)


def deadline_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """The client interceptors that propagate the incoming deadline."""
    return [_UnaryUnary(), _UnaryStream()]
