"""The chassis's server interceptors fused into one: the same steps, in one wrapper per method.

grpc.aio asks every interceptor for the handler on every call and runs every wrapper as a
coroutine of its own: six interceptors cost a cached read a fifth of its CPU in that
machinery alone, and they parsed the call's metadata twice and looked metric series up by
their labels each time. `ChassisInterceptor` runs the steps of the chassis's interceptors
(see interceptor_kinds and text) in their order, outermost first:

1. request id and logging (`RequestLoggingInterceptor`),
2. metrics (`MetricsInterceptor`),
3. the incoming deadline (`deadlines.bind_incoming_deadline`),
4. auth (`AuthInterceptor`),
5. error mapping (`ErrorMappingInterceptor`),
6. the text guard (`text.check_request`, with the lenient deserializer),

each step beginning in that order and ending in the reverse one, as nested interceptors
would. The wrapper is built once per method, with what is constant per method (its metric
series, whether the text guard applies) worked out then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast, override

import grpc

from services.common.deadlines import bind_incoming_deadline, reset_incoming_deadline
from services.common.identity import reset_caller
from services.common.interceptor_base import Stream, Unary, WrappingInterceptor, with_behaviour
from services.common.interceptor_kinds import (
    AuthInterceptor,
    ErrorMappingInterceptor,
    MetricsInterceptor,
    RequestLoggingInterceptor,
)
from services.common.metadata import request_metadata
from services.common.text import check_request, guards, lenient


def _no_check(request: Any) -> None:
    """The text guard of a method it does not apply to (grpc's own services)."""


class ChassisInterceptor(WrappingInterceptor):
    """Logging, metrics, deadline, auth, error mapping and text guard, in one wrapper."""

    def __init__(
        self,
        logging: RequestLoggingInterceptor,
        metrics: MetricsInterceptor,
        auth: AuthInterceptor,
        errors: ErrorMappingInterceptor,
    ) -> None:
        self._logging = logging
        self._metrics = metrics
        self._auth = auth
        self._errors = errors
        super().__init__()

    @override
    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        logging, metrics, auth, errors = self._logging, self._metrics, self._auth, self._errors
        series = metrics.of(method)
        guarded = guards(method)
        check = check_request if guarded else _no_check
        deserializer = lenient(handler.request_deserializer) if guarded else None
        if handler.unary_unary is not None:
            inner_unary = cast(Unary, handler.unary_unary)

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                metadata = request_metadata(context)
                logged = logging.begin(method, metadata)
                counted = metrics.begin(series)
                failed = True
                try:
                    deadline = bind_incoming_deadline(context)
                    try:
                        caller = await auth.authenticate(method, context, metadata)
                        try:
                            try:
                                check(request)
                                response = await inner_unary(request, context)
                            except grpc.aio.AbortError:
                                raise
                            except Exception as error:
                                await errors.abort_for(method, context, error)
                                response = None  # abort_for raises; never reached
                        finally:
                            reset_caller(caller)
                    finally:
                        reset_incoming_deadline(deadline)
                    failed = False
                    return response
                finally:
                    try:
                        metrics.end(counted, context, failed)
                    finally:
                        logging.end(logged, context, failed)

            return with_behaviour(handler, unary, request_deserializer=deserializer)
        if handler.unary_stream is not None:
            inner_stream = cast(Stream, handler.unary_stream)

            # An async generator function itself: grpc.aio picks the streaming path by
            # inspecting the behaviour (see interceptor_base).
            async def stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                metadata = request_metadata(context)
                logged = logging.begin(method, metadata)
                counted = metrics.begin(series)
                failed = True
                try:
                    deadline = bind_incoming_deadline(context)
                    try:
                        caller = await auth.authenticate(method, context, metadata)
                        try:
                            try:
                                check(request)
                                async for item in inner_stream(request, context):
                                    yield item
                            except grpc.aio.AbortError:
                                raise
                            except Exception as error:
                                await errors.abort_for(method, context, error)
                        finally:
                            reset_caller(caller)
                    finally:
                        reset_incoming_deadline(deadline)
                    failed = False
                finally:
                    try:
                        metrics.end(counted, context, failed)
                    finally:
                        logging.end(logged, context, failed)

            return with_behaviour(handler, stream, request_deserializer=deserializer)
        return handler  # client-streaming calls are not part of the API
