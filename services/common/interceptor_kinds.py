"""The logging, metrics, deadline, auth and error-mapping interceptors of the chassis."""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any, override

import grpc
import structlog
from prometheus_client import Counter

# Re-exported: the policy is the auth interceptor's input.
from services.common.access import AccessPolicy
from services.common.auth import TokenVerifier, reset_caller, set_caller
from services.common.dependencies import unavailable_dependency
from services.common.errors import (
    DomainError,
    PermissionDenied,
    Unauthenticated,
    dependency_unavailable,
)
from services.common.interceptor_base import (
    DEPENDENCY_RETRY_AFTER,
    HEALTH_METHOD_PREFIX,
    Stream,
    Unary,
    _AroundInterceptor,
    _BracketInterceptor,
    _code_name,
)
from services.common.mesh_identity import caller_service
from services.common.metadata import RequestMetadata, request_metadata
from services.common.metrics import GrpcMetrics
from services.common.reasons import ErrorReason
from services.common.rpc_status import abort_with, internal_status, to_grpc_status

log = structlog.get_logger("grpc")


# One request in this many has its successful calls logged; the metrics count every call.
# Failed and slow calls are always logged.
DEFAULT_SUCCESS_SAMPLE_EVERY = 100
DEFAULT_SLOW_CALL_MS = 500.0


def sampled(request_id: str, every: int) -> bool:
    """Whether the successes of request `request_id` are logged: 1 request in `every`.

    Decided by the request id, which travels with every internal call, so each service
    makes the same choice: a sampled request is logged from the edge to the last service.
    """
    return every <= 1 or zlib.crc32(request_id.encode()) % every == 0


class RequestLoggingInterceptor(_BracketInterceptor[tuple[str, str, float]]):
    """Binds a request id to the logs of the call and logs its outcome and duration.

    Rendering a JSON line per call cost a cached read a tenth of its CPU, and the lines
    said what the metrics already count. So successful calls are logged for one request in
    `sample_every` (the line says so), while every failure and every call slower than
    `slow_ms` is logged. Each line carries its call's request id and trace ids.
    """

    def __init__(
        self,
        *,
        sample_every: int = DEFAULT_SUCCESS_SAMPLE_EVERY,
        slow_ms: float = DEFAULT_SLOW_CALL_MS,
    ) -> None:
        super().__init__()
        self._sample_every = max(1, sample_every)
        self._slow_ms = slow_ms

    @override
    def _begin(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[str, str, float]:
        return self.begin(method, request_metadata(context))

    def begin(self, method: str, metadata: RequestMetadata) -> tuple[str, str, float]:
        """Bind the call's request id (the caller's, or a new one) and note when it began."""
        request_id = metadata.request_id or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id, rpc=method)
        return method, request_id, time.perf_counter()

    @override
    def end(
        self,
        state: tuple[str, str, float],
        context: grpc.aio.ServicerContext[Any, Any],
        failed: bool,
    ) -> None:
        method, request_id, started = state
        try:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            code = _code_name(context, failed)
            if method.startswith(HEALTH_METHOD_PREFIX):
                # Probes (Envoy's every second, the kubelet's) would be most of the log.
                log.debug("rpc_finished", code=code, duration_ms=duration_ms)
            elif code != "OK" or duration_ms >= self._slow_ms:
                log.info("rpc_finished", code=code, duration_ms=duration_ms)
            elif sampled(request_id, self._sample_every):
                log.info(
                    "rpc_finished",
                    code=code,
                    duration_ms=duration_ms,
                    sampled_one_in=self._sample_every,
                )
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "rpc")


class MethodMetrics:
    """One method's series: looked up once, not by their labels on every call."""

    def __init__(self, metrics: GrpcMetrics, method: str) -> None:
        _, self._service, self._name = method.split("/")
        self._handled_family = metrics.handled
        self.started = metrics.started.labels(self._service, self._name)
        self.latency = metrics.latency.labels(self._service, self._name)
        self._handled: dict[str, Counter] = {}

    def handled(self, code: str) -> Counter:
        """The counter of the method's calls that ended with `code`."""
        counter = self._handled.get(code)
        if counter is None:
            counter = self._handled_family.labels(self._service, self._name, code)
            self._handled[code] = counter
        return counter


