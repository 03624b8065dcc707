"""Concurrent cancels and refunds of one order: one proceeds, the rest answer at once.

The order service runs in-process on real PostgreSQL with a small pool, so a use case that
held a pooled connection (with the order row locked) across a second acquire or a gateway
call would exhaust it and freeze every caller; here every call must answer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest_asyncio
from marketplace.order.v1 import order_pb2, order_service_pb2

from services.common.money import Money
from services.common.proto_money import money_from_proto, money_to_proto
from services.common.rpc_status import remote_error
from services.order.adapters.payments import SandboxGateway
from tests.support.order import (
    MIGRATIONS,
    OrderService,
    ProductService,
    UserService,
    accounts,
    create_product,
    order_request,
    order_settings,
    place,
    product,
    serving_orders,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

__all__ = ["accounts", "product"]

# A generous bound on each call, far above its normal latency: only a frozen service misses it.
DEADLINE = 20.0


@pytest_asyncio.fixture(loop_scope="session")
async def orders(
    backends: Backends,
    product: ProductService,
    accounts: UserService,
    tokens: TestTokens,
) -> AsyncIterator[OrderService]:
    """An order service with a pool of three connections and a gateway taking 200 ms a call."""
    database_url = backends.database_url("orders_concurrency", MIGRATIONS)
    settings = order_settings(
        database_url, product.served.target, backends.redis_url, user_target=accounts.served.target
    ).model_copy(
        update={
            "database_pool_size": 3,
            # Generous, so a loaded test machine never turns a wait into DATABASE_BUSY.
            "database_acquire_timeout_seconds": 15.0,
            "payment_timeout_seconds": 5.0,
            "rpc_timeout_seconds": 5,
        }
    )
    gateway = SandboxGateway(latency_seconds=0.2, timeout_seconds=5.0)
    async with serving_orders(settings, accounts, tokens, gateway) as served:
        yield served


async def test_twelve_concurrent_cancels_one_wins_and_other_users_are_served(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=20)
    buyer, other = await orders.accounts.buyer_token(), await orders.accounts.buyer_token()
    placed = await place(orders, buyer, order_request((product_id, 2)))
    theirs = await place(orders, other, order_request((product_id, 1)))

    cancel = order_service_pb2.CancelOrderRequest(order_id=placed.order_id, reason="changed mind")
    cancels = [
        orders.stub.CancelOrder(cancel, metadata=bearer(buyer), timeout=DEADLINE) for _ in range(12)
    ]
    reads = [
        orders.stub.GetOrder(
            order_service_pb2.GetOrderRequest(order_id=theirs.order_id),
            metadata=bearer(other),
            timeout=DEADLINE,
        )
        for _ in range(3)
    ]
    creates = [
        orders.stub.CreateOrder(
            order_request((product_id, 1)),
            metadata=(*bearer(other), ("idempotency-key", str(uuid.uuid4()))),
            timeout=DEADLINE,
        )
        for _ in range(2)
    ]
    results = await asyncio.gather(*cancels, *reads, *creates, return_exceptions=True)

    cancelled = [r for r in results[:12] if isinstance(r, order_pb2.Order)]
    refused = [r for r in results[:12] if isinstance(r, grpc.aio.AioRpcError)]
    assert len(cancelled) == 1 and len(refused) == 11
    assert cancelled[0].status == order_pb2.ORDER_STATUS_CANCELLED
    for error in refused:
        seen = remote_error(error)
        assert (seen.code, seen.reason) in {
            (grpc.StatusCode.ABORTED, "ORDER_CHANGE_IN_PROGRESS"),
            (grpc.StatusCode.FAILED_PRECONDITION, "ILLEGAL_STATUS_TRANSITION"),
        }, seen
    # The other buyer never noticed.
    assert all(isinstance(r, order_pb2.Order) for r in results[12:]), results[12:]
    assert all(r.status == order_pb2.ORDER_STATUS_PAID for r in results[14:])  # type: ignore[union-attr]
    # The capture went back exactly once.
    [charge] = [c for c in orders.gateway.captured() if c.refunded_minor]
    assert charge.refunded_minor == charge.amount.minor
    assert (
        await orders.db.fetchval(
            "SELECT count(*) FROM order_changes WHERE order_id = $1 AND state = 'done'",
            uuid.UUID(placed.order_id),
        )
        == 1
    )


async def test_ten_concurrent_seller_refunds_never_pass_the_capture(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=5)
    buyer = await orders.accounts.buyer_token()
    placed = await place(orders, buyer, order_request((product_id, 1)))  # 15.00 captured
    captured = money_from_proto(placed.total, "total")
    request = order_service_pb2.RefundOrderRequest(
        order_id=placed.order_id,
        amount=money_to_proto(Money(800, captured.currency)),
        reason="late",
    )
    results = await asyncio.gather(
        *(
            orders.stub.RefundOrder(
                request,
                metadata=(*bearer(product.seller_token), ("idempotency-key", str(uuid.uuid4()))),
                timeout=DEADLINE,
            )
            for _ in range(10)
        ),
        return_exceptions=True,
    )
    succeeded = [r for r in results if isinstance(r, order_pb2.Order)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(succeeded) + len(refused) == 10  # every call answered
    assert len(succeeded) >= 1
    assert {remote_error(r).code for r in refused} <= {
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
    refunded = await orders.db.fetchval(
        "SELECT refunded_minor FROM orders WHERE id = $1", uuid.UUID(placed.order_id)
    )
    assert refunded == 800 * len(succeeded) <= captured.minor
    [charge] = [c for c in orders.gateway.captured() if c.amount.minor == captured.minor]
    assert charge.refunded_minor == refunded
