"""The dev mesh's OTLP/gRPC trace receiver: every span it gets becomes one JSON line.

There is no collector binary on these machines; this is the one part of a collector the
dev mesh needs. `python -m services.devmesh.otlp_receiver PORT FILE` serves
opentelemetry.proto.collector.trace.v1.TraceService/Export on 127.0.0.1:PORT and appends
to FILE one object per span: trace id, span id, parent id, service, name, start, duration
and status.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, override

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def span_records(request: trace_service_pb2.ExportTraceServiceRequest) -> Iterator[dict[str, Any]]:
    """The request's spans as flat records, each naming the service that sent it."""
    for resource_spans in request.resource_spans:
        service = next(
            (
                attribute.value.string_value
                for attribute in resource_spans.resource.attributes
                if attribute.key == "service.name"
            ),
            "",
        )
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield _record(service, span)


def _record(service: str, span: trace_pb2.Span) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_id": span.parent_span_id.hex(),
        "service": service,
        "name": span.name,
        "start": span.start_time_unix_nano / 1e9,
        "duration": (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9,
        "status": _STATUS.get(span.status.code, str(span.status.code)),
    }


class TraceFile(trace_service_pb2_grpc.TraceServiceServicer):
    """Appends the spans of each export to a JSON Lines file."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @override
    async def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        """Write every span of the export, one line each, in one append."""
        lines = "".join(json.dumps(record) + "\n" for record in span_records(request))
        with self._path.open("a") as out:
            out.write(lines)
        return trace_service_pb2.ExportTraceServiceResponse()


async def serve(port: int, path: Path) -> None:
    """Receive spans on 127.0.0.1:`port` until SIGTERM or SIGINT."""
    path.parent.mkdir(parents=True, exist_ok=True)
    server = grpc.aio.server()
    # The generated grpc module carries no annotations.
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceFile(path), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"msg": "otlp_receiver_serving", "port": port}), flush=True)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), Path(sys.argv[2])))
