"""OpenTelemetry tracing of a process: OTLP export, gRPC/aiohttp/driver instrumentation."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import grpc
import structlog
from opentelemetry import trace
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from services.common.metadata import REQUEST_ID_HEADER
from services.common.server_tracing import ServerTracingInterceptor

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
SAMPLER_VARIABLE = "OTEL_TRACES_SAMPLER"
SAMPLER_ARG_VARIABLE = "OTEL_TRACES_SAMPLER_ARG"

# Without OTEL_TRACES_SAMPLER every trace is kept (what dev and the tests, which follow
# traces, need). Production sets parentbased_traceidratio (k8s/base): tracing every call cost
# each service a fifth of its CPU in the exporter thread.
DEFAULT_SAMPLER = "parentbased_always_on"

# Driver instrumentations: each service's image installs only its own (pyproject groups),
# so a missing one is simply a driver that service does not use.
_DRIVER_INSTRUMENTORS = (
    ("opentelemetry.instrumentation.asyncpg", "AsyncPGInstrumentor"),
    ("opentelemetry.instrumentation.pymongo", "PymongoInstrumentor"),
    ("opentelemetry.instrumentation.redis", "RedisInstrumentor"),
)

_provider: TracerProvider | None = None


def configure_tracing(service: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Export this process's spans over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT is set.

    Spans are sampled as OTEL_TRACES_SAMPLER says (see `sampler_from`) and exported in
    batches by a background thread.

    Call it before any aiohttp session or driver client is created: the instrumentations
    patch their classes. W3C trace context (the SDK's default propagator) is what the
    gRPC and HTTP instrumentations inject and extract.

    Args:
        service: The `service.name` resource attribute of every span.
        environ: Where the endpoint is read from.

    Returns:
        Whether an exporter was installed.
    """
    global _provider
    endpoint = environ.get(ENDPOINT_VARIABLE, "")
    if not endpoint or _provider is not None:
        return _provider is not None
    # Imported here: a process without an endpoint never loads the exporter's stack.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": service}), sampler=sampler_from(environ)
    )
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
    )
    trace.set_tracer_provider(provider)
    _provider = provider
    AioHttpClientInstrumentor().instrument(request_hook=_request_id_on_http_call)
    for module_name, class_name in _DRIVER_INSTRUMENTORS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        getattr(module, class_name)().instrument()
    return True


def sampler_from(environ: Mapping[str, str]) -> Sampler:
    """The sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG name, as the spec reads them.

    The parent-based samplers follow the caller's decision, so a trace sampled at the edge
    is complete in every service. An unknown name or a bad ratio falls back to the default
    with a warning, as the OpenTelemetry specification asks.
    """
    name = environ.get(SAMPLER_VARIABLE, "").strip().lower() or DEFAULT_SAMPLER
    raw_ratio = environ.get(SAMPLER_ARG_VARIABLE, "").strip()
    ratio = 1.0
    if raw_ratio:
        try:
            ratio = float(raw_ratio)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            structlog.get_logger("tracing").warning(
                "bad_sampler_ratio", variable=SAMPLER_ARG_VARIABLE, value=raw_ratio
            )
            ratio = 1.0
    samplers: dict[str, Callable[[], Sampler]] = {
        "always_on": lambda: ALWAYS_ON,
        "always_off": lambda: ALWAYS_OFF,
        "traceidratio": lambda: TraceIdRatioBased(ratio),
        "parentbased_always_on": lambda: DEFAULT_ON,
        "parentbased_always_off": lambda: DEFAULT_OFF,
        "parentbased_traceidratio": lambda: ParentBased(TraceIdRatioBased(ratio)),
    }
    make = samplers.get(name)
    if make is None:
        structlog.get_logger("tracing").warning(
            "unknown_sampler", variable=SAMPLER_VARIABLE, value=name
        )
        make = samplers[DEFAULT_SAMPLER]
    return make()


def shutdown_tracing() -> None:
    """Flush the spans still queued; called once the server has stopped."""
    if _provider is not None:
        _provider.shutdown()


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The tracing interceptor, outermost, so every other interceptor runs inside its span.

    Envoy probes every service each second: spans of health checks would bury the rest, so
    it leaves them out.
    """
    return [ServerTracingInterceptor()]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors of internal calls: the request id, then the trace context."""
    return [
        _RequestIdUnaryUnary(),
        _RequestIdUnaryStream(),
        *aio_client_interceptors(),  # type: ignore[no-untyped-call]
    ]


def current_request_id() -> str | None:
    """The request id bound to this call's logs by the request logging interceptor."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor putting the current span's trace and span ids on the line."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


def _request_id_on_http_call(_: Any, params: Any) -> None:
    request_id = current_request_id()
    if request_id and REQUEST_ID_HEADER not in params.headers:
        params.headers[REQUEST_ID_HEADER] = request_id


def _with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    request_id = current_request_id()
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if request_id and not metadata.get_all(REQUEST_ID_HEADER):
        metadata.add(REQUEST_ID_HEADER, request_id)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _RequestIdUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    """Carries the caller's request id to the service it calls."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Call on with the request id in the metadata."""
        return await continuation(_with_request_id(client_call_details), request)


class _RequestIdUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    """Carries the caller's request id to the service it streams from."""

    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Call on with the request id in the metadata."""
        return await continuation(_with_request_id(client_call_details), request)
