"""The bench's bare baseline for R1: a grpc.aio server answering GetProduct with fixed bytes.

Its own module, importing nothing but grpc, so it starts in a moment even on a loaded
machine: `python -m services.devmesh.bench_echo PORT PAYLOAD_FILE`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import grpc


async def serve_echo(port: int, payload: bytes) -> None:
    """Answer every GetProduct with `payload` (a serialized Product) until killed."""

    async def get_product(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        return payload

    handler = grpc.method_handlers_generic_handler(
        "marketplace.product.v1.ProductService",
        {"GetProduct": grpc.unary_unary_rpc_method_handler(get_product)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve_echo(int(sys.argv[1]), Path(sys.argv[2]).read_bytes()))
