"""The order service's background work, driven by run_once() on real PostgreSQL and Redis.

The reconciler meets orders in the durable states a crash leaves (written here through
the repositories, the real product service's reservations and the gateway's keys) and
must finish or compensate each; the outbox relay meets a Redis that is down, then up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from services.common.clock import SystemClock
from services.devmesh.processes import ManagedProcess, free_port, start_redis
from services.order.adapters.inventory import GrpcInventory
from services.order.adapters.outbox import OutboxRelay
from services.order.adapters.payments import SandboxGateway
from services.order.adapters.postgres.unit_of_work import Pool, PostgresUnitOfWork, create_pool
from services.order.domain.idempotency import KeyState
from services.order.domain.model import Order, OrderItem, OrderLine, ShippingAddress
from services.order.domain.status import OrderStatus, PaymentStatus
from services.order.mappers.orders import ProtoOrderCodec
from services.order.service_layer.reconciler import Reconciler
from tests.support.inprocess import mesh_channel
from tests.support.order import (
    MIGRATIONS,
    ProductService,
    create_product,
    product,
    stock,
)
from tests.support.servers import Backends

__all__ = ["product"]


@dataclass
class World:
    """The order database, the real product service's inventory and a sandbox gateway."""

    pool: Pool
    inventory: GrpcInventory
    gateway: SandboxGateway
    product: ProductService
    database_url: str

    def uow(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.pool)

    def reconciler(self, **overrides: object) -> Reconciler:
        values: dict[str, object] = {
            "uow": self.uow,
            "inventory": self.inventory,
            "payments": self.gateway,
            "codec": ProtoOrderCodec(),
            "stale_after": timedelta(0),
            "clock": SystemClock(),
        }
        values.update(overrides)
        return Reconciler(**values)  # type: ignore[arg-type]

    async def stuck(self, product_id: str, *, step: str) -> tuple[Order, uuid.UUID, str]:
        """An order as a crash after `step` leaves it: (order, buyer, idempotency key).

        Steps: "reserved" (key names the order, stock held, no order row), "recorded"
        (order PENDING), "authorized", "captured" (gateway keys used), "paid" (order PAID,
        reservation not committed).
        """
        order_id, buyer, key = uuid.uuid4(), uuid.uuid4(), f"k-{uuid.uuid4()}"
        async with self.uow() as uow:
            assert await uow.idempotency.claim(buyer, key, b"fingerprint") is None
            await uow.idempotency.attach_order(buyer, key, order_id)
            await uow.commit()
        [priced] = await self.inventory.reserve(order_id, [OrderLine(product_id, 1)])
        order = Order.place(
            order_id=order_id,
            buyer_id=buyer,
            items=[OrderItem(product_id, priced.seller_id, priced.title, 1, priced.unit_price)],
            shipping_address=ShippingAddress("Ada", "1 Main St", "Berlin", "DE"),
            at=datetime.now(UTC),
        )
        if step == "reserved":
            return order, buyer, key
        async with self.uow() as uow:
            await uow.orders.add(order)
            await uow.commit()
        if step == "recorded":
            return order, buyer, key
        keys = f"order-{order_id}"
        held = await self.gateway.authorize(order.total, "tok_visa", f"{keys}:authorize")
        if step == "authorized":
            return order, buyer, key
        capture = await self.gateway.capture(held.authorization_id, order.total, f"{keys}:capture")
        if step == "paid":
            async with self.uow() as uow:
                loaded = await uow.orders.get(order_id, for_update=True)
                assert loaded is not None
                loaded.mark_paid(gateway_reference=capture.charge_id, at=datetime.now(UTC))
                await uow.orders.save(loaded)
                await uow.commit()
        return order, buyer, key

    async def order(self, order_id: uuid.UUID) -> Order:
        async with self.uow() as uow:
            found = await uow.orders.get(order_id)
        assert found is not None
        return found


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(backends: Backends, product: ProductService) -> AsyncIterator[World]:
    database_url = backends.database_url("orders_bg", MIGRATIONS)
    pool = await create_pool(database_url, max_size=4)
    channel = mesh_channel(product.served.target)
    try:
        yield World(
            pool,
            GrpcInventory(channel, 2.0),
            SandboxGateway(latency_seconds=0.001),
            product,
            database_url,
        )
    finally:
        await channel.close()
        await pool.close()


