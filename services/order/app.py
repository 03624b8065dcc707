"""The order service's composition root: pools, clients, background tasks and the servicer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

import aiohttp
import structlog
from marketplace.order.v1 import (
    cart_service_pb2_grpc,
    order_internal_service_pb2_grpc,
    order_service_pb2_grpc,
    payout_service_pb2_grpc,
    pricing_service_pb2_grpc,
    return_service_pb2_grpc,
)
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from services.common.access import AccessPolicy
from services.common.auth import JwksKeySource, KeySource
from services.common.business_metrics import BusinessEventsInterceptor, OrderMetrics
from services.common.clock import Clock, SystemClock
from services.common.discovery import connect_peer
from services.common.sealed_rows import seal_legacy_rows
from services.common.server import ServiceApp
from services.common.streams import StreamConsumer, stream_client
from services.common.user_events import UserDeleted
from services.common.user_stream import user_events_consumer
from services.order.adapters.catalog import Catalog, GrpcCatalog
from services.order.adapters.inventory import GrpcInventory, Inventory
from services.order.adapters.metrics import (
    MeteredPayments,
    checkout_observers,
    watch_outbox_lag,
)
from services.order.adapters.outbox import PLATFORM_CONSUMER_GROUPS, OutboxRelay
from services.order.adapters.payments import HttpGateway, PaymentGateway, SandboxGateway
from services.order.adapters.postgres.cart import PostgresCartUnitOfWork
from services.order.adapters.postgres.feed import ChangeFeed
from services.order.adapters.postgres.idempotency import seal_legacy_responses
from services.order.adapters.postgres.payouts import PostgresPayoutUnitOfWork
from services.order.adapters.postgres.privacy import PostgresPrivacyUnitOfWork
from services.order.adapters.postgres.reports import PostgresSalesReports
from services.order.adapters.postgres.returns import PostgresReturnUnitOfWork
from services.order.adapters.postgres.unit_of_work import PostgresUnitOfWork, create_pool
from services.order.adapters.users import Buyers, GrpcBuyers
from services.order.cart_servicer import CartServicer
from services.order.config import Settings
from services.order.data_keys import SEALED_COLUMNS
from services.order.internal_servicer import OrderInternalServicer
from services.order.mappers.orders import ProtoOrderCodec
from services.order.payout_servicer import PayoutServicer
from services.order.pricing_servicer import PricingServicer
from services.order.return_servicer import ReturnServicer
from services.order.service_layer import privacy
from services.order.service_layer.cart import CheckoutTimes
from services.order.service_layer.checkout import Checkout, CheckoutPlacer
from services.order.service_layer.reconciler import Reconciler
from services.order.service_layer.refunds import ChangeRunner
from services.order.servicer import OrderServicer

SERVICE_NAME = "marketplace.order.v1.OrderService"
CART_SERVICE_NAME = "marketplace.order.v1.CartService"
RETURN_SERVICE_NAME = "marketplace.order.v1.ReturnService"
PAYOUT_SERVICE_NAME = "marketplace.order.v1.PayoutService"
INTERNAL_SERVICE_NAME = "marketplace.order.v1.OrderInternalService"
# The order service's consumer group on the user event stream; the user service's outbox
# keeps an event until this group (and the product service's) acknowledged it.
USER_EVENTS_GROUP = "order-service"
PRICING_SERVICE_NAME = "marketplace.order.v1.PricingService"
ORDER_SERVICE_NAMES = (
    SERVICE_NAME,
    CART_SERVICE_NAME,
    RETURN_SERVICE_NAME,
    INTERNAL_SERVICE_NAME,
    PAYOUT_SERVICE_NAME,
    PRICING_SERVICE_NAME,
)

log = structlog.get_logger("order")


@asynccontextmanager
async def build_app(
    settings: Settings,
    *,
    key_source: KeySource | None = None,
    payment_gateway: PaymentGateway | None = None,
    inventory: Inventory | None = None,
    buyers: Buyers | None = None,
    catalog: Catalog | None = None,
    run_background: bool = True,
    on_ready: Callable[[OrderParts], None] | None = None,
    clock: Clock | None = None,
    checkpoint: Callable[[str], None] | None = None,
) -> AsyncIterator[ServiceApp]:
    """Build the order service; everything it opened and started stops when the block exits.

    `run_background=False` leaves the outbox relay and the reconciler to the test, which
    drives them with `run_once()` through the parts handed to `on_ready`. `clock` overrides
    the system clock; `checkpoint` is called with each checkout step's name (a no-op unless
    given: the crash tests pass one that kills the process at a step).
    """
    clock = clock or SystemClock()
    async with AsyncExitStack() as stack:
        pool = await create_pool(
            str(settings.database_url),
            max_size=settings.database_pool_size,
            acquire_timeout=settings.database_acquire_timeout_seconds,
            keyring=settings.data_keyring(),
        )
        stack.push_async_callback(pool.close)
        await seal_legacy_rows(pool, SEALED_COLUMNS)
        await seal_legacy_responses(pool)
        session = aiohttp.ClientSession()
        stack.push_async_callback(session.close)
        if key_source is None:
            key_source = JwksKeySource(settings.jwks_url, session)
        # Calls to internal RPCs are authorised by the certificate the channels present.
        if inventory is None or catalog is None:
            channel = await connect_peer(settings, "product", settings.product_target)
            stack.push_async_callback(channel.close)
            if inventory is None:
                inventory = GrpcInventory(channel, settings.rpc_timeout_seconds)
            if catalog is None:
                catalog = GrpcCatalog(channel, settings.rpc_timeout_seconds)
        if buyers is None:
            user_channel = await connect_peer(settings, "user", settings.user_target)
            stack.push_async_callback(user_channel.close)
            buyers = GrpcBuyers(user_channel, settings.rpc_timeout_seconds)
        if payment_gateway is None:
            if settings.payment_gateway_url:
                payment_gateway = HttpGateway(
                    settings.payment_gateway_url,
                    settings.payment_gateway_api_key.get_secret_value(),
                    session,
                    timeout_seconds=settings.payment_timeout_seconds,
                )
            else:
                payment_gateway = SandboxGateway(
                    latency_seconds=settings.payment_latency_ms / 1000,
                    timeout_seconds=settings.payment_timeout_seconds,
                )
        registry = CollectorRegistry()
        metrics = OrderMetrics(registry)
        payment_gateway = MeteredPayments(payment_gateway, metrics)
        redis: Redis = Redis.from_url(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        feed = ChangeFeed(str(settings.database_url))
        await feed.start()
        stack.push_async_callback(feed.close)

        def uow() -> PostgresUnitOfWork:
            return PostgresUnitOfWork(pool, commission_bps=settings.commission_bps)

        codec = ProtoOrderCodec()
        checkout = Checkout(
            uow=uow,
            inventory=inventory,
            payments=payment_gateway,
            codec=codec,
            buyers=buyers,
            clock=clock,
            checkpoint=checkpoint or _no_checkpoint,
            lease_seconds=settings.saga_lease_seconds,
        )
        changes = ChangeRunner(
            uow=uow,
            inventory=inventory,
            payments=payment_gateway,
            clock=clock,
            change_lease_seconds=settings.change_lease_seconds,
        )
        parts = OrderParts(
            checkout=checkout,
            changes=changes,
            relay=OutboxRelay(
                pool,
                redis,
                clock=clock,
                stream=settings.events_stream,
                interval_seconds=settings.outbox_interval_seconds,
                consumer_groups=PLATFORM_CONSUMER_GROUPS,
                # Woken by the NOTIFY each outbox write sends; the poll is the fallback.
                listen_url=str(settings.database_url),
                fallback_seconds=settings.outbox_fallback_seconds,
            ),
            reconciler=Reconciler(
                uow=uow,
                inventory=inventory,
                payments=payment_gateway,
                codec=codec,
                stale_after=timedelta(seconds=settings.reconcile_after_seconds),
                clock=clock,
                in_flight=checkout.in_flight,
                changes=changes,
            ),
        )
        if run_background:
            _start(stack, "outbox_lag", watch_outbox_lag(pool, metrics))
            _start(stack, "outbox_relay", parts.relay.run())
            _start(
                stack,
                "reconciler",
                parts.reconciler.run(settings.reconcile_interval_seconds),
            )
        # Registered last, so it runs first: sagas finish before the pool and channel close.
        stack.push_async_callback(checkout.drain, settings.shutdown_grace_seconds)
        servicer = OrderServicer(
            uow=uow,
            sagas=checkout,
            changes=changes,
            feed=feed,
            sales=PostgresSalesReports(pool),
            clock=clock,
            wait_seconds=settings.idempotency_wait_seconds,
            watch_recheck_seconds=settings.watch_recheck_seconds,
        )

        def cart_uow() -> PostgresCartUnitOfWork:
            return PostgresCartUnitOfWork(pool)

        cart_servicer = CartServicer(
            uow=cart_uow,
            catalog=catalog,
            orders=CheckoutPlacer(uow=uow, checkout=checkout, clock=clock),
            clock=clock,
            wait_seconds=settings.idempotency_wait_seconds,
            times=CheckoutTimes(lease_seconds=settings.cart_checkout_lease_seconds),
        )

        def return_uow() -> PostgresReturnUnitOfWork:
            return PostgresReturnUnitOfWork(pool)

        return_servicer = ReturnServicer(
            uow=return_uow,
            changes=changes,
            clock=clock,
            window=timedelta(days=settings.return_window_days),
        )

        def payout_uow() -> PostgresPayoutUnitOfWork:
            return PostgresPayoutUnitOfWork(pool)

        payout_servicer = PayoutServicer(
            uow=payout_uow, clock=clock, hold=timedelta(seconds=settings.payout_hold_seconds)
        )

        def privacy_uow() -> PostgresPrivacyUnitOfWork:
            return PostgresPrivacyUnitOfWork(pool)

        async def on_user_deleted(event: UserDeleted) -> bool:
            return await privacy.erase_buyer(event, uow=privacy_uow(), clock=clock)

        stream_redis = stream_client(settings.redis_url, settings)
        stack.push_async_callback(stream_redis.aclose)
        parts.user_events = user_events_consumer(
            settings, stream_redis, on_user_deleted, group=USER_EVENTS_GROUP
        )
        if run_background and settings.consume_user_events:
            _start(stack, "user_events", parts.user_events.run())
        if on_ready is not None:
            on_ready(parts)
        yield ServiceApp(
            name="order",
            servicers=[
                (order_service_pb2_grpc.add_OrderServiceServicer_to_server, servicer),
                (cart_service_pb2_grpc.add_CartServiceServicer_to_server, cart_servicer),
                (return_service_pb2_grpc.add_ReturnServiceServicer_to_server, return_servicer),
                (
                    order_internal_service_pb2_grpc.add_OrderInternalServiceServicer_to_server,
                    OrderInternalServicer(uow=privacy_uow),
                ),
                (payout_service_pb2_grpc.add_PayoutServiceServicer_to_server, payout_servicer),
                (
                    pricing_service_pb2_grpc.add_PricingServiceServicer_to_server,
                    PricingServicer(uow=uow, clock=clock),
                ),
            ],
            service_names=[*ORDER_SERVICE_NAMES],
            policy=AccessPolicy.from_contract(*ORDER_SERVICE_NAMES),
            key_source=key_source,
            metrics_registry=registry,
            not_ready=pool.not_ready,
            interceptors=[BusinessEventsInterceptor(checkout_observers(metrics))],
        )


class OrderParts:
    """The pieces tests drive directly: the saga, the change runner, the relay, the reconciler."""

    def __init__(
        self,
        *,
        checkout: Checkout,
        changes: ChangeRunner,
        relay: OutboxRelay,
        reconciler: Reconciler,
    ) -> None:
        self.checkout = checkout
        self.changes = changes
        self.relay = relay
        self.reconciler = reconciler
        # The user.deleted consumer, set once the service is built.
        self.user_events: StreamConsumer[UserDeleted] | None = None


def _start(stack: AsyncExitStack, name: str, work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(work, name=name)

    async def stop() -> None:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)


def _no_checkpoint(step: str) -> None:
    """The production checkpoint: checkout steps pass it without effect."""
