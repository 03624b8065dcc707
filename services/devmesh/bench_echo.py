"""The bench's bare baseline for R1: a grpc.aio server answering GetProduct with fixed bytes.

Its own module, importing nothing but grpc, so it starts in a moment even on a loaded
machine: `python -m services.devmesh.bench_echo PORT PAYLOAD_FILE [CERT KEY CA]`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import grpc


async def serve_echo(port: int, payload: bytes, tls: list[Path]) -> None:
    """Answer every GetProduct with `payload` (a serialized Product) until killed.

    With `tls` (certificate, key and CA files) it serves mTLS as the services do, requiring
    a client certificate the CA signed: the baseline then pays the same handshake and
    record encryption as the service it is compared with.
    """

    async def get_product(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        return payload

    handler = grpc.method_handlers_generic_handler(
        "marketplace.product.v1.ProductService",
        {"GetProduct": grpc.unary_unary_rpc_method_handler(get_product)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    address = f"127.0.0.1:{port}"
    if tls:
        cert, key, ca = (path.read_bytes() for path in tls)
        credentials = grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=True
        )
        server.add_secure_port(address, credentials)
    else:
        server.add_insecure_port(address)
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    # PORT PAYLOAD_FILE [CERT KEY CA]
    tls_files = [Path(arg) for arg in sys.argv[3:6]]
    asyncio.run(serve_echo(int(sys.argv[1]), Path(sys.argv[2]).read_bytes(), tls_files))
