"""ReturnService over gRPC on real PostgreSQL, with the real user and product services in-process.

Buyers sign up through the user service's API; orders are placed, shipped and delivered
through the order service's API, and returns refund through the sandbox gateway. The pool
is small and the gateway slow, so a use case that held a connection or a row lock across
the gateway call would freeze the concurrent calls here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio
from marketplace.order.v1 import (
    order_pb2,
    order_service_pb2,
    return_pb2,
    return_service_pb2,
    return_service_pb2_grpc,
)

from services.common.identity import Role
from services.common.money import Money
from services.common.rpc_status import RemoteError, remote_error
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

DEADLINE = 20.0


@pytest_asyncio.fixture(loop_scope="session")
async def orders(
    backends: Backends,
    product: ProductService,
    accounts: UserService,
    tokens: TestTokens,
) -> AsyncIterator[OrderService]:
    """An order service with a pool of three connections and a gateway taking 100 ms a call."""
    database_url = backends.database_url("orders_returns", MIGRATIONS)
    settings = order_settings(
        database_url, product.served.target, backends.redis_url, user_target=accounts.served.target
    ).model_copy(
        update={
            "database_pool_size": 3,
            "database_acquire_timeout_seconds": 15.0,
            "payment_timeout_seconds": 5.0,
            "rpc_timeout_seconds": 5,
        }
    )
    gateway = SandboxGateway(latency_seconds=0.1, timeout_seconds=5.0)
    async with serving_orders(settings, accounts, tokens, gateway) as served:
        yield served


@dataclass
class Delivered:
    """A delivered order of one product (3 units at 19.99), its buyer and its seller."""

    order: order_pb2.Order
    buyer: str
    seller: str
    product_id: str
    returns: return_service_pb2_grpc.ReturnServiceAsyncStub


async def delivered_order(
    orders: OrderService, product: ProductService, tokens: TestTokens, *, deliver: bool = True
) -> Delivered:
    product_id = await create_product(product, stock=5)
    buyer = await orders.accounts.buyer_token()
    placed = await place(orders, buyer, order_request((product_id, 3)))
    seller = tokens.mint(placed.items[0].seller_id, roles=(Role.SELLER,))
    await orders.stub.ShipOrderItems(
        order_service_pb2.ShipOrderItemsRequest(
            order_id=placed.order_id, carrier="DHL", tracking_number="R-1"
        ),
        metadata=bearer(seller),
    )
    if deliver:
        placed = await orders.stub.MarkOrderDelivered(
            order_service_pb2.MarkOrderDeliveredRequest(order_id=placed.order_id),
            metadata=bearer(tokens.mint(roles=(Role.ADMIN,))),
        )
    stub = return_service_pb2_grpc.ReturnServiceStub(orders.served.channel)
    return Delivered(placed, buyer, seller, product_id, stub)


def ask(
    delivered: Delivered, quantity: int, *, reason: str = "scratched"
) -> return_service_pb2.CreateReturnRequest:
    return return_service_pb2.CreateReturnRequest(
        order_id=delivered.order.order_id,
        order_return=return_pb2.Return(
            items=[return_pb2.ReturnItem(product_id=delivered.product_id, quantity=quantity)],
            reason=reason,
        ),
    )


def keyed(token: str, key: str | None = None) -> tuple[tuple[str, str], ...]:
    return (*bearer(token), ("idempotency-key", key or uuid.uuid4().hex))


async def failure(call: object) -> RemoteError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return remote_error(raised.value)


async def test_a_delivered_item_is_returned_approved_received_and_refunded_once(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    d = await delivered_order(orders, product, tokens)
    key = uuid.uuid4().hex
    created = await d.returns.CreateReturn(ask(d, 2), metadata=keyed(d.buyer, key))
    assert created.state == return_pb2.RETURN_STATE_REQUESTED
    assert created.name == f"returns/{created.return_id}"
    assert (created.items_total.units, created.items_total.nanos) == (39, 980_000_000)
    assert created.items[0].title and created.seller_id == d.order.items[0].seller_id
    again = await d.returns.CreateReturn(ask(d, 2), metadata=keyed(d.buyer, key))
    assert again.return_id == created.return_id
    reused = await failure(d.returns.CreateReturn(ask(d, 1), metadata=keyed(d.buyer, key)))
    assert (reused.code, reused.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "IDEMPOTENCY_KEY_REUSED",
    )

    by_id = return_service_pb2.GetReturnRequest(return_id=created.return_id)
    assert (await d.returns.GetReturn(by_id, metadata=bearer(d.seller))).reason == "scratched"
    stranger = await failure(
        d.returns.GetReturn(by_id, metadata=bearer(await orders.accounts.buyer_token()))
    )
    assert (stranger.code, stranger.reason) == (grpc.StatusCode.NOT_FOUND, "RETURN_NOT_FOUND")
    approve = return_service_pb2.ApproveReturnRequest(
        return_id=created.return_id, reason="send it to the depot"
    )
    buyer_approves = await failure(d.returns.ApproveReturn(approve, metadata=bearer(d.buyer)))
    assert (buyer_approves.code, buyer_approves.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_RETURN_SELLER",
    )
    approved = await d.returns.ApproveReturn(approve, metadata=bearer(d.seller))
    assert approved.state == return_pb2.RETURN_STATE_APPROVED and approved.HasField("decide_time")

    receive = return_service_pb2.ReceiveReturnRequest(return_id=created.return_id)
    refunded = await d.returns.ReceiveReturn(receive, metadata=bearer(d.seller), timeout=DEADLINE)
    assert refunded.state == return_pb2.RETURN_STATE_REFUNDED
    assert (refunded.refund_amount.units, refunded.refund_amount.nanos) == (39, 980_000_000)
    assert refunded.HasField("receive_time") and refunded.HasField("refund_time")
    replay = await d.returns.ReceiveReturn(receive, metadata=bearer(d.seller))
    assert replay.state == return_pb2.RETURN_STATE_REFUNDED

    order = await orders.stub.GetOrder(
        order_service_pb2.GetOrderRequest(order_id=d.order.order_id), metadata=bearer(d.buyer)
    )
    assert order.status == order_pb2.ORDER_STATUS_PARTIALLY_REFUNDED
    assert order.payment.refunded_amount.units == 39
    [charge] = [c for c in orders.gateway.captured() if c.refunded_minor]
    assert charge.refunded_minor == 3998
    order_id = uuid.UUID(d.order.order_id)
    assert (
        await orders.db.fetchval("SELECT count(*) FROM refunds WHERE order_id = $1", order_id) == 1
    )

    listed = await d.returns.ListReturns(
        return_service_pb2.ListReturnsRequest(order_id=d.order.order_id), metadata=bearer(d.buyer)
    )
    assert [r.return_id for r in listed.returns] == [created.return_id]
    # The third unit is still returnable; a fourth is not.
    more = await failure(d.returns.CreateReturn(ask(d, 2), metadata=keyed(d.buyer)))
    assert (more.code, more.reason, more.metadata["returnable"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RETURN_QUANTITY_EXCEEDED",
        "1",
    )


async def test_requests_are_checked_and_only_delivered_orders_of_the_buyer_return(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    d = await delivered_order(orders, product, tokens, deliver=False)
    early = await failure(d.returns.CreateReturn(ask(d, 1), metadata=keyed(d.buyer)))
    assert (early.code, early.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ORDER_NOT_DELIVERED",
    )
    unkeyed = await failure(d.returns.CreateReturn(ask(d, 1), metadata=bearer(d.buyer)))
    assert unkeyed.code == grpc.StatusCode.INVALID_ARGUMENT
    bad = ask(d, 0, reason="")
    bad.order_id = "not-a-uuid"
    invalid = await failure(d.returns.CreateReturn(bad, metadata=keyed(d.buyer)))
    assert invalid.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in invalid.violations} == {
        "order_id",
        "order_return.items[0].quantity",
        "order_return.reason",
    }
    seller_asks = await failure(d.returns.CreateReturn(ask(d, 1), metadata=keyed(d.seller)))
    assert (seller_asks.code, seller_asks.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_ORDER_BUYER",
    )
    other = await orders.accounts.buyer_token()
    hidden = await failure(d.returns.CreateReturn(ask(d, 1), metadata=keyed(other)))
    assert (hidden.code, hidden.reason) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")
    reject = return_service_pb2.RejectReturnRequest(return_id=str(uuid.uuid4()))
    no_reason = await failure(d.returns.RejectReturn(reject, metadata=bearer(d.seller)))
    assert [v.field for v in no_reason.violations] == ["reason"]


async def test_concurrent_returns_of_the_same_units_and_concurrent_receipts_refund_once(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    d = await delivered_order(orders, product, tokens)
    asks = await asyncio.gather(
        *(
            d.returns.CreateReturn(ask(d, 2), metadata=keyed(d.buyer), timeout=DEADLINE)
            for _ in range(4)
        ),
        return_exceptions=True,
    )
    made = [r for r in asks if isinstance(r, return_pb2.Return)]
    refused = [remote_error(r) for r in asks if isinstance(r, grpc.aio.AioRpcError)]
    assert len(made) == 1, asks
    assert {(r.code, r.reason) for r in refused} == {
        (grpc.StatusCode.FAILED_PRECONDITION, "RETURN_QUANTITY_EXCEEDED")
    }
    held = await orders.db.fetchval(
        "SELECT sum((line->>'quantity')::int) FROM returns, jsonb_array_elements(lines) line "
        "WHERE order_id = $1",
        uuid.UUID(d.order.order_id),
    )
    assert held == 2

    [created] = made
    await d.returns.ApproveReturn(
        return_service_pb2.ApproveReturnRequest(return_id=created.return_id),
        metadata=bearer(d.seller),
    )
    receive = return_service_pb2.ReceiveReturnRequest(return_id=created.return_id)
    receipts = await asyncio.gather(
        *(
            d.returns.ReceiveReturn(receive, metadata=bearer(d.seller), timeout=DEADLINE)
            for _ in range(4)
        ),
        return_exceptions=True,
    )
    for outcome in receipts:
        if isinstance(outcome, grpc.aio.AioRpcError):
            seen = remote_error(outcome)
            assert (seen.code, seen.reason) == (
                grpc.StatusCode.ABORTED,
                "RETURN_REFUND_IN_PROGRESS",
            ), seen
        else:
            assert isinstance(outcome, return_pb2.Return)
            assert outcome.state == return_pb2.RETURN_STATE_REFUNDED
    assert any(isinstance(r, return_pb2.Return) for r in receipts)
    [charge] = [c for c in orders.gateway.captured() if c.refunded_minor]
    assert charge.refunded_minor == Money(3998, "USD").minor
    order_id = uuid.UUID(d.order.order_id)
    assert (
        await orders.db.fetchval("SELECT count(*) FROM refunds WHERE order_id = $1", order_id) == 1
    )
    final = await d.returns.GetReturn(
        return_service_pb2.GetReturnRequest(return_id=created.return_id), metadata=bearer(d.buyer)
    )
    assert final.state == return_pb2.RETURN_STATE_REFUNDED


async def test_a_seller_lists_their_returns_across_orders_newest_first_by_state_and_page(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    made = [await delivered_order(orders, product, tokens) for _ in range(3)]
    seller, stub = made[0].seller, made[0].returns
    seller_id = made[0].order.items[0].seller_id
    ids = []
    for d in made:
        created = await stub.CreateReturn(ask(d, 1), metadata=keyed(d.buyer))
        ids.append(created.return_id)
    await stub.ApproveReturn(
        return_service_pb2.ApproveReturnRequest(return_id=ids[0]), metadata=bearer(seller)
    )
    await stub.RejectReturn(
        return_service_pb2.RejectReturnRequest(return_id=ids[1], reason="worn"),
        metadata=bearer(seller),
    )

    seen: list[return_pb2.Return] = []
    request = return_service_pb2.ListSellerReturnsRequest(seller_id="me", page_size=1)
    while True:
        page = await stub.ListSellerReturns(request, metadata=bearer(seller))
        assert len(page.returns) <= 1
        seen.extend(page.returns)
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    # Returns of earlier tests by the same seller are older: this test's three come first.
    assert [r.return_id for r in seen[:3]] == ids[::-1]
    assert len({r.return_id for r in seen}) == len(seen)
    assert {r.seller_id for r in seen} == {seller_id}

    requested = await stub.ListSellerReturns(
        return_service_pb2.ListSellerReturnsRequest(
            seller_id=seller_id, states=[return_pb2.RETURN_STATE_REQUESTED]
        ),
        metadata=bearer(seller),
    )
    assert {r.state for r in requested.returns} == {return_pb2.RETURN_STATE_REQUESTED}
    assert ids[2] in {r.return_id for r in requested.returns}
    assert not {ids[0], ids[1]} & {r.return_id for r in requested.returns}

    first = await stub.ListSellerReturns(
        return_service_pb2.ListSellerReturnsRequest(seller_id="me", page_size=1),
        metadata=bearer(seller),
    )
    other_query = return_service_pb2.ListSellerReturnsRequest(
        seller_id="me",
        states=[return_pb2.RETURN_STATE_APPROVED],
        page_token=first.next_page_token,
    )
    mismatch = await failure(stub.ListSellerReturns(other_query, metadata=bearer(seller)))
    assert mismatch.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in mismatch.violations] == ["page_token"]
    unspecified = await failure(
        stub.ListSellerReturns(
            return_service_pb2.ListSellerReturnsRequest(
                seller_id="me", states=[return_pb2.RETURN_STATE_UNSPECIFIED]
            ),
            metadata=bearer(seller),
        )
    )
    assert [v.field for v in unspecified.violations] == ["states"]

    mine = return_service_pb2.ListSellerReturnsRequest(seller_id=seller_id)
    buyer = await failure(stub.ListSellerReturns(mine, metadata=bearer(made[0].buyer)))
    assert (buyer.code, buyer.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
    rival = tokens.mint(str(uuid.uuid4()), roles=(Role.SELLER,))
    probing = await failure(stub.ListSellerReturns(mine, metadata=bearer(rival)))
    assert (probing.code, probing.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_RETURN_SELLER",
    )
    own = await stub.ListSellerReturns(
        return_service_pb2.ListSellerReturnsRequest(seller_id="me"), metadata=bearer(rival)
    )
    assert list(own.returns) == []
    admin = await stub.ListSellerReturns(mine, metadata=bearer(tokens.mint(roles=(Role.ADMIN,))))
    assert admin.returns[0].return_id == ids[2]
