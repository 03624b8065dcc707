"""OrderService over gRPC with the real product service in-process: the checkout saga end to end."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import grpc
import pytest
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

from services.common.identity import Role
from services.common.money import Money
from services.common.rpc_status import remote_error
from services.order.adapters.payments import SandboxGateway
from services.order.app import build_app
from tests.support.failures import rpc_failure
from tests.support.inprocess import serve_in_process
from tests.support.order import (
    PRICE,
    OrderService,
    ProductService,
    UserService,
    accounts,
    count,
    create_product,
    database_url,
    money,
    order_request,
    order_settings,
    orders,
    place,
    place_failure,
    product,
    stock,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

__all__ = ["accounts", "database_url", "orders", "product"]


async def test_a_visa_order_is_paid_priced_by_the_catalog_and_commits_stock(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=5)
    buyer = await orders.accounts.new_buyer()
    placed = await place(orders, tokens.mint(buyer), order_request((product_id, 2)))

    assert placed.status == order_pb2.ORDER_STATUS_PAID
    assert placed.buyer_id == buyer
    [item] = placed.items
    assert (item.title, item.quantity) == ("Desk lamp", 2)
    assert item.seller_id
    assert money(item.unit_price) == PRICE
    assert money(placed.total) == money(placed.subtotal) == PRICE.times(2)
    assert placed.payment.status == order_pb2.PAYMENT_STATUS_CAPTURED
    assert placed.payment.gateway_reference.startswith("ch_")
    assert [(c.from_status, c.to_status) for c in placed.status_history] == [
        (order_pb2.ORDER_STATUS_UNSPECIFIED, order_pb2.ORDER_STATUS_PENDING),
        (order_pb2.ORDER_STATUS_PENDING, order_pb2.ORDER_STATUS_PAID),
    ]
    assert await stock(product, product_id) == (3, 3, 0)  # committed: sold, not just held
    assert orders.gateway.captured_total("USD") == PRICE.times(2)

    fetched = await orders.stub.GetOrder(
        order_service_pb2.GetOrderRequest(order_id=placed.order_id),
        metadata=bearer(tokens.mint(buyer)),
    )
    assert fetched == placed
    rows = await orders.db.fetch(
        "SELECT status, amount_minor FROM payments WHERE order_id = $1", uuid.UUID(placed.order_id)
    )
    assert [(r["status"], r["amount_minor"]) for r in rows] == [("captured", 2 * PRICE.minor)]


@pytest.mark.parametrize(
    ("token", "decline_code"),
    [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
        ("tok_madeUp", "invalid_token"),
    ],
)
async def test_a_declined_payment_cancels_the_order_and_returns_the_stock(
    orders: OrderService, product: ProductService, tokens: TestTokens, token: str, decline_code: str
) -> None:
    product_id = await create_product(product, stock=4)
    buyer_token = await orders.accounts.buyer_token()
    declined = await place_failure(orders, buyer_token, order_request((product_id, 3), token=token))

    assert declined.code == grpc.StatusCode.FAILED_PRECONDITION
    assert declined.reason == "PAYMENT_DECLINED"
    assert declined.metadata["decline_code"] == decline_code
    cancelled = await orders.stub.GetOrder(
        order_service_pb2.GetOrderRequest(order_id=declined.metadata["order_id"]),
        metadata=bearer(buyer_token),
    )
    assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED
    assert cancelled.payment.status == order_pb2.PAYMENT_STATUS_DECLINED
    assert cancelled.payment.failure_reason == decline_code
    assert [c.to_status for c in cancelled.status_history] == [
        order_pb2.ORDER_STATUS_PENDING,
        order_pb2.ORDER_STATUS_CANCELLED,
    ]
    assert "payment declined" in cancelled.status_history[-1].reason
    assert await stock(product, product_id) == (4, 4, 0)
    assert orders.gateway.captured() == []


async def test_a_payment_timeout_cancels_the_order_as_unavailable(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=2)
    buyer_token = await orders.accounts.buyer_token()
    timed_out = await place_failure(
        orders, buyer_token, order_request((product_id, 1), token="tok_timeout")
    )

    assert timed_out.code == grpc.StatusCode.UNAVAILABLE
    assert timed_out.reason == "PAYMENT_UNAVAILABLE"
    cancelled = await orders.stub.GetOrder(
        order_service_pb2.GetOrderRequest(order_id=timed_out.metadata["order_id"]),
        metadata=bearer(buyer_token),
    )
    assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED
    assert cancelled.payment.status == order_pb2.PAYMENT_STATUS_FAILED
    assert await stock(product, product_id) == (2, 2, 0)
    assert orders.gateway.captured() == []


async def test_a_retry_with_the_same_key_returns_the_same_order_and_charges_once(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=5)
    buyer_token = await orders.accounts.buyer_token()
    key = f"retry-{uuid.uuid4()}"
    first = await place(orders, buyer_token, order_request((product_id, 1)), key)
    again = await place(orders, buyer_token, order_request((product_id, 1)), key)

    assert again == first
    assert len(orders.gateway.captured()) == 1
    assert await stock(product, product_id) == (4, 4, 0)
    assert (
        await count(
            orders, "SELECT count(*) FROM orders WHERE buyer_id = $1", uuid.UUID(first.buyer_id)
        )
        == 1
    )


async def test_a_retry_of_a_declined_order_replays_the_decline(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=5)
    buyer_token = await orders.accounts.buyer_token()
    key = f"declined-{uuid.uuid4()}"
    request = order_request((product_id, 1), token="tok_chargeDeclined")
    first = await place_failure(orders, buyer_token, request, key)
    again = await place_failure(orders, buyer_token, request, key)

    assert again == first
    assert again.reason == "PAYMENT_DECLINED"
    assert (
        await count(
            orders,
            "SELECT count(*) FROM payments WHERE order_id = $1",
            uuid.UUID(first.metadata["order_id"]),
        )
        == 1
    )


async def test_the_same_key_with_another_body_is_refused(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=5)
    buyer_token = await orders.accounts.buyer_token()
    key = f"reused-{uuid.uuid4()}"
    await place(orders, buyer_token, order_request((product_id, 1)), key)
    reused = await place_failure(orders, buyer_token, order_request((product_id, 2)), key)

    assert reused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert reused.reason == "IDEMPOTENCY_KEY_REUSED"
    assert len(orders.gateway.captured()) == 1
    # Keys belong to their buyer: another buyer may use the same string.
    other = await place(
        orders, await orders.accounts.buyer_token(), order_request((product_id, 2)), key
    )
    assert other.status == order_pb2.ORDER_STATUS_PAID


async def test_a_request_id_places_one_order_and_must_agree_with_the_key(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=5)
    buyer_token = await orders.accounts.buyer_token()
    request = order_request((product_id, 1))
    request.request_id = str(uuid.uuid4())
    first = await orders.stub.CreateOrder(request, metadata=bearer(buyer_token))
    # The same request_id again, now also as the metadata: the first order, charged once.
    again = await orders.stub.CreateOrder(
        request, metadata=(*bearer(buyer_token), ("idempotency-key", request.request_id))
    )
    assert again == first
    assert len(orders.gateway.captured()) == 1
    assert await stock(product, product_id) == (4, 4, 0)

    differ = order_request((product_id, 1))
    differ.request_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.CreateOrder(
            differ, metadata=(*bearer(buyer_token), ("idempotency-key", "another-key"))
        )
    both = rpc_failure(raised)
    assert both.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in both.violations} == {"request_id"}

    not_a_uuid = order_request((product_id, 1))
    not_a_uuid.request_id = "order-1"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.CreateOrder(not_a_uuid, metadata=bearer(buyer_token))
    assert {v.field for v in rpc_failure(raised).violations} == {"request_id"}
    assert (
        await count(
            orders, "SELECT count(*) FROM orders WHERE buyer_id = $1", uuid.UUID(first.buyer_id)
        )
        == 1
    )


async def test_the_same_key_sent_ten_times_at_once_places_one_order(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=20)
    buyer = await orders.accounts.new_buyer()
    key = f"burst-{uuid.uuid4()}"
    results = await asyncio.gather(
        *(place(orders, tokens.mint(buyer), order_request((product_id, 2)), key) for _ in range(10))
    )

    assert len({r.order_id for r in results}) == 1
    assert all(r == results[0] for r in results)
    assert len(orders.gateway.captured()) == 1
    assert len(orders.gateway.charges) == 1
    assert await stock(product, product_id) == (18, 18, 0)
    assert (
        await count(orders, "SELECT count(*) FROM orders WHERE buyer_id = $1", uuid.UUID(buyer))
        == 1
    )


async def test_scarce_stock_sells_exactly_what_there_is(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=3)
    buyers = [await orders.accounts.buyer_token() for _ in range(12)]
    outcomes = await asyncio.gather(
        *(place(orders, token, order_request((product_id, 1))) for token in buyers),
        return_exceptions=True,
    )

    paid = [o for o in outcomes if isinstance(o, order_pb2.Order)]
    refused = [remote_error(o) for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(paid) + len(refused) == 12
    assert {o.status for o in paid} == {order_pb2.ORDER_STATUS_PAID}
    assert len(paid) == 3
    assert {(f.code, f.reason) for f in refused} == {
        (grpc.StatusCode.FAILED_PRECONDITION, "OUT_OF_STOCK")
    }
    assert {f.metadata.get("product_id") for f in refused} == {product_id}
    assert await stock(product, product_id) == (0, 0, 0)  # sold out, nothing left reserved
    assert len(orders.gateway.captured()) == 3
    assert orders.gateway.captured_total("USD") == PRICE.times(3)
    # A refused reservation writes no order: only the key's stored error.
    assert (
        await count(
            orders,
            "SELECT count(*) FROM order_items WHERE product_id = $1",
            product_id,
        )
        == 3
    )


async def test_an_unknown_product_is_not_found_and_writes_no_order(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    known = await create_product(product, stock=5)
    buyer = await orders.accounts.new_buyer()
    missing = await place_failure(
        orders, tokens.mint(buyer), order_request((known, 1), ("no-such-product", 1))
    )

    assert missing.code == grpc.StatusCode.NOT_FOUND
    assert missing.reason == "PRODUCT_NOT_FOUND"
    assert await stock(product, known) == (5, 5, 0)  # all or nothing
    assert (
        await count(orders, "SELECT count(*) FROM orders WHERE buyer_id = $1", uuid.UUID(buyer))
        == 0
    )
    assert orders.gateway.charges == []


async def test_items_in_different_currencies_are_refused_and_released(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    dollars = await create_product(product, stock=5)
    euros = await create_product(product, stock=5, price=Money(1500, "EUR"))
    refused = await place_failure(
        orders, await orders.accounts.buyer_token(), order_request((dollars, 1), (euros, 1))
    )

    assert (refused.code, refused.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CURRENCY_MISMATCH",
    )
    assert await stock(product, dollars) == (5, 5, 0)
    assert await stock(product, euros) == (5, 5, 0)


async def test_an_unreachable_product_service_is_unavailable_and_frees_the_key(
    database_url: str, accounts: UserService, tokens: TestTokens, backends: Backends
) -> None:
    with_socket_closed = order_settings(
        database_url, "127.0.0.1:1", backends.redis_url, user_target=accounts.served.target
    )
    gateway = SandboxGateway(latency_seconds=0.001)
    buyer = await accounts.new_buyer()
    key = f"down-{uuid.uuid4()}"
    async with serve_in_process(
        with_socket_closed,
        lambda: build_app(
            with_socket_closed, key_source=tokens.key_source(), payment_gateway=gateway
        ),
    ) as served:
        stub = order_service_pb2_grpc.OrderServiceStub(served.channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.CreateOrder(
                order_request(("p-1", 1)),
                metadata=(*bearer(tokens.mint(buyer)), ("idempotency-key", key)),
            )
    down = rpc_failure(raised)
    assert (down.code, down.reason) == (grpc.StatusCode.UNAVAILABLE, "INVENTORY_UNAVAILABLE")
    db = await asyncpg.connect(database_url)
    try:
        keys = await db.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE buyer_id = $1", uuid.UUID(buyer)
        )
        assert keys == 0  # a retry with the same key will run afresh
    finally:
        await db.close()
    assert gateway.charges == []


async def test_another_buyer_cannot_see_an_order_but_an_admin_can(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=5)
    placed = await place(
        orders, await orders.accounts.buyer_token(), order_request((product_id, 1))
    )
    request = order_service_pb2.GetOrderRequest(order_id=placed.order_id)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.GetOrder(request, metadata=bearer(tokens.mint()))
    hidden = rpc_failure(raised)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.GetOrder(
            order_service_pb2.GetOrderRequest(order_id=str(uuid.uuid4())),
            metadata=bearer(tokens.mint()),
        )
    missing = rpc_failure(raised)
    assert hidden == missing  # a stranger cannot tell someone else's order from none
    assert (hidden.code, hidden.reason) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")

    admin = await orders.stub.GetOrder(request, metadata=bearer(tokens.mint(roles=(Role.ADMIN,))))
    assert admin.order_id == placed.order_id

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.GetOrder(
            order_service_pb2.GetOrderRequest(order_id="not-a-uuid"), metadata=bearer(tokens.mint())
        )
    assert {v.field for v in rpc_failure(raised).violations} == {"order_id"}


async def test_list_orders_pages_newest_first_with_a_status_filter(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=50)
    buyer = await orders.accounts.new_buyer()
    token = tokens.mint(buyer)
    placed = []
    for index in range(5):
        payment = "tok_chargeDeclined" if index == 2 else "tok_visa"
        try:
            placed.append(
                (await place(orders, token, order_request((product_id, 1), token=payment))).order_id
            )
        except grpc.aio.AioRpcError as error:
            placed.append(remote_error(error).metadata["order_id"])
    await place(
        orders, await orders.accounts.buyer_token(), order_request((product_id, 1))
    )  # someone else's

    seen: list[str] = []
    page_token = ""
    pages = 0
    while True:
        page = await orders.stub.ListOrders(
            order_service_pb2.ListOrdersRequest(page_size=2, page_token=page_token),
            metadata=bearer(token),
        )
        pages += 1
        seen += [o.order_id for o in page.orders]
        assert all(len(o.status_history) >= 2 and o.items for o in page.orders)
        page_token = page.next_page_token
        if not page_token:
            break
    assert pages == 3
    assert seen == list(reversed(placed))

    cancelled = await orders.stub.ListOrders(
        order_service_pb2.ListOrdersRequest(status=order_pb2.ORDER_STATUS_CANCELLED),
        metadata=bearer(token),
    )
    assert [o.order_id for o in cancelled.orders] == [placed[2]]
    assert cancelled.next_page_token == ""

    first = await orders.stub.ListOrders(
        order_service_pb2.ListOrdersRequest(page_size=2), metadata=bearer(token)
    )
    for bad in (
        order_service_pb2.ListOrdersRequest(page_size=-1),
        order_service_pb2.ListOrdersRequest(page_token="garbage!"),
        # A token of one query is refused by another.
        order_service_pb2.ListOrdersRequest(
            page_token=first.next_page_token, status=order_pb2.ORDER_STATUS_PAID
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await orders.stub.ListOrders(bad, metadata=bearer(token))
        assert rpc_failure(raised).code == grpc.StatusCode.INVALID_ARGUMENT


async def test_create_order_validates_its_input_before_touching_anything(
    orders: OrderService, tokens: TestTokens
) -> None:
    buyer = await orders.accounts.new_buyer()
    token = tokens.mint(buyer)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.CreateOrder(order_request(("p-1", 1)), metadata=bearer(token))
    no_key = rpc_failure(raised)
    assert no_key.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in no_key.violations} == {"idempotency-key"}

    bad = order_service_pb2.CreateOrderRequest(
        items=[order_pb2.OrderItem(product_id="p-1", quantity=0)],
        shipping_address=order_pb2.ShippingAddress(recipient_name="Ada", country_code="Germany"),
    )
    invalid = await place_failure(orders, token, bad)
    assert invalid.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in invalid.violations} == {
        "items[0].quantity",
        "shipping_address.line1",
        "shipping_address.city",
        "shipping_address.country_code",
        "payment_method_token",
    }

    by_address_id = order_service_pb2.CreateOrderRequest(
        items=[order_pb2.OrderItem(product_id="p-1", quantity=1)],
        address_id="home",
        payment_method_token="tok_visa",
    )
    not_an_id = await place_failure(orders, token, by_address_id)
    assert not_an_id.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in not_an_id.violations} == {"address_id"}
    assert (
        await count(
            orders, "SELECT count(*) FROM idempotency_keys WHERE buyer_id = $1", uuid.UUID(buyer)
        )
        == 0
    )
    assert orders.gateway.charges == []


async def test_calls_need_a_token_and_unknown_orders_are_not_found(
    orders: OrderService, tokens: TestTokens
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.ListOrders(order_service_pb2.ListOrdersRequest())
    assert rpc_failure(raised).code == grpc.StatusCode.UNAUTHENTICATED

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.CancelOrder(
            order_service_pb2.CancelOrderRequest(order_id=str(uuid.uuid4())),
            metadata=bearer(tokens.mint()),
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_client_that_gives_up_does_not_stop_the_saga_halfway(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=5)
    buyer_token = await orders.accounts.buyer_token()
    key = f"impatient-{uuid.uuid4()}"
    metadata = (*bearer(buyer_token), ("idempotency-key", key))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        # Shorter than reserve + authorize + capture: the client is gone before the end.
        await orders.stub.CreateOrder(
            order_request((product_id, 1)), metadata=metadata, timeout=0.015
        )
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    retried = await orders.stub.CreateOrder(order_request((product_id, 1)), metadata=metadata)
    assert retried.status == order_pb2.ORDER_STATUS_PAID
    assert len(orders.gateway.captured()) == 1
    assert await stock(product, product_id) == (4, 4, 0)
