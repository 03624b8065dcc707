"""Order notifications on real PostgreSQL and Valkey: one mail per event, however delivered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest_asyncio
from google.type import money_pb2
from marketplace.order.v1 import events_pb2, order_pb2
from redis.asyncio import Redis

from services.common.clock import SystemClock
from services.common.streams import StreamConsumer
from services.user.adapters.email import EmailRelay
from services.user.adapters.order_stream import GROUP, parse_entry
from services.user.adapters.postgres import Pool, PostgresUnitOfWork, create_pool
from services.user.domain.emails import EmailKind, OutgoingEmail
from services.user.domain.model import User
from services.user.domain.order_mail import OrderNotice
from services.user.service_layer.order_notifications import notify_order_event
from tests.support.servers import Backends

MIGRATIONS = Path("services/user/migrations")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(backends: Backends) -> AsyncIterator[Pool]:
    pool = await create_pool(backends.database_url("users", MIGRATIONS), max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def redis(backends: Backends) -> AsyncIterator[Redis]:
    client = Redis.from_url(backends.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


class RecordingSender:
    """The mail server at the edge of the system: records what it was handed."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    async def send(self, message: OutgoingEmail) -> None:
        self.sent.append(message)


async def a_user(pool: Pool, name: str) -> User:
    user = User.register(
        email=f"{name}-{uuid.uuid4().hex[:8]}@example.com",
        username=f"{name}{uuid.uuid4().hex[:8]}",
        password_hash="x",
        display_name=name.title(),
        now=datetime.now(UTC),
    )
    async with PostgresUnitOfWork(pool) as uow:
        await uow.users.add(user)
        await uow.commit()
    return user


def shipped_event(buyer: User, seller: User) -> events_pb2.OrderEvent:
    price = money_pb2.Money(currency_code="USD", units=32)
    order = order_pb2.Order(
        order_id=str(uuid.uuid4()),
        buyer_id=str(buyer.id),
        items=[
            order_pb2.OrderItem(
                product_id="p-1",
                quantity=1,
                seller_id=str(seller.id),
                title="Enamel kettle",
                unit_price=price,
                line_total=price,
            )
        ],
        total=price,
        status=order_pb2.ORDER_STATUS_SHIPPED,
    )
    return events_pb2.OrderEvent(
        event_id=str(uuid.uuid4()), event_type=events_pb2.ORDER_EVENT_TYPE_SHIPPED, order=order
    )


def consumer(pool: Pool, redis: Redis, stream: str, name: str) -> StreamConsumer[OrderNotice]:
    async def notify(notice: OrderNotice) -> int:
        return await notify_order_event(
            notice, uow=PostgresUnitOfWork(pool), clock=SystemClock(), base_url="https://shop"
        )

    # claim_idle_ms=1: an entry left unacknowledged is taken over almost at once.
    return StreamConsumer(
        redis, parse_entry, notify, stream=stream, group=GROUP, consumer=name, claim_idle_ms=1
    )


async def publish(redis: Redis, stream: str, event: events_pb2.OrderEvent) -> None:
    await redis.xadd(
        stream,
        {
            "event_id": event.event_id,
            "type": events_pb2.OrderEventType.Name(event.event_type),
            "payload": event.SerializeToString(),
        },
    )


async def test_an_event_delivered_twice_and_replayed_after_a_crash_mails_once(
    pool: Pool, redis: Redis
) -> None:
    stream = f"test.order.notify.{uuid.uuid4().hex[:8]}"
    buyer, seller = await a_user(pool, "buyer"), await a_user(pool, "seller")
    event = shipped_event(buyer, seller)
    first, second = (consumer(pool, redis, stream, name) for name in ("one", "two"))
    await first.ensure_group()

    # The order service's relay published the event twice (a lost confirmation), and a
    # consumer took the first copy, queued its mail and died before acknowledging it.
    await publish(redis, stream, event)
    await publish(redis, stream, event)
    [[_, entries]] = await redis.xreadgroup("user-service", "one", {stream: ">"}, count=1)
    [(_, fields)] = entries
    notice = parse_entry(fields)
    assert notice is not None
    assert (
        await notify_order_event(
            notice, uow=PostgresUnitOfWork(pool), clock=SystemClock(), base_url="https://shop"
        )
        == 1
    )

    # Two live consumers now race over the crashed one's entry and the second copy.
    await asyncio.sleep(0.01)
    await asyncio.gather(first.run_once(block_ms=1), second.run_once(block_ms=1))
    while await first.run_once(block_ms=1) or await second.run_once(block_ms=1):
        pass
    assert (await redis.xpending(stream, "user-service"))["pending"] == 0

    sender = RecordingSender()
    relay = EmailRelay(pool, sender)
    while await relay.run_once():
        pass
    to_buyer = [m for m in sender.sent if m.to == buyer.email]
    assert [m.kind for m in to_buyer] == [EmailKind.ORDER_SHIPPED]
    assert event.order.order_id in to_buyer[0].subject
    assert f"https://shop/orders/{event.order.order_id}" in to_buyer[0].body
    assert [m for m in sender.sent if m.to == seller.email] == []
    processed = await pool.fetchval(
        "select count(*) from processed_order_events where event_id = $1", event.event_id
    )
    assert processed == 1
