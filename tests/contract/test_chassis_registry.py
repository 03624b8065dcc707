"""Consul registration against a recording stand-in of the Consul agent's HTTP API.

No Consul server exists on these machines; the stand-in records what the chassis sends so
the registration's shape (gRPC health check, id, address) and its lifecycle are checked.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from marketplace.product.v1 import product_service_pb2_grpc

from services.common.config import Environment, ServiceSettings
from services.common.interceptors import AccessPolicy
from services.common.server import ServiceApp, running_server
from tests.support.tokens import TestTokens

SERVICE = "marketplace.product.v1.ProductService"


@asynccontextmanager
async def recording_agent() -> AsyncIterator[tuple[str, list[tuple[str, str, Any]]]]:
    calls: list[tuple[str, str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        calls.append((request.method, request.path, json.loads(body) if body else None))
        return web.Response(text="true")

    app = web.Application()
    app.router.add_route("PUT", "/v1/agent/service/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", calls
    finally:
        await runner.cleanup()


async def test_instances_register_with_a_grpc_health_check_and_deregister_on_shutdown(
    tokens: TestTokens,
) -> None:
    async with recording_agent() as (url, calls):
        settings = ServiceSettings(
            environment=Environment.TEST,
            grpc_host="127.0.0.1",
            grpc_port=0,
            ops_port=0,
            shutdown_notice_seconds=0,
            consul_url=url,
            advertise_address="10.1.2.3",
        )
        app = ServiceApp(
            name="product",
            servicers=[
                (
                    product_service_pb2_grpc.add_ProductServiceServicer_to_server,
                    product_service_pb2_grpc.ProductServiceServicer(),
                )
            ],
            service_names=[SERVICE],
            policy=AccessPolicy(),
            key_source=tokens.key_source(),
        )
        async with running_server(settings, app) as server:
            assert len(calls) == 1
            method, path, body = calls[0]
            assert (method, path) == ("PUT", "/v1/agent/service/register")
            assert body["Name"] == "product"
            assert body["Address"] == "10.1.2.3"
            assert body["Port"] == server.grpc_port
            assert body["Check"]["GRPC"] == f"10.1.2.3:{server.grpc_port}/{SERVICE}"
            service_id = body["ID"]
        assert calls[1][:2] == ("PUT", f"/v1/agent/service/deregister/{service_id}")


async def test_a_registry_that_is_down_does_not_stop_the_service(tokens: TestTokens) -> None:
    settings = ServiceSettings(
        environment=Environment.TEST,
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        shutdown_notice_seconds=0,
        consul_url="http://127.0.0.1:1",
    )
    app = ServiceApp(
        name="product",
        servicers=[],
        service_names=[SERVICE],
        policy=AccessPolicy(),
        key_source=tokens.key_source(),
    )
    async with running_server(settings, app) as server:
        assert server.grpc_port > 0