class MetricsInterceptor(_BracketInterceptor[tuple[MethodMetrics, float]]):
    """Counts calls by method and status and records their latency."""

    def __init__(self, metrics: GrpcMetrics) -> None:
        super().__init__()
        self._metrics = metrics
        self._methods: dict[str, MethodMetrics] = {}

    def of(self, method: str) -> MethodMetrics:
        """The series of `method`, made on its first call."""
        found = self._methods.get(method)
        if found is None:
            found = self._methods[method] = MethodMetrics(self._metrics, method)
        return found

    @override
    def _begin(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[MethodMetrics, float]:
        return self.begin(self.of(method))

    @staticmethod
    def begin(series: MethodMetrics) -> tuple[MethodMetrics, float]:
        """Count the call as started and note when."""
        series.started.inc()
        return series, time.perf_counter()

    @override
    def end(
        self,
        state: tuple[MethodMetrics, float],
        context: grpc.aio.ServicerContext[Any, Any],
        failed: bool,
    ) -> None:
        series, started = state
        series.latency.observe(time.perf_counter() - started)
        series.handled(_code_name(context, failed)).inc()


class AuthInterceptor(_AroundInterceptor):
    """Authorises callers: internal RPCs by the mesh certificate, the rest by bearer token.

    Binds the token's caller for the handler; enforces the contract's access policy.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        policy: AccessPolicy,
        *,
        trust_domain: str,
        error_domain: str,
    ) -> None:
        super().__init__()
        self._verifier = verifier
        self._policy = policy
        self._trust_domain = trust_domain
        self._error_domain = error_domain

    @override
    async def around_unary(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any], call: Unary
    ) -> Any:
        token = await self._authenticate(method, context)
        try:
            return await call(request, context)
        finally:
            reset_caller(token)

    @override
    async def around_stream(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any], call: Stream
    ) -> AsyncIterator[Any]:
        token = await self._authenticate(method, context)
        try:
            async for item in call(request, context):
                yield item
        finally:
            reset_caller(token)

    async def _authenticate(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await self.authenticate(method, context, request_metadata(context))

    async def authenticate(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any], metadata: RequestMetadata
    ) -> Any:
        """Admit the call (or abort it) and bind its caller; the token `reset_caller` takes."""
        try:
            if self._policy.is_internal(method):
                self._authorise_service(method, context)
            authorization = metadata.authorization
            caller = None
            if authorization:
                scheme, _, token = authorization.partition(" ")
                if scheme.lower() != "bearer" or not token:
                    raise Unauthenticated(
                        "authorization must be 'Bearer <token>'", reason=ErrorReason.TOKEN_INVALID
                    )
                caller = await self._verifier.verify(token.strip())
            elif not (self._policy.is_public(method) or self._policy.is_internal(method)):
                raise Unauthenticated(
                    "sign in first: send a bearer access token", reason=ErrorReason.TOKEN_MISSING
                )
        except DomainError as error:
            await abort_with(context, to_grpc_status(error, domain=self._error_domain))
        return set_caller(caller)

    def _authorise_service(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Admit the call only from a service the contract lists among the method's callers."""
        service, identity = caller_service(context, self._trust_domain)
        if identity is None:
            raise Unauthenticated(
                "internal RPCs are for the mesh's services: present a mesh certificate",
                reason=ErrorReason.INTERNAL_ONLY,
            )
        if service is None or service not in self._policy.allowed_callers(method):
            raise PermissionDenied(
                "this internal RPC does not admit the calling identity",
                reason=ErrorReason.CALLER_NOT_ALLOWED,
                metadata={
                    "caller": identity,
                    "allowed": ",".join(sorted(self._policy.allowed_callers(method))),
                },
            )


class ErrorMappingInterceptor(_AroundInterceptor):
    """Turns domain errors into statuses with details, and bugs into a bare INTERNAL."""

    def __init__(self, *, error_domain: str) -> None:
        super().__init__()
        self._error_domain = error_domain

    @override
    async def around_unary(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any], call: Unary
    ) -> Any:
        try:
            return await call(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await self.abort_for(method, context, error)

    @override
    async def around_stream(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any], call: Stream
    ) -> AsyncIterator[Any]:
        try:
            async for item in call(request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await self.abort_for(method, context, error)

    async def abort_for(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any], error: Exception
    ) -> None:
        """End the call with the status `error` (not an abort already) stands for."""
        if isinstance(error, DomainError):
            await abort_with(context, to_grpc_status(error, domain=self._error_domain))
        elif isinstance(error, NotImplementedError):
            # The generated base servicer raises this for RPCs of the contract still planned.
            await _abort_unimplemented(context, method)
        else:
            await _abort_unexpected(context, error, self._error_domain)


async def _abort_unexpected(
    context: grpc.aio.ServicerContext[Any, Any], error: Exception, error_domain: str
) -> None:
    """UNAVAILABLE (retryable) when a store could not be reached, else a bare INTERNAL.

    Every service's repositories let driver errors rise; deciding here which of them are
    outages keeps that knowledge in one place and the services' domain free of drivers.
    """
    dependency = unavailable_dependency(error)
    if dependency is None:
        log.exception("rpc_failed")
        await abort_with(context, internal_status())
        return
    # The class name only: driver messages may carry addresses, never worth leaking.
    log.warning("dependency_unavailable", dependency=dependency.value, error=type(error).__name__)
    outage = dependency_unavailable(dependency.value, retry_after=DEPENDENCY_RETRY_AFTER)
    await abort_with(context, to_grpc_status(outage, domain=error_domain))


async def _abort_unimplemented(context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
    await context.abort(
        grpc.StatusCode.UNIMPLEMENTED, f"{method} is planned but not implemented yet"
    )
