"""Order events survive Redis losing its data between the outbox relay's XADD and the read.

A Redis of the test's own is killed (SIGKILL) and its data deleted before it restarts
empty; the order service's outbox (real PostgreSQL) and the product service's consumer
(real MongoDB wire server) must still bring a cancelled order's stock back, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from services.common.clock import SystemClock
from services.common.money import Money
from services.common.streams import StreamConsumer
from services.devmesh import processes
from services.order.adapters.outbox import OutboxRelay
from services.order.adapters.postgres.unit_of_work import Pool, PostgresUnitOfWork, create_pool
from services.order.domain.model import Order, OrderItem, ShippingAddress
from services.product.adapters.mongo.events import MongoProcessedEvents
from services.product.adapters.mongo.products import MongoProductRepository
from services.product.adapters.mongo.purchases import MongoPurchaseStore
from services.product.adapters.mongo.reviews import MongoReviewRepository
from services.product.adapters.mongo.schema import Database, ensure_indexes
from services.product.adapters.mongo.stock import MongoStockStore
from services.product.adapters.order_stream import GROUP, parse_entry
from services.product.domain.model import Inventory, Product, ProductState
from services.product.service_layer.order_events import OrderEvent, handle_order_event
from tests.support.outages import OwnedServer
from tests.support.servers import Backends

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORDER_MIGRATIONS = Path("services/order/migrations")
SOLD = 2  # units of the product the order bought; the cancellation brings them back
ON_HAND_AFTER_SALE = 3
SETTLE_ATTEMPTS = 200  # bounded polling while the background loops catch up


@pytest.fixture
def redis_server() -> Iterator[OwnedServer]:
    server = OwnedServer(processes.start_redis)
    yield server
    server.stop()


def lose_everything(server: OwnedServer) -> None:
    """SIGKILL Redis and delete whatever it kept on disk: it comes back empty."""
    server.kill(signal.SIGKILL)
    for path in server.state_dir.iterdir():
        if path.name != "logs":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    server.restart()


@pytest_asyncio.fixture(loop_scope="session")
async def pool(backends: Backends) -> AsyncIterator[Pool]:
    created = await create_pool(
        backends.database_url("orders_events", ORDER_MIGRATIONS), max_size=6
    )
    yield created
    await created.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db(backends: Backends) -> AsyncIterator[Database]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(backends.mongo_url, tz_aware=True)
    database = client[f"products_events_{uuid.uuid4().hex[:10]}"]
    await ensure_indexes(database)
    yield database
    await client.close()


@dataclass
class ProductSide:
    """The product service's consumer, counting how often each event took effect."""

    db: Database
    applied: Counter[str] = field(default_factory=Counter)

    async def handle(self, event: OrderEvent) -> bool:
        fresh = await handle_order_event(
            event,
            processed=MongoProcessedEvents(self.db),
            purchases=MongoPurchaseStore(self.db),
            reviews=MongoReviewRepository(self.db),
            stock=MongoStockStore(self.db),
            clock=SystemClock(),
        )
        if fresh:
            self.applied[event.event_id] += 1
        return fresh

    def consumer(self, redis: Redis, stream: str) -> StreamConsumer[OrderEvent]:
        return StreamConsumer(
            redis,
            parse_entry,
            self.handle,
            stream=stream,
            group=GROUP,
            consumer="product-1",
            block_ms=50,
            retry_seconds=0.05,
        )

    async def on_hand(self, product_id: str) -> int:
        product = await MongoProductRepository(self.db).get(product_id)
        assert product is not None
        return product.inventory.on_hand


async def a_product_sold(db: Database) -> str:
    now = datetime.now(UTC)
    product = Product(
        product_id=str(uuid.uuid4()),
        seller_id=str(uuid.uuid4()),
        title="Enamel kettle",
        description="Whistles.",
        category="kitchen",
        subcategory="kettles",
        attributes={},
        list_price=Money(3200, "USD"),
        sale_price=None,
        inventory=Inventory(on_hand=ON_HAND_AFTER_SALE),
        state=ProductState.PUBLISHED,
        image_urls=(),
        create_time=now,
        update_time=now,
    )
    await MongoProductRepository(db).add(product)
    return product.product_id


async def a_cancelled_paid_order(pool: Pool, product_id: str) -> Order:
    """Placed, paid with its stock committed, then cancelled: three events in the outbox."""
    now = datetime.now(UTC)
    order = Order.place(
        order_id=uuid.uuid4(),
        buyer_id=uuid.uuid4(),
        items=[OrderItem(product_id, "s-1", "Enamel kettle", SOLD, Money(3200, "USD"))],
        shipping_address=ShippingAddress("Ada", "1 Main St", "Berlin", "DE"),
        at=now,
    )
    order.mark_paid(gateway_reference="ch_1", at=now)
    order.stock_committed = True
    async with PostgresUnitOfWork(pool) as uow:
        await uow.orders.add(order)
        await uow.commit()
    order.mark_saved()
    order.cancel_paid(actor="buyer", reason="changed my mind", refund_reference="re_1", at=now)
    async with PostgresUnitOfWork(pool) as uow:
        await uow.orders.save(order)
        await uow.commit()
    return order


