"""The order service's composition root: pools, clients and the servicer, built in the loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp
from marketplace.order.v1 import order_service_pb2_grpc

from services.common.auth import JwksKeySource, KeySource
from services.common.channels import create_channel
from services.common.interceptors import AccessPolicy
from services.common.server import ServiceApp
from services.order.adapters.inventory import GrpcInventory
from services.order.adapters.payments import PaymentGateway, SandboxGateway
from services.order.adapters.repository import PostgresUnitOfWork, create_pool
from services.order.config import Settings
from services.order.mappers import ProtoOrderCodec
from services.order.service_layer.handlers import Checkout
from services.order.servicer import OrderServicer

SERVICE_NAME = "marketplace.order.v1.OrderService"


@asynccontextmanager
async def build_app(
    settings: Settings,
    *,
    key_source: KeySource | None = None,
    payment_gateway: PaymentGateway | None = None,
) -> AsyncIterator[ServiceApp]:
    """Build the order service; everything it opened closes when the block exits."""
    async with AsyncExitStack() as stack:
        pool = await create_pool(str(settings.database_url), max_size=settings.database_pool_size)
        stack.push_async_callback(pool.close)
        if key_source is None:
            session = aiohttp.ClientSession()
            stack.push_async_callback(session.close)
            key_source = JwksKeySource(settings.jwks_url, session)
        channel = create_channel(settings.product_target)
        stack.push_async_callback(channel.close)
        if payment_gateway is None:
            payment_gateway = SandboxGateway(
                latency_seconds=settings.payment_latency_ms / 1000,
                timeout_seconds=settings.payment_timeout_seconds,
            )
        inventory = GrpcInventory(
            channel, settings.internal_secret.get_secret_value(), settings.rpc_timeout_seconds
        )
        checkout = Checkout(
            uow=lambda: PostgresUnitOfWork(pool),
            inventory=inventory,
            payments=payment_gateway,
            codec=ProtoOrderCodec(),
        )
        # Registered last, so it runs first: sagas finish before the pool and channel close.
        stack.push_async_callback(checkout.drain, settings.shutdown_grace_seconds)
        servicer = OrderServicer(
            checkout,
            lambda: PostgresUnitOfWork(pool),
            wait_seconds=settings.idempotency_wait_seconds,
        )
        yield ServiceApp(
            name="order",
            servicers=[(order_service_pb2_grpc.add_OrderServiceServicer_to_server, servicer)],
            service_names=[SERVICE_NAME],
            policy=AccessPolicy(),
            key_source=key_source,
        )
