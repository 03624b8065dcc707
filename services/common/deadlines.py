"""Deadlines on every outgoing call, and propagated: none outlives the incoming call.

The server interceptor records when the incoming call's deadline falls; the client
interceptors of every mesh channel give each outgoing call the channel's default timeout
when it sets none, capped at what remains of the incoming call's. Calls made outside any
incoming call (workers, start-up) get the default or their own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import Context, ContextVar, copy_context
from typing import Any

import grpc

# time.monotonic() at which the incoming call being served expires; None without one.
_INCOMING_DEADLINE: ContextVar[float | None] = ContextVar("incoming_deadline", default=None)


def remaining_seconds() -> float | None:
    """Seconds left of the incoming call's deadline, or None when there is none."""
    deadline = _INCOMING_DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


def outliving_context() -> Context:
    """A copy of the current context without the incoming call's deadline.

    For work that must finish after the incoming call is gone (a checkout saga shielded
    from its RPC): run its task in this context (`asyncio.create_task(..., context=)`), and
    its calls get their own deadlines instead of the caller's remaining time.
    """
    context = copy_context()
    context.run(_INCOMING_DEADLINE.set, None)
    return context


def bind_incoming_deadline(context: grpc.aio.ServicerContext[Any, Any]) -> object:
    """Record the deadline of the call `context` serves; returns a token to reset it."""
    remaining = context.time_remaining()
    deadline = None if remaining is None else time.monotonic() + remaining
    return _INCOMING_DEADLINE.set(deadline)


def reset_incoming_deadline(token: object) -> None:
    """Forget the deadline bound by `bind_incoming_deadline`."""
    _INCOMING_DEADLINE.reset(token)  # type: ignore[arg-type]


def capped_timeout(timeout: float | None, default: float) -> float:
    """`timeout` (or `default`), shortened to the incoming call's remaining time (>= 0)."""
    chosen = default if timeout is None else timeout
    remaining = remaining_seconds()
    if remaining is None:
        return chosen
    return min(chosen, max(remaining, 0.0))


class _Deadlines:
    def __init__(self, default: float) -> None:
        self._default = default

    def _capped(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        timeout = capped_timeout(details.timeout, self._default)
        if timeout == details.timeout:
            return details
        return grpc.aio.ClientCallDetails(
            details.method, timeout, details.metadata, details.credentials, details.wait_for_ready
        )


class _UnaryUnary(_Deadlines, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(self._capped(client_call_details), request)


class _UnaryStream(_Deadlines, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> AsyncIterator[Any] | Any:
        return await continuation(self._capped(client_call_details), request)


def deadline_interceptors(default_timeout: float) -> list[grpc.aio.ClientInterceptor]:
    """The client interceptors that set and propagate deadlines.

    Args:
        default_timeout: Seconds a call that sets no deadline may take.
    """
    return [_UnaryUnary(default_timeout), _UnaryStream(default_timeout)]