async def outbox_state(pool: Pool, order: Order) -> dict[str, tuple[bool, bool]]:
    """Each event of the order: (published, confirmed as consumed)."""
    rows = await pool.fetch("SELECT * FROM outbox WHERE order_id = $1 ORDER BY id", order.order_id)
    return {
        str(r["event_id"]): (r["published_at"] is not None, r.get("confirmed_at") is not None)
        for r in rows
    }


@contextlib.asynccontextmanager
async def clients(server: OwnedServer) -> AsyncIterator[tuple[Redis, Redis]]:
    url = f"redis://127.0.0.1:{server.port}/0"
    relay_redis, consumer_redis = Redis.from_url(url), Redis.from_url(url)
    try:
        yield relay_redis, consumer_redis
    finally:
        await relay_redis.aclose()
        await consumer_redis.aclose()


async def test_a_cancelled_orders_stock_comes_back_once_after_redis_lost_its_published_events(
    redis_server: OwnedServer, pool: Pool, db: Database
) -> None:
    stream = f"test.order.events.{uuid.uuid4().hex[:8]}"
    product = ProductSide(db)
    product_id = await a_product_sold(db)
    order = await a_cancelled_paid_order(pool, product_id)
    async with clients(redis_server) as (relay_redis, consumer_redis):
        consumer = product.consumer(consumer_redis, stream)
        await consumer.ensure_group()  # the product service is up and subscribed
        relay = OutboxRelay(
            pool, relay_redis, clock=SystemClock(), stream=stream, interval_seconds=0.05
        )
        assert await relay.run_once() == 3  # XADD done; nobody has read the entries yet

        lose_everything(redis_server)

        loops = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
        try:
            for _ in range(SETTLE_ATTEMPTS):
                state = await outbox_state(pool, order)
                settled = all(confirmed for _, confirmed in state.values())
                if settled and await product.on_hand(product_id) == ON_HAND_AFTER_SALE + SOLD:
                    break
                await asyncio.sleep(0.1)
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

        assert await product.on_hand(product_id) == ON_HAND_AFTER_SALE + SOLD
        events = await outbox_state(pool, order)
        assert events == dict.fromkeys(events, (True, True))
        assert product.applied == Counter(dict.fromkeys(events, 1))  # each took effect once

        # Nothing is left to send or to apply: another round changes nothing.
        await relay.publish_once()
        await consumer.run_once(block_ms=1)
        assert product.applied == Counter(dict.fromkeys(events, 1))
        assert await product.on_hand(product_id) == ON_HAND_AFTER_SALE + SOLD


async def test_entries_lost_behind_newer_acknowledged_ones_are_published_again(
    redis_server: OwnedServer, pool: Pool, db: Database
) -> None:
    """After a loss the stream's ids start afresh: a new group's progress past the old ids
    must not pass for an acknowledgement of entries it never saw."""
    stream = f"test.order.events.{uuid.uuid4().hex[:8]}"
    product = ProductSide(db)
    product_id = await a_product_sold(db)
    async with clients(redis_server) as (relay_redis, consumer_redis):
        consumer = product.consumer(consumer_redis, stream)
        await consumer.ensure_group()
        relay = OutboxRelay(pool, relay_redis, clock=SystemClock(), stream=stream)
        lost_order = await a_cancelled_paid_order(pool, product_id)
        assert await relay.publish_once() == 3
        assert await relay.confirm_once() == (0, 0)  # published, not consumed yet: kept

        lose_everything(redis_server)
        later_order = await a_cancelled_paid_order(pool, await a_product_sold(db))
        assert await relay.publish_once() == 3
        for _ in range(20):  # the first read finds the group gone, recreates it, reads
            if await consumer.run_once(block_ms=1):
                break
        assert await relay.confirm_once() == (3, 3)  # the later order's; the lost ones

        assert await relay.publish_once() == 3
        await consumer.run_once(block_ms=1)
        assert await relay.confirm_once() == (3, 0)
        for order in (lost_order, later_order):
            events = await outbox_state(pool, order)
            assert events == dict.fromkeys(events, (True, True))
        assert sum(product.applied.values()) == len(product.applied) == 6
        assert await product.on_hand(product_id) == ON_HAND_AFTER_SALE + SOLD
