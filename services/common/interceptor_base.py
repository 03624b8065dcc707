"""The shared shape of the chassis's server interceptors: wrap each method's handler once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, cast, override

import grpc
import structlog

# Re-exported: the policy is the auth interceptor's input.

type Unary = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
type Stream = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]

log = structlog.get_logger("grpc")


# Probes (Envoy's every second, the kubelet's) log at debug level only.
HEALTH_METHOD_PREFIX = "/grpc.health.v1.Health/"

# The retry advice sent with a store outage: long enough for a pool to reconnect.
DEPENDENCY_RETRY_AFTER = timedelta(seconds=1)


def _code_name(context: grpc.aio.ServicerContext[Any, Any], failed: bool) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return "UNKNOWN" if failed else "OK"


class MethodHandlers:
    """The wrapped handler of each method, built on its first call and reused after.

    grpc.aio asks every interceptor for a handler on every call; wrapping anew each time
    (closures and a handler tuple per interceptor) cost a cached read several per cent of
    its CPU. A method's inner handler is the same object from call to call, so its wrapper
    is too; a different inner handler (never in practice) gets a fresh wrapper.
    """

    def __init__(self) -> None:
        self._built: dict[
            str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]
        ] = {}

    def get(
        self,
        method: str,
        handler: grpc.RpcMethodHandler[Any, Any],
        build: Callable[[], grpc.RpcMethodHandler[Any, Any]],
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """The wrapper `build` makes of `handler`, built once per method."""
        built = self._built.get(method)
        if built is not None and built[0] is handler:
            return built[1]
        wrapped = build()
        self._built[method] = (handler, wrapped)
        return wrapped


def with_behaviour(
    handler: grpc.RpcMethodHandler[Any, Any],
    behaviour: Callable[..., Any],
    *,
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` of the same kind and serializers, running `behaviour` instead.

    `behaviour` is a coroutine function for a unary-unary handler and an async generator
    function for a unary-stream one: grpc.aio picks the streaming path by inspecting it,
    and would try to iterate a returned async generator synchronously and fail.
    """
    deserializer = request_deserializer or handler.request_deserializer
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            behaviour,
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=deserializer,
        response_serializer=handler.response_serializer,
    )


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Wraps each method's handler once (`_wrap`) and serves that wrapper on later calls."""

    def __init__(self) -> None:
        self._handlers = MethodHandlers()

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The inner handler, wrapped unless it is missing or `_wraps` leaves its method out."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self._wraps(method):
            return handler
        return self._handlers.get(method, handler, lambda: self._wrap(method, handler))

    def _wraps(self, method: str) -> bool:
        """Whether `method` gets a wrapper; every method unless a subclass says otherwise."""
        return True

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        raise NotImplementedError


class _AroundInterceptor(WrappingInterceptor):
    """Wraps unary-unary and unary-stream behaviours with `around_*` hooks."""

    @override
    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.unary_unary is not None:
            inner_unary = cast(Unary, handler.unary_unary)

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                return await self.around_unary(method, request, context, inner_unary)

            return with_behaviour(handler, unary)
        if handler.unary_stream is not None:
            inner_stream = cast(Stream, handler.unary_stream)

            async def stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                async for item in self.around_stream(method, request, context, inner_stream):
                    yield item

            return with_behaviour(handler, stream)
        return handler  # client-streaming calls are not part of the API

    async def around_unary(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any], call: Unary
    ) -> Any:
        """Run `call`; subclasses add behaviour before and after."""
        return await call(request, context)

    async def around_stream(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any], call: Stream
    ) -> AsyncIterator[Any]:
        """Run `call` as a stream; subclasses add behaviour before and after."""
        async for item in call(request, context):
            yield item


class _BracketInterceptor[S](_AroundInterceptor):
    """Opens every call with `_begin` and closes it with `end`, told whether it failed.

    A streaming call fails when its stream raises before its last item; `end` runs
    whatever happens, on every path out of the call.
    """

    def _begin(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> S:
        raise NotImplementedError

    def end(self, state: S, context: grpc.aio.ServicerContext[Any, Any], failed: bool) -> None:
        """Close the call `_begin` opened; `failed` when it raised."""
        raise NotImplementedError

    @override
    async def around_unary(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any], call: Unary
    ) -> Any:
        state = self._begin(method, context)
        failed = True
        try:
            response = await call(request, context)
            failed = False
            return response
        finally:
            self.end(state, context, failed)

    @override
    async def around_stream(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any], call: Stream
    ) -> AsyncIterator[Any]:
        state = self._begin(method, context)
        failed = True
        try:
            async for item in call(request, context):
                yield item
            failed = False
        finally:
            self.end(state, context, failed)
