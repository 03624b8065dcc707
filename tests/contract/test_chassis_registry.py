"""Registration by the chassis's server: in a real etcd, and in Consul through a stand-in.

No Consul server exists on these machines; the stand-in of the agent's HTTP API records what
the py-consul adapter sends, so the registration's shape (gRPC health check, id, address) and
its lifecycle are checked.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from marketplace.product.v1 import product_service_pb2_grpc

from services.common.config import Environment, ServiceSettings
from services.common.etcd import EtcdRegistry
from services.common.interceptors import AccessPolicy
from services.common.registry import RegistryKind, ServiceInstance
from services.common.server import RunningServer, ServiceApp, running_server
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
            registry_kind=RegistryKind.CONSUL,
            registry_url=url,
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
            await until(lambda: len(calls) == 1)
            method, path, body = calls[0]
            assert (method, path) == ("PUT", "/v1/agent/service/register")
            # The agent takes the keys case-insensitively; py-consul sends them lower-case.
            body = {key.lower(): value for key, value in body.items()}
            assert body["name"] == "product"
            assert body["address"] == "10.1.2.3"
            assert body["port"] == server.grpc_port
            assert body["meta"]["ops_port"] == str(server.ops_port)
            (check,) = body["checks"]
            assert check["grpc"] == f"10.1.2.3:{server.grpc_port}/{SERVICE}"
            assert check["DeregisterCriticalServiceAfter"] == "1m"
            service_id = body["id"]
        assert calls[1][:2] == ("PUT", f"/v1/agent/service/deregister/{service_id}")


async def test_a_registry_that_is_down_does_not_stop_the_service(tokens: TestTokens) -> None:
    settings = ServiceSettings(
        environment=Environment.TEST,
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        shutdown_notice_seconds=0,
        registry_kind=RegistryKind.ETCD,
        registry_url="http://127.0.0.1:1",
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


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_an_instance_is_in_etcd_while_it_serves_and_gone_before_it_drains(
    tokens: TestTokens, etcd_url: str
) -> None:
    settings = ServiceSettings(
        environment=Environment.TEST,
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        # A long notice: the instance must be gone from the registry during it, not after.
        shutdown_notice_seconds=2,
        registry_kind=RegistryKind.ETCD,
        registry_url=etcd_url,
        registry_ttl_seconds=30,  # gone at once means deregistered, not expired
        replica=1,
    )
    name = f"product-{uuid.uuid4().hex[:8]}"
    app = ServiceApp(
        name=name,
        servicers=[],
        service_names=[SERVICE],
        policy=AccessPolicy(),
        key_source=tokens.key_source(),
    )
    registry = EtcdRegistry(etcd_url)
    started: list[RunningServer] = []
    stop = asyncio.Event()

    async def serve() -> None:
        async with running_server(settings, app) as server:
            started.append(server)
            await stop.wait()

    serving = asyncio.create_task(serve())
    try:
        await until(lambda: bool(started))
        listed = await wait_listed(registry, name, 1)
        server = started[0]
        assert [(i.grpc_port, i.ops_port, i.replica) for i in listed] == [
            (server.grpc_port, server.ops_port, 1)
        ]
        stop.set()
        assert await wait_listed(registry, name, 0) == []
        assert not serving.done(), "deregistered only after the drain"
        await serving
    finally:
        stop.set()
        await serving
        await registry.close()


async def wait_listed(registry: EtcdRegistry, name: str, count: int) -> list[ServiceInstance]:
    deadline = time.monotonic() + 5
    while True:
        found = await registry.instances(name)
        if len(found) == count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)
