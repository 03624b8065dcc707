"""After checkout, on real PostgreSQL, Redis and the real product service: ship, deliver,
refund, cancel, the marketplace split, the outbox events and the sales report's index."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
import pytest_asyncio
from google.type import date_pb2
from marketplace.order.v1 import events_pb2, order_pb2, order_service_pb2, order_service_pb2_grpc
from marketplace.product.v1 import product_pb2, product_service_pb2
from redis.asyncio import Redis

from services.common.identity import Role
from services.common.money import Money
from services.common.proto_money import money_to_proto
from services.common.rpc_status import remote_error
from services.order.adapters.payments import SandboxGateway
from services.order.adapters.postgres.reports import BY_DAY_SQL
from services.order.app import build_app
from services.order.domain.status import SOLD_STATUSES
from tests.support.failures import rpc_failure
from tests.support.inprocess import serve_in_process
from tests.support.order import (
    ProductService,
    UserService,
    accounts,
    order_request,
    order_settings,
    product,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

__all__ = ["accounts", "product"]

MIGRATIONS_PREFIX = "orders_life"


@dataclass
class Orders:
    stub: order_service_pb2_grpc.OrderServiceAsyncStub
    gateway: SandboxGateway
    db: asyncpg.Connection[asyncpg.Record]
    redis: Redis
    stream: str
    accounts: UserService


@pytest_asyncio.fixture(loop_scope="session")
async def orders(
    backends: Backends,
    product: ProductService,
    accounts: UserService,
    tokens: TestTokens,
) -> AsyncIterator[Orders]:
    from pathlib import Path

    database_url = backends.database_url(MIGRATIONS_PREFIX, Path("services/order/migrations"))
    settings = order_settings(
        database_url,
        product.served.target,
        backends.redis_url,
        user_target=accounts.served.target,
    )
    settings = settings.model_copy(update={"outbox_interval_seconds": 0.05})
    gateway = SandboxGateway(latency_seconds=0.005, timeout_seconds=0.3)
    db = await asyncpg.connect(database_url)
    redis = Redis.from_url(backends.redis_url)
    try:
        async with serve_in_process(
            settings,
            lambda: build_app(settings, key_source=tokens.key_source(), payment_gateway=gateway),
        ) as served:
            stub = order_service_pb2_grpc.OrderServiceStub(served.channel)
            yield Orders(stub, gateway, db, redis, settings.events_stream, accounts)
    finally:
        await db.close()
        await redis.aclose()


async def listed_product(product: ProductService, seller_token: str, stock: int = 10) -> str:
    created = await product.stub.CreateProduct(
        product_service_pb2.CreateProductRequest(
            product=product_pb2.Product(
                title="Kettle",
                category="home",
                list_price=money_to_proto(Money(1000, "USD")),
                initial_stock=stock,
            ),
            publish=True,
        ),
        metadata=bearer(seller_token),
    )
    return created.product_id


def with_key(token: str, key: str | None = None) -> tuple[tuple[str, str], ...]:
    return (*bearer(token), ("idempotency-key", key or uuid.uuid4().hex))


@dataclass
class Placed:
    order: order_pb2.Order
    buyer: str
    seller_a: str
    seller_b: str
    product_a: str
    product_b: str


async def place_two_seller_order(
    orders: Orders,
    product: ProductService,
    tokens: TestTokens,
) -> Placed:
    seller_a, seller_b = (str(uuid.uuid4()) for _ in range(2))
    buyer = await orders.accounts.new_buyer()
    product_a = await listed_product(product, tokens.mint(seller_a, roles=(Role.SELLER,)))
    product_b = await listed_product(product, tokens.mint(seller_b, roles=(Role.SELLER,)))
    order = await orders.stub.CreateOrder(
        order_request((product_a, 2), (product_b, 1)), metadata=with_key(tokens.mint(buyer))
    )
    assert order.status == order_pb2.ORDER_STATUS_PAID
    return Placed(order, buyer, seller_a, seller_b, product_a, product_b)


def seller(tokens: TestTokens, user_id: str) -> tuple[tuple[str, str], ...]:
    return bearer(tokens.mint(user_id, roles=(Role.SELLER,)))


def admin(tokens: TestTokens) -> tuple[tuple[str, str], ...]:
    return bearer(tokens.mint(roles=(Role.ADMIN,)))


async def test_each_seller_sees_and_ships_only_their_items_then_it_is_delivered(
    orders: Orders,
    product: ProductService,
    tokens: TestTokens,
) -> None:
    placed = await place_two_seller_order(orders, product, tokens)
    order_id = placed.order.order_id

    seen = await orders.stub.GetOrder(
        order_service_pb2.GetOrderRequest(order_id=order_id),
        metadata=seller(tokens, placed.seller_a),
    )
    assert [i.product_id for i in seen.items] == [placed.product_a]
    assert seen.total.units == 20 and not seen.HasField("payment")

    listed = await orders.stub.ListOrders(
        order_service_pb2.ListOrdersRequest(), metadata=seller(tokens, placed.seller_b)
    )
    assert [o.order_id for o in listed.orders] == [order_id]

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.ShipOrderItems(
            order_service_pb2.ShipOrderItemsRequest(
                order_id=order_id,
                product_ids=[placed.product_b],
                carrier="DHL",
                tracking_number="X1",
            ),
            metadata=seller(tokens, placed.seller_a),
        )
    assert rpc_failure(raised).code == grpc.StatusCode.PERMISSION_DENIED

    half = await orders.stub.ShipOrderItems(
        order_service_pb2.ShipOrderItemsRequest(
            order_id=order_id, carrier="DHL", tracking_number="A-1"
        ),
        metadata=seller(tokens, placed.seller_a),
    )
    assert half.status == order_pb2.ORDER_STATUS_FULFILLING
    assert half.items[0].tracking_number == "A-1" and half.items[0].HasField("ship_time")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.MarkOrderDelivered(
            order_service_pb2.MarkOrderDeliveredRequest(order_id=order_id), metadata=admin(tokens)
        )
    assert rpc_failure(raised).reason == "ILLEGAL_STATUS_TRANSITION"

    shipped = await orders.stub.ShipOrderItems(
        order_service_pb2.ShipOrderItemsRequest(
            order_id=order_id, carrier="UPS", tracking_number="B-2"
        ),
        metadata=seller(tokens, placed.seller_b),
    )
    assert shipped.status == order_pb2.ORDER_STATUS_SHIPPED

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.CancelOrder(
            order_service_pb2.CancelOrderRequest(order_id=order_id),
            metadata=bearer(tokens.mint(placed.buyer)),
        )
    assert rpc_failure(raised).code == grpc.StatusCode.FAILED_PRECONDITION

    delivered = await orders.stub.MarkOrderDelivered(
        order_service_pb2.MarkOrderDeliveredRequest(order_id=order_id), metadata=admin(tokens)
    )
    assert delivered.status == order_pb2.ORDER_STATUS_DELIVERED
    timeline = [(c.to_status, c.actor) for c in delivered.status_history]
    assert timeline[0][0] == order_pb2.ORDER_STATUS_PENDING
    assert (order_pb2.ORDER_STATUS_FULFILLING, placed.seller_a) in timeline
    assert (order_pb2.ORDER_STATUS_SHIPPED, placed.seller_b) in timeline
    assert timeline[-1][0] == order_pb2.ORDER_STATUS_DELIVERED

    # Every status change reached the stream, in order, as versioned OrderEvents.
    types = await event_types(orders, order_id, until="ORDER_EVENT_TYPE_DELIVERED")
    assert types == [
        "ORDER_EVENT_TYPE_PLACED",
        "ORDER_EVENT_TYPE_PAID",
        "ORDER_EVENT_TYPE_FULFILLING",
        "ORDER_EVENT_TYPE_SHIPPED",
        "ORDER_EVENT_TYPE_DELIVERED",
    ]


async def event_types(orders: Orders, order_id: str, *, until: str) -> list[str]:
    async with asyncio.timeout(5):
        while True:
            entries = await orders.redis.xrange(orders.stream)
            found = []
            for _, fields in entries:
                event = events_pb2.OrderEvent.FromString(fields[b"payload"])
                if event.order.order_id == order_id:
                    assert fields[b"type"].decode() == events_pb2.OrderEventType.Name(
                        event.event_type
                    )
                    assert fields[b"event_id"].decode() == event.event_id
                    found.append(fields[b"type"].decode())
            if until in found:
                return found
            await asyncio.sleep(0.05)


async def test_concurrent_refunds_never_pass_the_capture_and_a_key_refunds_once(
    orders: Orders,
    product: ProductService,
    tokens: TestTokens,
) -> None:
    placed = await place_two_seller_order(orders, product, tokens)  # $30.00 captured
    order_id = placed.order.order_id
    request = order_service_pb2.RefundOrderRequest(
        order_id=order_id, amount=money_to_proto(Money(800, "USD")), reason="damaged"
    )
    results = await asyncio.gather(
        *(
            orders.stub.RefundOrder(request, metadata=with_key(tokens.mint(roles=(Role.ADMIN,))))
            for _ in range(6)
        ),
        return_exceptions=True,
    )
    succeeded = [r for r in results if isinstance(r, order_pb2.Order)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    # One change of an order at a time: the others are refused at once, not queued.
    assert len(succeeded) == 1 and len(refused) == 5
    assert {remote_error(r).reason for r in refused} == {"ORDER_CHANGE_IN_PROGRESS"}
    assert {r.code() for r in refused} == {grpc.StatusCode.ABORTED}
    results = [
        await orders.stub.RefundOrder(request, metadata=with_key(tokens.mint(roles=(Role.ADMIN,))))
        for _ in range(2)
    ]
    with pytest.raises(grpc.aio.AioRpcError) as too_much:  # 3 x $8 fit in $30, a 4th does not
        await orders.stub.RefundOrder(request, metadata=with_key(tokens.mint(roles=(Role.ADMIN,))))
    assert rpc_failure(too_much).reason == "REFUND_EXCEEDS_CAPTURED"
    charge = orders.gateway.captured()[-1]
    assert charge.refunded_minor == 2400
    assert (
        await orders.db.fetchval(
            "SELECT refunded_minor FROM orders WHERE id = $1", uuid.UUID(order_id)
        )
        == 2400
    )

    # A seller refunds at most their own lines; the same key twice refunds once.
    seller_b = seller(tokens, placed.seller_b)
    key = (*seller_b, ("idempotency-key", "seller-b-refund"))
    whole = order_service_pb2.RefundOrderRequest(order_id=order_id, reason="out of stock")
    first = await orders.stub.RefundOrder(whole, metadata=key)
    again = await orders.stub.RefundOrder(whole, metadata=key)
    assert first.status == again.status == order_pb2.ORDER_STATUS_REFUNDED
    assert charge.refunded_minor == 3000
    assert (
        await orders.db.fetchval(
            "SELECT count(*) FROM refunds WHERE order_id = $1", uuid.UUID(order_id)
        )
        == 4
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.RefundOrder(
            order_service_pb2.RefundOrderRequest(order_id=order_id, reason="other"), metadata=key
        )
    assert rpc_failure(raised).reason == "IDEMPOTENCY_KEY_REUSED"


async def test_a_buyer_cancels_a_paid_order_and_gets_the_money_back(
    orders: Orders,
    product: ProductService,
    tokens: TestTokens,
) -> None:
    placed = await place_two_seller_order(orders, product, tokens)
    order_id = placed.order.order_id
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.CancelOrder(
            order_service_pb2.CancelOrderRequest(order_id=order_id),
            metadata=bearer(tokens.mint()),  # another buyer
        )
    assert rpc_failure(raised).code == grpc.StatusCode.NOT_FOUND

    cancelled = await orders.stub.CancelOrder(
        order_service_pb2.CancelOrderRequest(order_id=order_id, reason="changed my mind"),
        metadata=bearer(tokens.mint(placed.buyer)),
    )
    assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED
    assert cancelled.payment.status == order_pb2.PAYMENT_STATUS_REFUNDED
    assert orders.gateway.captured()[-1].refunded_minor == 3000
    types = await event_types(orders, order_id, until="ORDER_EVENT_TYPE_CANCELLED")
    assert types[-1] == "ORDER_EVENT_TYPE_CANCELLED"

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.CancelOrder(
            order_service_pb2.CancelOrderRequest(order_id=order_id),
            metadata=bearer(tokens.mint(placed.buyer)),
        )
    assert rpc_failure(raised).reason == "ILLEGAL_STATUS_TRANSITION"


async def test_sales_reports_by_day_and_seller_and_the_plan_uses_the_composite_index(
    orders: Orders,
    product: ProductService,
    tokens: TestTokens,
) -> None:
    placed = await place_two_seller_order(orders, product, tokens)
    today = placed.order.create_time.ToDatetime().date()
    day = date_pb2.Date(year=today.year, month=today.month, day=today.day)
    by_seller = await orders.stub.GetSalesReport(
        order_service_pb2.GetSalesReportRequest(
            start_date=day, end_date=day, grouping=order_service_pb2.SALES_REPORT_GROUPING_SELLER
        ),
        metadata=seller(tokens, placed.seller_a),
    )
    assert [(r.seller_id, r.order_count, r.total.units) for r in by_seller.rows] == [
        (placed.seller_a, 1, 20)
    ]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.GetSalesReport(
            order_service_pb2.GetSalesReportRequest(
                start_date=day, end_date=day, seller_id=placed.seller_b
            ),
            metadata=seller(tokens, placed.seller_a),
        )
    assert rpc_failure(raised).code == grpc.StatusCode.PERMISSION_DENIED
    by_day = await orders.stub.GetSalesReport(
        order_service_pb2.GetSalesReportRequest(start_date=day, end_date=day),
        metadata=admin(tokens),
    )
    assert by_day.rows[0].order_count >= 1 and by_day.total.units >= 30

    # With the table this small the planner would read it whole; switching sequential
    # scans off shows the plan it takes at size: the composite index on the date range.
    async with orders.db.transaction():
        await orders.db.execute("SET LOCAL enable_seqscan = off")
        since = datetime.now(UTC) - timedelta(days=1)
        rows = await orders.db.fetch(
            "EXPLAIN " + BY_DAY_SQL,
            since,
            datetime.now(UTC),
            sorted(s.value for s in SOLD_STATUSES),
            None,
        )
        plan = "\n".join(r[0] for r in rows)
    assert "orders_created_total_idx" in plan, plan


async def test_watch_order_yields_the_order_now_and_at_each_change_until_it_is_final(
    orders: Orders,
    product: ProductService,
    tokens: TestTokens,
) -> None:
    placed = await place_two_seller_order(orders, product, tokens)
    order_id = placed.order.order_id
    stream = orders.stub.WatchOrder(
        order_service_pb2.WatchOrderRequest(order_id=order_id),
        metadata=bearer(tokens.mint(placed.buyer)),
        timeout=20,
    )
    seen: list[int] = []

    async def next_status() -> int:
        # Well under the service's 5 s recheck: a change arrives by notification, not polling.
        async with asyncio.timeout(3):
            update = await stream.read()
        assert isinstance(update, order_pb2.Order)
        seen.append(update.status)
        return update.status

    assert await next_status() == order_pb2.ORDER_STATUS_PAID  # the order as it is now
    for seller_id, tracking in ((placed.seller_a, "A-1"), (placed.seller_b, "B-1")):
        await orders.stub.ShipOrderItems(
            order_service_pb2.ShipOrderItemsRequest(
                order_id=order_id, carrier="DHL", tracking_number=tracking
            ),
            metadata=seller(tokens, seller_id),
        )
        await next_status()
    await orders.stub.MarkOrderDelivered(
        order_service_pb2.MarkOrderDeliveredRequest(order_id=order_id), metadata=admin(tokens)
    )
    await next_status()
    async with asyncio.timeout(3):
        assert await stream.read() is grpc.aio.EOF  # delivered is final: the stream ends
    assert seen == [
        order_pb2.ORDER_STATUS_PAID,
        order_pb2.ORDER_STATUS_FULFILLING,
        order_pb2.ORDER_STATUS_SHIPPED,
        order_pb2.ORDER_STATUS_DELIVERED,
    ]
    assert await stream.code() == grpc.StatusCode.OK


async def test_watch_order_hides_other_buyers_orders(
    orders: Orders,
    product: ProductService,
    tokens: TestTokens,
) -> None:
    placed = await place_two_seller_order(orders, product, tokens)
    stream = orders.stub.WatchOrder(
        order_service_pb2.WatchOrderRequest(order_id=placed.order.order_id),
        metadata=bearer(tokens.mint()),
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stream.read()
    assert rpc_failure(raised).code == grpc.StatusCode.NOT_FOUND


async def test_a_refund_request_id_refunds_once_and_must_agree_with_the_key(
    orders: Orders, product: ProductService, tokens: TestTokens
) -> None:
    placed = await place_two_seller_order(orders, product, tokens)
    order_id = placed.order.order_id
    request_id = str(uuid.uuid4())
    request = order_service_pb2.RefundOrderRequest(
        order_id=order_id,
        amount=money_to_proto(Money(500, "USD")),
        reason="damaged",
        request_id=request_id,
    )
    token = tokens.mint(roles=(Role.ADMIN,))
    first = await orders.stub.RefundOrder(request, metadata=bearer(token))
    # The same request_id again, now also as the metadata: the first refund, not a second.
    again = await orders.stub.RefundOrder(request, metadata=with_key(token, request_id))
    assert again.status == first.status == order_pb2.ORDER_STATUS_PARTIALLY_REFUNDED
    assert orders.gateway.captured()[-1].refunded_minor == 500
    assert (
        await orders.db.fetchval(
            "SELECT count(*) FROM refunds WHERE order_id = $1", uuid.UUID(order_id)
        )
        == 1
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.RefundOrder(
            order_service_pb2.RefundOrderRequest(
                order_id=order_id, reason="damaged", request_id=str(uuid.uuid4())
            ),
            metadata=with_key(token, "another-key"),
        )
    differ = rpc_failure(raised)
    assert differ.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in differ.violations} == {"request_id"}
    assert orders.gateway.captured()[-1].refunded_minor == 500


async def report(
    orders: Orders, metadata: tuple[tuple[str, str], ...], *, by_seller: bool, seller_id: str = ""
) -> dict[str, int]:
    """A sales report of today as {seller id or day: net cents}."""
    today = datetime.now(UTC).date()
    day = date_pb2.Date(year=today.year, month=today.month, day=today.day)
    grouping = (
        order_service_pb2.SALES_REPORT_GROUPING_SELLER
        if by_seller
        else order_service_pb2.SALES_REPORT_GROUPING_DAY
    )
    answer = await orders.stub.GetSalesReport(
        order_service_pb2.GetSalesReportRequest(
            start_date=day, end_date=day, grouping=grouping, seller_id=seller_id
        ),
        metadata=metadata,
    )
    return {
        (r.seller_id if by_seller else f"{r.date.year}-{r.date.month}-{r.date.day}"): (
            r.total.units * 100 + r.total.nanos // 10_000_000
        )
        for r in answer.rows
    }


async def test_reports_by_seller_and_by_day_net_an_admin_partial_refund_alike(
    orders: Orders,
    product: ProductService,
    tokens: TestTokens,
) -> None:
    # Seller A sold $20.00, seller B $10.00; an admin refunds $5.00 of the order without
    # naming a seller, and seller B refunds $1.00 of their own lines.
    placed = await place_two_seller_order(orders, product, tokens)
    order_id = placed.order.order_id
    for metadata, cents in (
        (with_key(tokens.mint(roles=(Role.ADMIN,))), 500),
        (with_key(tokens.mint(placed.seller_b, roles=(Role.SELLER,))), 100),
    ):
        await orders.stub.RefundOrder(
            order_service_pb2.RefundOrderRequest(
                order_id=order_id, amount=money_to_proto(Money(cents, "USD")), reason="damaged"
            ),
            metadata=metadata,
        )

    # The admin's $5.00 splits by what each seller still had: 2000:900 -> 345 and 155 cents.
    a = await report(orders, seller(tokens, placed.seller_a), by_seller=True)
    b = await report(orders, seller(tokens, placed.seller_b), by_seller=True)
    assert a == {placed.seller_a: 2000 - 345}
    assert b == {placed.seller_b: 1000 - 100 - 155}
    # A seller's report by day is their share, not the whole order's.
    [a_by_day] = (await report(orders, seller(tokens, placed.seller_a), by_seller=False)).values()
    [b_by_day] = (await report(orders, seller(tokens, placed.seller_b), by_seller=False)).values()
    assert (a_by_day, b_by_day) == (2000 - 345, 1000 - 100 - 155)
    admin_a = await report(orders, admin(tokens), by_seller=True, seller_id=placed.seller_a)
    assert admin_a == a

    # Over everything sold today both groupings and the ledger agree to the cent.
    everyone_by_seller = sum((await report(orders, admin(tokens), by_seller=True)).values())
    everyone_by_day = sum((await report(orders, admin(tokens), by_seller=False)).values())
    ledger = await orders.db.fetchval(
        """
        SELECT sum(o.total_minor) - coalesce((SELECT sum(r.amount_minor) FROM refunds r
            JOIN orders ro ON ro.id = r.order_id
            WHERE ro.status = ANY($1::text[]) AND ro.created_at >= $2), 0)
        FROM orders o WHERE o.status = ANY($1::text[]) AND o.created_at >= $2
        """,
        sorted(s.value for s in SOLD_STATUSES),
        datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC),
    )
    assert everyone_by_seller == everyone_by_day == ledger
