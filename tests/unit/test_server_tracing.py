"""The server spans: one per RPC, child of the caller's trace, with its status; none for probes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry import baggage, trace
from opentelemetry.context import get_current
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind, StatusCode

from services.common.server_tracing import ServerTracingInterceptor

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


class Traced:
    """A served echo whose handler notes the span and baggage it ran under."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str | None]] = []

    async def echo(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        span_context = trace.get_current_span().get_span_context()
        user = baggage.get_baggage("user", get_current())
        self.seen.append((span_context.trace_id, user if isinstance(user, str) else None))
        if request == b"bug":
            await context.abort(grpc.StatusCode.INTERNAL, "it broke")
        if request == b"missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return request

    async def items(
        self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        for item in (b"a", b"b"):
            yield item


@pytest_asyncio.fixture
async def traced_server(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, InMemorySpanExporter, Traced]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=getattr(request, "param", None) or ParentBased(ALWAYS_OFF))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = Traced()
    server = grpc.aio.server(interceptors=[ServerTracingInterceptor(provider)])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Echo",
                {
                    "Echo": grpc.unary_unary_rpc_method_handler(traced.echo),
                    "Items": grpc.unary_stream_rpc_method_handler(traced.items),
                },
            ),
        )
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", exporter, traced
    await server.stop(None)


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, spans
    exporter.clear()
    return spans[0]


async def test_a_sampled_call_is_a_server_span_in_the_callers_trace(
    traced_server: tuple[str, InMemorySpanExporter, Traced],
) -> None:
    target, exporter, traced = traced_server
    sampled = (
        ("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"),
        ("baggage", "user=ada"),
    )
    async with grpc.aio.insecure_channel(target) as channel:
        echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/test.Echo/Echo"
        )
        assert await echo(b"hi", metadata=sampled) == b"hi"
        span = only_span(exporter)
        assert span.name == "/test.Echo/Echo" and span.kind is SpanKind.SERVER
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
        attributes = dict(span.attributes or {})
        assert attributes["rpc.service"] == "test.Echo" and attributes["rpc.method"] == "Echo"
        assert attributes["rpc.grpc.status_code"] == 0
        assert attributes["net.peer.ip"] == "127.0.0.1"
        assert str(attributes["rpc.user_agent"]).startswith("grpc-python")
        assert span.status.status_code is StatusCode.UNSET
        # The handler ran inside the span, with the caller's baggage.
        assert traced.seen[-1] == (span.context.trace_id, "ada")

        with pytest.raises(grpc.aio.AioRpcError):
            await echo(b"bug", metadata=sampled)
        span = only_span(exporter)
        assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 13
        assert span.status.status_code is StatusCode.ERROR
        assert "it broke" in (span.status.description or "")

        with pytest.raises(grpc.aio.AioRpcError):
            await echo(b"missing", metadata=sampled)
        span = only_span(exporter)
        # A client's mistake is no server error: the code is noted, the status left unset.
        assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 5
        assert span.status.status_code is StatusCode.UNSET

        items: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
            "/test.Echo/Items"
        )
        assert [item async for item in items(b"", metadata=sampled)] == [b"a", b"b"]
        assert only_span(exporter).name == "/test.Echo/Items"


async def test_unsampled_calls_and_health_checks_export_nothing(
    traced_server: tuple[str, InMemorySpanExporter, Traced],
) -> None:
    target, exporter, traced = traced_server
    unsampled = (("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-00"),)
    async with grpc.aio.insecure_channel(target) as channel:
        echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/test.Echo/Echo"
        )
        for _ in range(3):
            assert await echo(b"hi", metadata=unsampled) == b"hi"
        # Not recorded, yet still in the caller's trace for the calls it makes onwards.
        assert traced.seen[-1][0] == int(TRACE_ID, 16)
        await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(),
            metadata=(("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"),),
        )
    assert exporter.get_finished_spans() == ()
