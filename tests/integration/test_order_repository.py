"""Order and idempotency-key repositories on a real, migrated PostgreSQL database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from services.common.money import Money
from services.order.adapters.postgres.unit_of_work import Pool, PostgresUnitOfWork, create_pool
from services.order.domain.commands import OrderCursor
from services.order.domain.idempotency import KeyState, StoredError
from services.order.domain.model import Order, OrderItem, ShippingAddress
from services.order.domain.status import OrderStatus, PaymentStatus
from tests.support.servers import Backends

MIGRATIONS = Path("services/order/migrations")
ADDRESS = ShippingAddress("Ada", "1 Main St", "Berlin", "DE", line2="Apt 4", postal_code="10115")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(backends: Backends) -> AsyncIterator[Pool]:
    created = await create_pool(backends.database_url("orders", MIGRATIONS), max_size=12)
    try:
        yield created
    finally:
        await created.close()


def new_order(buyer_id: uuid.UUID | None = None, at: datetime | None = None) -> Order:
    return Order.place(
        order_id=uuid.uuid4(),
        buyer_id=buyer_id or uuid.uuid4(),
        items=[
            OrderItem("p-1", "s-1", "Lamp", 2, Money(1999, "EUR")),
            OrderItem("p-2", "s-2", "Bulb", 1, Money(250, "EUR")),
        ],
        shipping_address=ADDRESS,
        at=at or datetime.now(UTC),
    )


async def test_an_order_round_trips_with_items_payment_and_history(pool: Pool) -> None:
    order = new_order()
    async with PostgresUnitOfWork(pool) as uow:
        await uow.orders.add(order)
        await uow.commit()
    order.mark_paid(gateway_reference="ch_1", at=datetime.now(UTC))
    async with PostgresUnitOfWork(pool) as uow:
        await uow.orders.save(order)
        await uow.commit()
    async with PostgresUnitOfWork(pool) as uow:
        loaded = await uow.orders.get(order.order_id)
    assert loaded is not None
    assert loaded.status is OrderStatus.PAID
    assert loaded.items == order.items
    assert loaded.shipping_address == ADDRESS
    assert loaded.total == Money(2 * 1999 + 250, "EUR")
    assert [(c.from_status, c.to_status) for c in loaded.history] == [
        (None, OrderStatus.PENDING),
        (OrderStatus.PENDING, OrderStatus.PAID),
    ]
    assert loaded.payment is not None
    assert loaded.payment.status is PaymentStatus.CAPTURED
    assert loaded.payment.gateway_reference == "ch_1"


async def test_an_uncommitted_unit_of_work_rolls_back(pool: Pool) -> None:
    order = new_order()
    async with PostgresUnitOfWork(pool) as uow:
        await uow.orders.add(order)
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.orders.get(order.order_id) is None


async def test_a_database_constraint_failure_leaves_nothing_behind(pool: Pool) -> None:
    order = new_order()
    async with PostgresUnitOfWork(pool) as uow:
        await uow.orders.add(order)
        await uow.commit()
    duplicate = new_order()
    duplicate.order_id = order.order_id
    with pytest.raises(asyncpg.UniqueViolationError):
        async with PostgresUnitOfWork(pool) as uow:
            await uow.orders.add(duplicate)
            await uow.commit()
    async with PostgresUnitOfWork(pool) as uow:
        loaded = await uow.orders.get(order.order_id)
    assert loaded is not None and loaded.buyer_id == order.buyer_id


async def test_listing_is_newest_first_with_a_keyset_cursor(pool: Pool) -> None:
    buyer = uuid.uuid4()
    start = datetime.now(UTC)
    orders = [new_order(buyer, start + timedelta(seconds=i)) for i in range(5)]
    orders[4].cancel(actor="system", reason="test", at=start + timedelta(seconds=10))
    async with PostgresUnitOfWork(pool) as uow:
        for order in orders:
            await uow.orders.add(order)
        await uow.commit()
    async with PostgresUnitOfWork(pool) as uow:
        first = await uow.orders.list_for_buyer(buyer, limit=2, after=None, status=None)
        cursor = OrderCursor(first[-1].created_at, first[-1].order_id)
        rest = await uow.orders.list_for_buyer(buyer, limit=10, after=cursor, status=None)
        pending = await uow.orders.list_for_buyer(
            buyer, limit=10, after=None, status=OrderStatus.PENDING
        )
        other = await uow.orders.list_for_buyer(uuid.uuid4(), limit=10, after=None, status=None)
    newest_first = [o.order_id for o in reversed(orders)]
    assert [o.order_id for o in first + rest] == newest_first
    assert [o.order_id for o in pending] == newest_first[1:]
    assert other == []


async def test_exactly_one_concurrent_claim_of_a_key_wins(pool: Pool) -> None:
    buyer, key, fingerprint = uuid.uuid4(), f"k-{uuid.uuid4()}", b"\x01" * 32

    async def claim() -> bool:
        async with PostgresUnitOfWork(pool) as uow:
            existing = await uow.idempotency.claim(buyer, key, fingerprint)
            await uow.commit()
        return existing is None

    wins = await asyncio.gather(*(claim() for _ in range(10)))
    assert wins.count(True) == 1


async def test_a_key_stores_its_outcome_or_is_given_back(pool: Pool) -> None:
    buyer = uuid.uuid4()
    order_id = uuid.uuid4()
    error = StoredError("FAILED_PRECONDITION", "out of stock", "OUT_OF_STOCK", {"product_id": "p"})
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.idempotency.claim(buyer, "ok", b"a") is None
        assert await uow.idempotency.claim(buyer, "failed", b"b") is None
        assert await uow.idempotency.claim(buyer, "given-back", b"c") is None
        await uow.idempotency.attach_order(buyer, "ok", order_id)
        await uow.idempotency.complete(buyer, "ok", b"order-bytes")
        await uow.idempotency.fail(buyer, "failed", error)
        await uow.idempotency.release(buyer, "given-back")
        await uow.commit()
    async with PostgresUnitOfWork(pool) as uow:
        ok = await uow.idempotency.get(buyer, "ok")
        failed = await uow.idempotency.get(buyer, "failed")
        assert await uow.idempotency.get(buyer, "given-back") is None
        # Another buyer's key of the same name is a different key.
        assert await uow.idempotency.claim(uuid.uuid4(), "ok", b"z") is None
    assert ok is not None and ok.state is KeyState.COMPLETED
    assert ok.response == b"order-bytes" and ok.order_id == order_id
    assert failed is not None and failed.error == error and failed.response is None