async def test_a_captured_order_is_finished_paid_with_its_stock_sold(world: World) -> None:
    product_id = await create_product(world.product, stock=3)
    order, buyer, key = await world.stuck(product_id, step="captured")

    assert await world.reconciler().run_once() >= 1

    settled = await world.order(order.order_id)
    assert (settled.status, settled.stock_committed) == (OrderStatus.PAID, True)
    assert await stock(world.product, product_id) == (2, 2, 0)
    async with world.uow() as uow:
        record = await uow.idempotency.get(buyer, key)
    assert record is not None and record.state is KeyState.COMPLETED
    assert record.response is not None  # the retry gets the paid order
    assert ProtoOrderCodec().decode(record.response).status is OrderStatus.PAID
    capture = await world.gateway.find_capture(f"order-{order.order_id}:capture")
    assert capture is not None and settled.payment is not None
    assert settled.payment.gateway_reference == capture.charge_id  # the one capture, kept


@pytest.mark.parametrize("step", ["recorded", "authorized"])
async def test_an_uncaptured_order_is_cancelled_voided_and_released(
    world: World, step: str
) -> None:
    product_id = await create_product(world.product, stock=3)
    order, buyer, key = await world.stuck(product_id, step=step)

    await world.reconciler().run_once()

    settled = await world.order(order.order_id)
    assert settled.status is OrderStatus.CANCELLED
    assert settled.payment is not None
    expected = PaymentStatus.VOIDED if step == "authorized" else PaymentStatus.FAILED
    assert settled.payment.status is expected
    assert await stock(world.product, product_id) == (3, 3, 0)
    held = await world.gateway.find_authorization(f"order-{order.order_id}:authorize")
    if step == "authorized":
        assert held is not None
        [charge] = [c for c in world.gateway.charges if c.charge_id == held.authorization_id]
        assert charge.status == "voided"  # the hold on the card is gone
    async with world.uow() as uow:
        record = await uow.idempotency.get(buyer, key)
    assert record is not None and record.error is not None
    assert record.error.reason == "ORDER_INTERRUPTED"


async def test_a_paid_order_whose_commit_was_lost_gets_its_stock_committed(world: World) -> None:
    product_id = await create_product(world.product, stock=3)
    order, _, _ = await world.stuck(product_id, step="paid")
    assert await stock(world.product, product_id) == (2, 3, 1)  # held, not sold

    await world.reconciler().run_once()

    settled = await world.order(order.order_id)
    assert (settled.status, settled.stock_committed) == (OrderStatus.PAID, True)
    assert await stock(world.product, product_id) == (2, 2, 0)


async def test_a_key_whose_order_row_never_got_written_frees_its_stock_and_itself(
    world: World,
) -> None:
    product_id = await create_product(world.product, stock=3)
    _, buyer, key = await world.stuck(product_id, step="reserved")

    await world.reconciler().run_once()

    assert await stock(world.product, product_id) == (3, 3, 0)
    async with world.uow() as uow:
        assert await uow.idempotency.get(buyer, key) is None  # a retry runs afresh


async def test_a_capture_whose_stock_went_back_is_refunded_and_cancelled(world: World) -> None:
    product_id = await create_product(world.product, stock=3)
    order, _, _ = await world.stuck(product_id, step="captured")
    await world.inventory.release(order.order_id)  # e.g. a reservation expiry meanwhile

    await world.reconciler().run_once()

    settled = await world.order(order.order_id)
    assert settled.status is OrderStatus.CANCELLED
    capture = await world.gateway.find_capture(f"order-{order.order_id}:capture")
    assert capture is not None
    [charge] = [c for c in world.gateway.captured() if c.capture_id == capture.charge_id]
    assert charge.refunded_minor == capture.amount.minor  # the money went back in full
    assert await stock(world.product, product_id) == (3, 3, 0)


async def test_live_and_fresh_sagas_are_left_alone(world: World) -> None:
    product_id = await create_product(world.product, stock=3)
    busy, _, _ = await world.stuck(product_id, step="captured")
    fresh, _, _ = await world.stuck(product_id, step="recorded")

    await world.reconciler(stale_after=timedelta(minutes=5)).run_once()  # too young
    live = frozenset({busy.order_id, fresh.order_id})
    await world.reconciler(in_flight=lambda: live).run_once()  # this process is placing them
    assert (await world.order(busy.order_id)).status is OrderStatus.PENDING
    assert (await world.order(fresh.order_id)).status is OrderStatus.PENDING
    assert await stock(world.product, product_id) == (1, 3, 2)

    await world.reconciler().run_once()  # neither young nor live: both are settled
    assert (await world.order(busy.order_id)).status is OrderStatus.PAID
    assert (await world.order(fresh.order_id)).status is OrderStatus.CANCELLED


