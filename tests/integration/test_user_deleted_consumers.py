"""user.deleted through a real Valkey stream into the product (MongoDB wire) and order
(PostgreSQL) services' chassis consumers: the effects, and a replay that changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from marketplace.user.v1 import events_pb2
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from services.common.clock import SystemClock
from services.common.config import Environment, EventStreamSettings
from services.common.money import Money
from services.common.streams import StreamConsumer
from services.common.user_events import UserDeleted
from services.common.user_stream import user_events_consumer
from services.order.adapters.postgres.privacy import PostgresPrivacyUnitOfWork
from services.order.adapters.postgres.unit_of_work import Pool, PostgresUnitOfWork, create_pool
from services.order.domain.model import Order, OrderItem, ShippingAddress
from services.order.service_layer.privacy import erase_buyer
from services.product.adapters.mongo.events import MongoProcessedEvents
from services.product.adapters.mongo.products import MongoProductRepository
from services.product.adapters.mongo.purchases import MongoPurchaseStore
from services.product.adapters.mongo.reviews import MongoReviewRepository
from services.product.adapters.mongo.schema import Database, ensure_indexes
from services.product.domain.model import ProductState, Review, ReviewState
from services.product.service_layer.privacy import handle_user_deleted
from tests.support.product import a_product
from tests.support.servers import Backends

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORDER_MIGRATIONS = Path("services/order/migrations")
CLOCK = SystemClock()


@pytest_asyncio.fixture(loop_scope="session")
async def pool(backends: Backends) -> AsyncIterator[Pool]:
    created = await create_pool(
        backends.database_url("orders_privacy", ORDER_MIGRATIONS), max_size=4
    )
    yield created
    await created.close()


@pytest_asyncio.fixture(loop_scope="session")
async def db(backends: Backends) -> AsyncIterator[Database]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(backends.mongo_url, tz_aware=True)
    database = client[f"products_privacy_{uuid.uuid4().hex[:10]}"]
    await ensure_indexes(database)
    yield database
    await client.drop_database(database.name)
    await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def redis(backends: Backends) -> AsyncIterator[Redis]:
    client = Redis.from_url(backends.redis_url)
    yield client
    await client.aclose()


def consumers(
    redis: Redis, stream: str, db: Database, pool: Pool
) -> tuple[StreamConsumer[UserDeleted], StreamConsumer[UserDeleted]]:
    """The two services' consumers as their composition roots build them."""

    async def product_side(event: UserDeleted) -> bool:
        return await handle_user_deleted(
            event,
            processed=MongoProcessedEvents(db),
            products=MongoProductRepository(db),
            reviews=MongoReviewRepository(db),
            purchases=MongoPurchaseStore(db),
            clock=CLOCK,
        )

    async def order_side(event: UserDeleted) -> bool:
        return await erase_buyer(event, uow=PostgresPrivacyUnitOfWork(pool), clock=CLOCK)

    settings = EventStreamSettings(
        environment=Environment.TEST,
        plaintext=True,
        user_events_stream=stream,
        event_consumer_name="test",
        event_block_ms=1,
        event_claim_idle_ms=1,
    )

    def build(group: str, handler: Any) -> StreamConsumer[UserDeleted]:
        return user_events_consumer(settings, redis, handler, group=group)

    return build("product-service", product_side), build("order-service", order_side)


async def publish(redis: Redis, stream: str, user_id: str, event_id: str) -> None:
    """XADD the event as the user service's outbox relay does."""
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    event = events_pb2.UserEvent(
        event_id=event_id,
        event_type=events_pb2.USER_EVENT_TYPE_DELETED,
        occur_time=stamp,
        user_id=user_id,
    )
    await redis.xadd(
        stream,
        {
            "event_id": event_id,
            "type": "USER_EVENT_TYPE_DELETED",
            "payload": event.SerializeToString(),
        },
    )


async def a_review(db: Database, author_id: str, product_id: str) -> Review:
    now = datetime.now(UTC)
    review = Review(
        review_id=str(uuid.uuid4()),
        product_id=product_id,
        author_id=author_id,
        rating=4,
        title="Mine",
        body="Written by Grace Hopper",
        verified_purchase=True,
        seller_reply="",
        state=ReviewState.VISIBLE,
        create_time=now,
        update_time=now,
    )
    assert await MongoReviewRepository(db).add(review)
    return review


