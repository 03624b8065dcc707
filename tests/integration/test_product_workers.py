"""The product service's background work on real MongoDB and Redis: crashes and replays."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from marketplace.order.v1 import events_pb2, order_pb2
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from services.common.clock import SystemClock
from services.common.money import Money
from services.common.streams import StreamConsumer
from services.product.adapters.mongo.documents import Document
from services.product.adapters.mongo.events import MongoProcessedEvents
from services.product.adapters.mongo.products import MongoProductRepository
from services.product.adapters.mongo.purchases import MongoPurchaseStore
from services.product.adapters.mongo.reservations import MongoReservationStore
from services.product.adapters.mongo.reviews import MongoReviewRepository
from services.product.adapters.mongo.schema import Database, ensure_indexes
from services.product.adapters.mongo.stock import MongoStockStore
from services.product.adapters.order_stream import GROUP, parse_entry
from services.product.domain.model import (
    LISTED_STATES,
    Discount,
    Inventory,
    ReservationLine,
    to_millis,
)
from services.product.service_layer.inventory import ReservationSweeper
from services.product.service_layer.order_events import OrderEvent, handle_order_event
from services.product.service_layer.ports import LedgerNote
from tests.support.product import a_product
from tests.support.servers import Backends

CLOCK = SystemClock()

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db(backends: Backends) -> AsyncIterator[Database]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(backends.mongo_url, tz_aware=True)
    database = client[f"products_workers_{uuid.uuid4().hex[:10]}"]
    await ensure_indexes(database)
    yield database
    await client.close()


async def test_a_claim_whose_caller_died_is_undone_by_the_sweeper(db: Database) -> None:
    products, stock = MongoProductRepository(db), MongoStockStore(db)
    reservations = MongoReservationStore(db)
    product = a_product(inventory=Inventory(on_hand=5))
    await products.add(product)
    order = str(uuid.uuid4())
    lines = (ReservationLine(product.product_id, 2), ReservationLine(str(uuid.uuid4()), 1))
    # The caller claimed the order, held the first line, then died (its lease runs out).
    await reservations.claim(order, lines, lease_seconds=0, now=CLOCK.now())
    await stock.hold(
        product.product_id, order, 2, LedgerNote("hold", "tests", CLOCK.now()), states=LISTED_STATES
    )
    await asyncio.sleep(0.01)
    sweeper = ReservationSweeper(
        reservations, stock, products, interval_seconds=1, clock=SystemClock()
    )
    assert await sweeper.run_once() >= 1
    after = await products.get(product.product_id)
    assert after is not None and after.inventory == Inventory(5, 0)
    assert await reservations.get(order) is None  # a retry of the order starts afresh


async def test_ledger_entries_queued_before_a_crash_are_copied_later(db: Database) -> None:
    products = MongoProductRepository(db)

    class CrashingFlush(MongoStockStore):
        async def flush_written(self, product_id: str, doc: Document | None) -> None:
            return None  # the process died right after the stock update

    product = a_product(inventory=Inventory(on_hand=1))
    await products.add(product)
    await CrashingFlush(db).adjust(
        product.product_id, 4, LedgerNote("restock", "seller", CLOCK.now())
    )
    stock = MongoStockStore(db)
    assert await stock.ledger_page(product.product_id, offset=0, limit=10) != []  # reads flush
    await CrashingFlush(db).adjust(
        product.product_id, 1, LedgerNote("found one", "seller", CLOCK.now())
    )
    assert await stock.flush_all_ledgers() >= 1
    entries = await db.inventory_ledger.find({"product_id": product.product_id}).to_list()
    assert sorted(e["reason"] for e in entries) == ["found one", "restock"]
    doc = await db.products.find_one({"_id": product.product_id})
    assert doc is not None and doc["ledger_pending"] == 0 and doc["ledger_outbox"] == {}


async def test_an_event_replayed_after_a_crash_counts_once(
    db: Database, backends: Backends
) -> None:
    redis = Redis.from_url(backends.redis_url)
    stream = f"test.order.events.{uuid.uuid4().hex[:8]}"
    processed, purchases, reviews = (
        MongoProcessedEvents(db),
        MongoPurchaseStore(db),
        MongoReviewRepository(db),
    )
    crashes = 1

    async def crash_once_after_the_effects(event: OrderEvent) -> bool:
        nonlocal crashes
        if crashes:
            # Apply the effects, then die before the event is remembered or acknowledged.
            await purchases.count_basket(event.order_id, event.product_ids)
            crashes -= 1
            raise RuntimeError("process killed")
        return await handle_order_event(
            event,
            processed=processed,
            purchases=purchases,
            reviews=reviews,
            stock=MongoStockStore(db),
            clock=CLOCK,
        )

    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    payload = events_pb2.OrderEvent(
        event_id=uuid.uuid4().hex,
        event_type=events_pb2.ORDER_EVENT_TYPE_PAID,
        order=order_pb2.Order(
            order_id=str(uuid.uuid4()),
            buyer_id="buyer",
            items=[
                order_pb2.OrderItem(product_id=first, quantity=1),
                order_pb2.OrderItem(product_id=second, quantity=2),
            ],
        ),
    )
    await redis.xadd(
        stream,
        {
            "event_id": payload.event_id,
            "type": "ORDER_EVENT_TYPE_PAID",
            "payload": payload.SerializeToString(),
        },
    )

    def consumer(name: str) -> StreamConsumer[OrderEvent]:
        # claim_idle_ms=1: an entry left unacknowledged is taken over almost at once.
        return StreamConsumer(
            redis,
            parse_entry,
            crash_once_after_the_effects,
            stream=stream,
            group=GROUP,
            consumer=name,
            claim_idle_ms=1,
        )

    dying = consumer("dies")
    with pytest.raises(RuntimeError):
        await dying.run_once(block_ms=50)
    await asyncio.sleep(0.01)
    survivor = consumer("survives")
    assert await survivor.run_once(block_ms=50) == 1  # the dead consumer's entry, claimed
    assert await survivor.run_once(block_ms=50) == 0
    assert await purchases.also_bought(first, limit=5) == [(second, 1)]
    assert await processed.seen(payload.event_id)
    pending = await redis.xpending(stream, "product-service")
    assert pending["pending"] == 0
    await redis.aclose()


async def test_repricing_follows_discounts_as_they_start_and_end(db: Database) -> None:
    products = MongoProductRepository(db)
    product = a_product(list_price=Money(10_000, "USD"), sale_price=None)
    await products.add(product)
    now = to_millis(CLOCK.now())
    discount = Discount("d1", now + timedelta(hours=1), now + timedelta(hours=2), percent_off=50)
    await products.add_discount(product.product_id, discount, now=now, max_discounts=5)

    async def stored_price() -> int:
        doc = await db.products.find_one({"_id": product.product_id})
        assert doc is not None
        return int(doc["effective_price_minor"])

    assert await stored_price() == 10_000
    assert await products.reprice_due(now + timedelta(minutes=90)) >= 1
    assert await stored_price() == 5_000
    assert await products.reprice_due(now + timedelta(hours=3)) >= 1
    assert await stored_price() == 10_000