async def test_a_product_service_that_is_down_defers_the_order_to_the_next_pass(
    world: World,
) -> None:
    product_id = await create_product(world.product, stock=3)
    order, _, _ = await world.stuck(product_id, step="captured")
    channel = mesh_channel("127.0.0.1:1")
    try:
        down = GrpcInventory(channel, 0.5)
        await world.reconciler(inventory=down).run_once()
    finally:
        await channel.close()
    assert (await world.order(order.order_id)).status is OrderStatus.PENDING

    await world.reconciler().run_once()
    assert (await world.order(order.order_id)).status is OrderStatus.PAID


async def test_the_relay_keeps_events_while_redis_is_down_and_publishes_each_once_after(
    world: World, tmp_path: Path
) -> None:
    port = free_port()  # a Redis of this test's own, to stop and start
    stream = f"test.order.relay.{uuid.uuid4().hex[:8]}"
    redis: Redis = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    relay = OutboxRelay(world.pool, redis, clock=SystemClock(), stream=stream)
    product_id = await create_product(world.product, stock=3)
    order, _, _ = await world.stuck(product_id, step="recorded")  # writes an outbox row
    server: ManagedProcess | None = None
    try:
        with pytest.raises(RedisConnectionError):  # nothing listens yet: Redis is down
            await relay.run_once()
        pending = await world.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE order_id = $1 AND published_at IS NULL",
            order.order_id,
        )
        assert pending >= 1  # the failed attempt rolled back: nothing marked, nothing lost

        server = start_redis(tmp_path, port)
        while await relay.run_once():
            pass
        assert await relay.run_once() == 0  # everything marked: nothing is sent twice

        written = {
            str(row["event_id"])
            for row in await world.pool.fetch(
                "SELECT event_id FROM outbox WHERE order_id = $1", order.order_id
            )
        }
        published = [fields[b"event_id"].decode() for _, fields in await redis.xrange(stream)]
        ours = [event_id for event_id in published if event_id in written]
        assert sorted(ours) == sorted(written)  # each of the order's events, exactly once
        unpublished = await world.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE order_id = $1 AND published_at IS NULL",
            order.order_id,
        )
        assert unpublished == 0
    finally:
        await redis.aclose()
        if server is not None:
            server.stop(timeout=5)


async def test_the_relay_is_woken_by_notify_and_its_slow_poll_catches_a_lost_one(
    world: World, backends: Backends
) -> None:
    stream = f"test.order.relay.{uuid.uuid4().hex[:8]}"
    redis: Redis = Redis.from_url(backends.redis_url)
    relay = OutboxRelay(
        world.pool,
        redis,
        clock=SystemClock(),
        stream=stream,
        interval_seconds=60,
        confirm_interval_seconds=60,
        listen_url=world.database_url,
        fallback_seconds=3,
    )
    running = asyncio.create_task(relay.run())

    async def published(order_id: uuid.UUID) -> float:
        started = time.monotonic()
        while await world.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE order_id = $1 AND published_at IS NULL",
            order_id,
        ):
            assert time.monotonic() - started < 10
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    try:
        await asyncio.sleep(0.5)  # past the first pass: the relay waits
        product_id = await create_product(world.product, stock=3)
        order, _, _ = await world.stuck(product_id, step="recorded")  # commits with NOTIFY
        assert await published(order.order_id) < 1.0  # woken, not waiting for the poll
        # A write whose notification is lost (none sent here) still goes out on the poll.
        await world.pool.execute(
            "UPDATE outbox SET published_at = NULL, stream_id = NULL WHERE order_id = $1",
            order.order_id,
        )
        assert await published(order.order_id) < 5.0
        ours = {
            str(row["event_id"])
            for row in await world.pool.fetch(
                "SELECT event_id FROM outbox WHERE order_id = $1", order.order_id
            )
        }
        sent = [fields[b"event_id"].decode() for _, fields in await redis.xrange(stream)]
        # Each of the order's events once per publication (others' leftovers go out too).
        assert sorted(e for e in sent if e in ours) == sorted([*ours, *ours])
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await redis.aclose()
