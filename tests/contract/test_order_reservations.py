"""Reservations tied to their checkout attempt: a retry or the reconciler frees an orphan.

Real product, user and order services on real MongoDB-wire and PostgreSQL; the product
service that is "down" is a real client aimed at a closed port.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from marketplace.order.v1 import order_pb2

from services.common.clock import SystemClock
from services.common.errors import InvalidArgument, Unavailable
from services.devmesh.processes import free_port
from services.order.adapters.inventory import GrpcInventory
from services.order.adapters.payments import SandboxGateway
from services.order.adapters.postgres.unit_of_work import PostgresUnitOfWork, create_pool
from services.order.adapters.users import GrpcBuyers
from services.order.domain.commands import PlaceOrder
from services.order.domain.model import Order, OrderItem, OrderLine, ShippingAddress
from services.order.domain.status import OrderStatus
from services.order.mappers.orders import ProtoOrderCodec
from services.order.service_layer.checkout import Checkout, place_order
from services.order.service_layer.reconciler import Reconciler
from services.order.service_layer.refunds import ChangeRunner
from tests.support.inprocess import mesh_channel
from tests.support.order import (
    MIGRATIONS,
    OrderService,
    ProductService,
    UserService,
    accounts,
    create_product,
    database_url,
    order_request,
    orders,
    place,
    product,
    stock,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens

__all__ = ["accounts", "database_url", "orders", "product"]


def placing(buyer: str, key: str, product_id: str) -> PlaceOrder:
    return PlaceOrder(
        buyer_id=uuid.UUID(buyer),
        idempotency_key=key,
        request_fingerprint=b"fingerprint",
        lines=(OrderLine(product_id, 1),),
        shipping_address=ShippingAddress("Ada", "1 Main St", "Berlin", "DE"),
        payment_method_token="tok_visa",
    )


async def test_a_retried_checkout_releases_the_reservation_its_lost_attempt_made(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=1)
    buyer, key = await orders.accounts.new_buyer(), f"retry-{uuid.uuid4()}"
    channel = mesh_channel(product.served.target)
    try:
        inventory = GrpcInventory(channel, 2.0)
        # The first attempt's reservation landed, its answer and its release were lost.
        checkout_id = placing(buyer, key, product_id).checkout_id
        await inventory.reserve(uuid.uuid4(), [OrderLine(product_id, 1)], checkout_id=checkout_id)
    finally:
        await channel.close()
    assert await stock(product, product_id) == (0, 1, 1)

    # The client's retry with the same key gets a new order id and the last unit.
    placed = await place(orders, tokens.mint(buyer), order_request((product_id, 1)), key)

    assert placed.status == order_pb2.ORDER_STATUS_PAID
    assert await stock(product, product_id) == (0, 0, 0)  # sold once, nothing held


async def test_a_reservation_whose_release_failed_is_released_by_the_reconciler(
    backends: Backends, product: ProductService, accounts: UserService
) -> None:
    product_id = await create_product(product, stock=3)
    buyer = await accounts.new_buyer()
    pool = await create_pool(backends.database_url("orders_orphans", MIGRATIONS), max_size=3)
    down = mesh_channel(f"127.0.0.1:{free_port()}")  # the product service died
    up = mesh_channel(product.served.target)
    users = mesh_channel(accounts.served.target)
    try:

        def uow() -> PostgresUnitOfWork:
            return PostgresUnitOfWork(pool)

        saga = Checkout(
            uow=uow,
            inventory=GrpcInventory(down, 0.5),
            payments=SandboxGateway(latency_seconds=0.001),
            codec=ProtoOrderCodec(),
            buyers=GrpcBuyers(users, 2.0),
            clock=SystemClock(),
        )
        with pytest.raises(Unavailable):
            await place_order(
                placing(buyer, "k-orphan", product_id),
                uow=uow,
                checkout=saga,
                clock=SystemClock(),
                wait_seconds=1,
            )
        async with pool.acquire() as db:
            [order_id] = [
                r["order_id"] for r in await db.fetch("SELECT * FROM reservation_releases")
            ]
        # The reserve had landed before the connection died: the units are held.
        inventory = GrpcInventory(up, 2.0)
        await inventory.reserve(order_id, [OrderLine(product_id, 1)])
        assert await stock(product, product_id) == (2, 3, 1)

        reconciler = Reconciler(
            uow=uow,
            inventory=inventory,
            payments=SandboxGateway(),
            codec=ProtoOrderCodec(),
            stale_after=timedelta(minutes=1),
            clock=SystemClock(),
        )
        assert await reconciler.run_once() == 1  # its first pass, seconds after the failure

        assert await stock(product, product_id) == (3, 3, 0)
        async with pool.acquire() as db:
            assert await db.fetchval("SELECT count(*) FROM reservation_releases") == 0
    finally:
        for channel in (down, up, users):
            await channel.close()
        await pool.close()


async def test_the_checkout_id_is_validated_by_the_product_service(
    product: ProductService,
) -> None:
    channel = mesh_channel(product.served.target)
    try:
        inventory = GrpcInventory(channel, 2.0)
        with pytest.raises(InvalidArgument) as raised:
            await inventory.reserve(uuid.uuid4(), [OrderLine("p-1", 1)], checkout_id="x" * 200)
    finally:
        await channel.close()
    assert [v.field for v in raised.value.violations] == ["checkout_id"]


async def test_a_paid_order_whose_hold_lapsed_before_its_commit_is_refunded_and_cancelled(
    backends: Backends, product: ProductService
) -> None:
    product_id = await create_product(product, stock=3)
    pool = await create_pool(backends.database_url("orders_lapsed", MIGRATIONS), max_size=3)
    channel = mesh_channel(product.served.target)
    gateway = SandboxGateway(latency_seconds=0.001)
    try:

        def uow() -> PostgresUnitOfWork:
            return PostgresUnitOfWork(pool)

        inventory = GrpcInventory(channel, 2.0)
        order_id = uuid.uuid4()
        [priced] = await inventory.reserve(order_id, [OrderLine(product_id, 1)])
        order = Order.place(
            order_id=order_id,
            buyer_id=uuid.uuid4(),
            items=[OrderItem(product_id, priced.seller_id, priced.title, 1, priced.unit_price)],
            shipping_address=ShippingAddress("Ada", "1 Main St", "Berlin", "DE"),
            at=datetime.now(UTC),
        )
        held = await gateway.authorize(order.total, "tok_visa", f"order-{order_id}:authorize")
        capture = await gateway.capture(
            held.authorization_id, order.total, f"order-{order_id}:capture"
        )
        order.mark_paid(gateway_reference=capture.charge_id, at=datetime.now(UTC))
        async with uow() as work:
            await work.orders.add(order)
            await work.commit()
        await inventory.release(order_id)  # the hold lapsed before the commit got through

        changes = ChangeRunner(uow=uow, inventory=inventory, payments=gateway, clock=SystemClock())
        reconciler = Reconciler(
            uow=uow,
            inventory=inventory,
            payments=gateway,
            codec=ProtoOrderCodec(),
            stale_after=timedelta(0),
            changes=changes,
            clock=SystemClock(),
        )
        assert await reconciler.run_once() == 1

        async with uow() as work:
            settled = await work.orders.get(order_id)
        assert settled is not None and settled.status is OrderStatus.CANCELLED
        [charge] = gateway.captured()
        assert charge.refunded_minor == order.total.minor  # the money went back in full
        assert await stock(product, product_id) == (3, 3, 0)
    finally:
        await channel.close()
        await pool.close()