async def an_order_and_a_cart(pool: Pool, buyer_id: uuid.UUID) -> Order:
    now = datetime.now(UTC)
    order = Order.place(
        order_id=uuid.uuid4(),
        buyer_id=buyer_id,
        items=[OrderItem("p-1", "s-1", "Enamel kettle", 2, Money(3200, "USD"))],
        shipping_address=ShippingAddress(
            "Grace Hopper",
            "7 Navy Yard",
            "Arlington",
            "US",
            postal_code="22201",
            phone_number="+17035550100",
        ),
        at=now,
    )
    async with PostgresUnitOfWork(pool) as uow:
        await uow.orders.add(order)
        await uow.commit()
    await add_cart_line(pool, buyer_id, "p-2")
    return order


async def add_cart_line(pool: Pool, buyer_id: uuid.UUID, product_id: str) -> None:
    await pool.execute(
        "INSERT INTO carts (buyer_id, updated_at) VALUES ($1, now()) ON CONFLICT DO NOTHING",
        buyer_id,
    )
    await pool.execute(
        "INSERT INTO cart_items (buyer_id, product_id, quantity, seller_id, title, "
        "added_unit_price_minor, currency, position, added_at, updated_at) "
        "VALUES ($1, $2, 1, 's-1', 'Mug', 900, 'USD', 0, now(), now())",
        buyer_id,
        product_id,
    )


async def test_user_deleted_anonymises_reviews_archives_listings_and_erases_orders(
    redis: Redis, db: Database, pool: Pool
) -> None:
    stream = f"test.user.events.{uuid.uuid4().hex[:8]}"
    user_id = uuid.uuid4()
    other = await a_review(db, str(uuid.uuid4()), "p-9")
    listing = a_product(seller_id=str(user_id), state=ProductState.PUBLISHED)
    await MongoProductRepository(db).add(listing)
    review = await a_review(db, str(user_id), listing.product_id)
    order = await an_order_and_a_cart(pool, user_id)
    product_consumer, order_consumer = consumers(redis, stream, db, pool)

    await publish(redis, stream, str(user_id), str(uuid.uuid4()))
    assert await product_consumer.run_once(block_ms=1) == 1
    assert await order_consumer.run_once(block_ms=1) == 1

    reviews = MongoReviewRepository(db)
    assert await reviews.by_author(str(user_id)) == []
    anonymised = await reviews.get(review.product_id, review.review_id)
    assert anonymised is not None
    assert anonymised.author_id == f"deleted:{review.review_id}"
    assert (anonymised.rating, anonymised.title, anonymised.body) == (4, "", "")
    untouched = await reviews.get(other.product_id, other.review_id)
    assert untouched is not None and (untouched.author_id, untouched.body) == (
        other.author_id,
        other.body,
    )
    archived = await MongoProductRepository(db).get(listing.product_id)
    assert archived is not None and archived.state is ProductState.ARCHIVED

    async with PostgresUnitOfWork(pool) as uow:
        kept = await uow.orders.get(order.order_id)
    assert kept is not None
    assert kept.shipping_address == ShippingAddress("", "", "", "US")
    assert kept.total == order.total and kept.status is order.status
    assert [i.product_id for i in kept.items] == ["p-1"]
    assert await pool.fetchval("SELECT count(*) FROM cart_items WHERE buyer_id = $1", user_id) == 0


async def test_a_replayed_user_deleted_changes_nothing(
    redis: Redis, db: Database, pool: Pool
) -> None:
    stream = f"test.user.events.{uuid.uuid4().hex[:8]}"
    user_id = uuid.uuid4()
    event_id = str(uuid.uuid4())
    product_consumer, order_consumer = consumers(redis, stream, db, pool)
    await publish(redis, stream, str(user_id), event_id)
    await product_consumer.run_once(block_ms=1)
    await order_consumer.run_once(block_ms=1)
    # Data under the same id after the event was applied: only a second application of
    # the event would touch it, so it shows whether the replay did anything.
    later = await a_review(db, str(user_id), "p-later")
    await add_cart_line(pool, user_id, "p-later")
    outbox_before = await pool.fetchval("SELECT count(*) FROM processed_user_events")

    await publish(redis, stream, str(user_id), event_id)  # the relay published it again
    assert await product_consumer.run_once(block_ms=1) == 1
    assert await order_consumer.run_once(block_ms=1) == 1

    still = await MongoReviewRepository(db).get("p-later", later.review_id)
    assert still is not None and (still.author_id, still.body) == (later.author_id, later.body)
    assert await pool.fetchval("SELECT count(*) FROM cart_items WHERE buyer_id = $1", user_id) == 1
    assert await pool.fetchval("SELECT count(*) FROM processed_user_events") == outbox_before
    pending = await redis.xpending(stream, "order-service")
    assert pending["pending"] == 0
