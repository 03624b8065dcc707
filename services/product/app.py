"""The product service's composition root: MongoDB, Redis, repositories, servicers, workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
from marketplace.product.v1 import product_service_pb2_grpc
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.common.access import AccessPolicy
from services.common.auth import JwksKeySource, KeySource
from services.common.business_metrics import BusinessEventsInterceptor, ProductMetrics
from services.common.clock import Clock, SystemClock
from services.common.order_stream import order_events_consumer
from services.common.server import ServiceApp
from services.common.streams import StreamConsumer, stream_client
from services.common.user_events import UserDeleted
from services.common.user_stream import user_events_consumer
from services.product.adapters import order_stream
from services.product.adapters.cache import ProductCache, ProductDocs
from services.product.adapters.metrics import MeteredSweeper, inventory_observers
from services.product.adapters.mongo.categories import MongoCategoryRepository
from services.product.adapters.mongo.documents import product_from_doc
from services.product.adapters.mongo.events import MongoProcessedEvents
from services.product.adapters.mongo.products import MongoProductRepository
from services.product.adapters.mongo.purchases import MongoPurchaseStore
from services.product.adapters.mongo.reservations import MongoReservationStore
from services.product.adapters.mongo.reviews import MongoReviewRepository
from services.product.adapters.mongo.schema import PRODUCTS, ensure_indexes
from services.product.adapters.mongo.search import MongoCatalogSearch
from services.product.adapters.mongo.stock import MongoStockStore
from services.product.config import Settings
from services.product.mappers import products as product_mappers
from services.product.service_layer.inventory import ReservationSweeper
from services.product.service_layer.order_events import OrderEvent, handle_order_event
from services.product.service_layer.privacy import handle_user_deleted
from services.product.servicer import Ports, ProductInternalServicer, ProductServicer

PRODUCT_SERVICE = "marketplace.product.v1.ProductService"
# The product service's consumer group on the user event stream; the user service's
# outbox keeps an event until this group (and the order service's) acknowledged it.
USER_EVENTS_GROUP = "product-service"
PRODUCT_INTERNAL_SERVICE = "marketplace.product.v1.ProductInternalService"

# From the contract's access options: the catalog is readable without signing in.
POLICY = AccessPolicy.from_contract(PRODUCT_SERVICE, PRODUCT_INTERNAL_SERVICE)


class ProductWorkers:
    """The background work of the service, exposed so tests can drive it step by step."""

    def __init__(
        self,
        sweeper: ReservationSweeper,
        consumer: StreamConsumer[OrderEvent],
        user_consumer: StreamConsumer[UserDeleted],
    ) -> None:
        self.sweeper = sweeper
        self.consumer = consumer
        self.user_consumer = user_consumer


@asynccontextmanager
async def build_app(
    settings: Settings,
    *,
    key_source: KeySource | None = None,
    start_workers: bool = True,
    workers: list[ProductWorkers] | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[ServiceApp]:
    """Connect to MongoDB and Redis, make sure the indexes exist, wire servicers and workers.

    Args:
        settings: The product service's settings.
        key_source: The keys tokens are verified with; by default the user service's JWKS.
        start_workers: Whether to run the sweeper and the event consumer in the background;
            tests turn this off and call their `run_once()` instead.
        workers: When given, the built workers are appended to it, for tests to drive.
        clock: Overrides the system clock the use cases and workers read the time from.

    Yields:
        The app to serve; its workers stop and its clients close when the block exits.
    """
    async with AsyncExitStack() as stack:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            str(settings.mongo_url),
            tz_aware=True,
            appname="product",
            serverSelectionTimeoutMS=int(settings.mongo_server_selection_timeout_seconds * 1000),
            connectTimeoutMS=int(settings.mongo_server_selection_timeout_seconds * 1000),
            socketTimeoutMS=int(settings.mongo_socket_timeout_seconds * 1000),
        )
        stack.push_async_callback(client.close)
        db = client[settings.mongo_database]
        await ensure_indexes(db)
        # Short timeouts and no retries: a slow or dead cache must not slow reads much.
        cache_redis = Redis.from_url(
            str(settings.redis_url),
            socket_timeout=settings.cache_timeout_seconds,
            socket_connect_timeout=settings.cache_timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        stack.push_async_callback(cache_redis.aclose)
        stream_redis = stream_client(str(settings.redis_url), settings)
        stack.push_async_callback(stream_redis.aclose)
        if key_source is None:
            http = aiohttp.ClientSession()
            stack.push_async_callback(http.close)
            key_source = JwksKeySource(settings.jwks_url, http)
        service_clock = clock or SystemClock()

        def render(doc: dict[str, Any]) -> bytes:
            return product_mappers.cached_view(product_from_doc(doc), service_clock.now())

        cache = ProductCache(
            cache_redis,
            ttl_seconds=settings.cache_ttl_seconds,
            retry_after_seconds=settings.cache_retry_after_seconds,
            render=render,
        )
        docs = ProductDocs(db[PRODUCTS], cache)
        ports = Ports(
            products=MongoProductRepository(db, docs),
            catalog=MongoCatalogSearch(db),
            stock=MongoStockStore(db, docs),
            reservations=MongoReservationStore(db),
            categories=MongoCategoryRepository(db),
            reviews=MongoReviewRepository(db),
            purchases=MongoPurchaseStore(db),
            clock=service_clock,
            views=cache,
        )
        processed = MongoProcessedEvents(db)

        async def on_event(event: OrderEvent) -> bool:
            return await handle_order_event(
                event,
                processed=processed,
                purchases=ports.purchases,
                reviews=ports.reviews,
                stock=ports.stock,
                clock=ports.clock,
            )

        async def on_user_deleted(event: UserDeleted) -> bool:
            return await handle_user_deleted(
                event,
                processed=processed,
                products=ports.products,
                reviews=ports.reviews,
                purchases=ports.purchases,
                clock=ports.clock,
            )

        registry = CollectorRegistry()
        metrics = ProductMetrics(registry)
        built = ProductWorkers(
            MeteredSweeper(
                ports.reservations,
                ports.stock,
                ports.products,
                interval_seconds=settings.sweep_interval_seconds,
                lease_seconds=settings.reservation_lease_seconds,
                clock=ports.clock,
                metrics=metrics,
            ),
            order_events_consumer(
                settings,
                stream_redis,
                order_stream.parse_entry,
                on_event,
                stream=settings.order_events_stream,
                group=order_stream.GROUP,
            ),
            # In the same `product-service` group on the user stream.
            user_events_consumer(settings, stream_redis, on_user_deleted, group=USER_EVENTS_GROUP),
        )
        if workers is not None:
            workers.append(built)
        if start_workers:
            jobs: list[Coroutine[Any, Any, None]] = [built.sweeper.run()]
            if settings.consume_order_events:
                jobs.append(built.consumer.run())
            if settings.consume_user_events:
                jobs.append(built.user_consumer.run())
            for job in jobs:
                task = asyncio.create_task(job)
                stack.push_async_callback(_cancel, task)
        internal = ProductInternalServicer(
            ports,
            wait_seconds=settings.reservation_wait_seconds,
            lease_seconds=settings.reservation_lease_seconds,
            expires_in_seconds=settings.reservation_ttl_seconds,
        )
        yield ServiceApp(
            name="product",
            servicers=[
                (
                    product_service_pb2_grpc.add_ProductServiceServicer_to_server,
                    ProductServicer(ports),
                ),
                (product_service_pb2_grpc.add_ProductInternalServiceServicer_to_server, internal),
            ],
            service_names=[PRODUCT_SERVICE, PRODUCT_INTERNAL_SERVICE],
            policy=POLICY,
            key_source=key_source,
            metrics_registry=registry,
            interceptors=[BusinessEventsInterceptor(inventory_observers(metrics))],
        )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
