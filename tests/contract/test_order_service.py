"""OrderService over gRPC with the real product service in-process: the checkout saga end to end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import jwt
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_status import rpc_status
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc
from pymongo import AsyncMongoClient

from services.common.identity import Role
from services.common.money import Money
from services.common.proto_money import money_to_proto
from services.order.adapters.payments import SandboxGateway
from services.order.app import build_app
from services.order.config import Settings
from services.product.adapters.mongo.products import MongoProductRepository
from services.product.app import build_app as product_build_app
from services.user.app import build_app as user_build_app
from services.user.config import Settings as UserSettings
from tests.support.inprocess import InProcessService, serve_in_process
from tests.support.product import create_categories, product_settings
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

MIGRATIONS = Path("services/order/migrations")
USER_MIGRATIONS = Path("services/user/migrations")
SECRET = "order-contract-test-internal-secret"
PRICE = Money(1999, "USD")


@dataclass
class ProductService:
    served: InProcessService
    stub: product_service_pb2_grpc.ProductServiceAsyncStub
    repository: MongoProductRepository
    seller_token: str


@dataclass
class UserService:
    """The real user service, which checkout asks whether a buyer may buy."""

    served: InProcessService
    db: asyncpg.Pool[asyncpg.Record]  # a pool: tests place orders concurrently

    async def register(self, user_id: str) -> None:
        """Give `user_id` an account, as signing up would; idempotent.

        Tests mint tokens for chosen ids, so the account row is written directly: the
        user service only reads it to vouch for the buyer, and no one signs in with it.
        """
        name = f"b{uuid.UUID(user_id).hex[:24]}"
        await self.db.execute(
            "INSERT INTO users (id, email, username, password_hash) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING",
            uuid.UUID(user_id),
            f"{name}@example.com",
            name,
            "no-login-for-test-buyers",
        )

    async def register_bearer(self, token: str) -> None:
        """Give the subject of `token` an account."""
        await self.register(jwt.decode(token, options={"verify_signature": False})["sub"])

    async def suspend(self, user_id: str) -> None:
        """Suspend the account, as an admin's SuspendUser would."""
        await self.db.execute(
            "UPDATE users SET state = 'suspended' WHERE id = $1", uuid.UUID(user_id)
        )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def accounts(backends: Backends, tokens: TestTokens) -> AsyncIterator[UserService]:
    """The user service in-process on a fresh database, trusting the test tokens."""
    url = backends.database_url("order_users", USER_MIGRATIONS)
    settings = UserSettings(
        database_url=url,
        environment="test",
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        internal_secret=SECRET,
        shutdown_notice_seconds=0,
        shutdown_grace_seconds=1,
    )
    async with (
        asyncpg.create_pool(url, min_size=1, max_size=4) as db,
        serve_in_process(
            settings, lambda: user_build_app(settings, key_source=tokens.key_source())
        ) as served,
    ):
        yield UserService(served, db)


@dataclass
class OrderService:
    served: InProcessService
    stub: order_service_pb2_grpc.OrderServiceAsyncStub
    gateway: SandboxGateway
    db: asyncpg.Connection[asyncpg.Record]
    accounts: UserService


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def product(backends: Backends, tokens: TestTokens) -> AsyncIterator[ProductService]:
    # No test here reads the order event stream: product_settings leaves the consumer off.
    settings = product_settings(
        backends, "products", internal_secret=SECRET, shutdown_grace_seconds=1
    )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(backends.mongo_url, tz_aware=True)
    try:
        async with serve_in_process(
            settings, lambda: product_build_app(settings, key_source=tokens.key_source())
        ) as served:
            stub = product_service_pb2_grpc.ProductServiceStub(served.channel)
            # The order tests list their products in this one category of the tree.
            await create_categories(stub, tokens, {"home": ["lighting"]})
            yield ProductService(
                served,
                stub,
                MongoProductRepository(client[settings.mongo_database]),
                tokens.mint(roles=(Role.SELLER,)),
            )
    finally:
        await client.close()


@pytest.fixture(scope="module")
def database_url(backends: Backends) -> str:
    return backends.database_url("orders", MIGRATIONS)


def order_settings(
    database_url: str, product_target: str, redis_url: str, *, user_target: str
) -> Settings:
    return Settings(
        database_url=database_url,
        user_target=user_target,
        redis_url=redis_url,
        events_stream=f"test.order.events.{uuid.uuid4().hex[:8]}",
        environment="test",
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        internal_secret=SECRET,
        product_target=product_target,
        payment_latency_ms=10,
        payment_timeout_seconds=0.3,
        rpc_timeout_seconds=2,
        shutdown_notice_seconds=0,
        shutdown_grace_seconds=1,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def orders(
    database_url: str,
    product: ProductService,
    accounts: UserService,
    tokens: TestTokens,
    backends: Backends,
) -> AsyncIterator[OrderService]:
    """A fresh order service per test, so its sandbox gateway counts only this test's charges."""
    settings = order_settings(
        database_url,
        product.served.target,
        backends.redis_url,
        user_target=accounts.served.target,
    )
    gateway = SandboxGateway(latency_seconds=0.01, timeout_seconds=settings.payment_timeout_seconds)
    db = await asyncpg.connect(database_url)
    try:
        async with serve_in_process(
            settings,
            lambda: build_app(settings, key_source=tokens.key_source(), payment_gateway=gateway),
        ) as served:
            stub = order_service_pb2_grpc.OrderServiceStub(served.channel)
            yield OrderService(served, stub, gateway, db, accounts)
    finally:
        await db.close()


@dataclass
class Failure:
    code: grpc.StatusCode
    reason: str
    metadata: dict[str, str]
    violations: dict[str, str]


def failure(error: grpc.aio.AioRpcError) -> Failure:
    status = rpc_status.from_call(error)
    reason, metadata, violations = "", {}, {}
    if status is not None:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(info):
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Unpack(bad):
                violations = {v.field: v.description for v in bad.field_violations}
    return Failure(error.code(), reason, metadata, violations)


async def create_product(
    product: ProductService, stock: int, price: Money = PRICE, title: str = "Desk lamp"
) -> str:
    created = await product.stub.CreateProduct(
        product_service_pb2.CreateProductRequest(
            product=product_pb2.Product(
                title=title,
                category="home",
                list_price=money_to_proto(price),
                initial_stock=stock,
            ),
            publish=True,
        ),
        metadata=bearer(product.seller_token),
    )
    return created.product_id


async def stock(product: ProductService, product_id: str) -> tuple[int, int, int]:
    """(available through the API, on hand, reserved) of a product."""
    seen = await product.stub.GetProduct(
        product_service_pb2.GetProductRequest(product_id=product_id)
    )
    stored = await product.repository.get(product_id)
    assert stored is not None
    return seen.stock_available, stored.inventory.on_hand, stored.inventory.reserved


def order_request(
    *lines: tuple[str, int], token: str = "tok_visa"
) -> order_service_pb2.CreateOrderRequest:
    return order_service_pb2.CreateOrderRequest(
        items=[order_pb2.OrderItem(product_id=p, quantity=q) for p, q in lines],
        shipping_address=order_pb2.ShippingAddress(
            recipient_name="Ada Lovelace", line1="1 Main St", city="Berlin", country_code="DE"
        ),
        payment_method_token=token,
    )


async def place(
    orders: OrderService,
    buyer_token: str,
    request: order_service_pb2.CreateOrderRequest,
    key: str | None = None,
) -> order_pb2.Order:
    """Place an order as a buyer with an account (the token's subject is registered)."""
    await orders.accounts.register_bearer(buyer_token)
    metadata = (*bearer(buyer_token), ("idempotency-key", key or str(uuid.uuid4())))
    return await orders.stub.CreateOrder(request, metadata=metadata)


async def place_failure(
    orders: OrderService,
    buyer_token: str,
    request: order_service_pb2.CreateOrderRequest,
    key: str | None = None,
) -> Failure:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await place(orders, buyer_token, request, key)
    return failure(raised.value)


async def count(orders: OrderService, sql: str, *args: object) -> int:
    value = await orders.db.fetchval(sql, *args)
    assert isinstance(value, int)
    return value


def money(value: money_pb2.Money) -> Money:
    return Money(value.units * 100 + value.nanos // 10_000_000, value.currency_code)


async def test_a_visa_order_is_paid_priced_by_the_catalog_and_commits_stock(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=5)
    buyer = str(uuid.uuid4())
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
    buyer_token = tokens.mint()
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
    buyer_token = tokens.mint()
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
    buyer_token = tokens.mint()
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
    buyer_token = tokens.mint()
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
    buyer_token = tokens.mint()
    key = f"reused-{uuid.uuid4()}"
    await place(orders, buyer_token, order_request((product_id, 1)), key)
    reused = await place_failure(orders, buyer_token, order_request((product_id, 2)), key)

    assert reused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert reused.reason == "IDEMPOTENCY_KEY_REUSED"
    assert len(orders.gateway.captured()) == 1
    # Keys belong to their buyer: another buyer may use the same string.
    other = await place(orders, tokens.mint(), order_request((product_id, 2)), key)
    assert other.status == order_pb2.ORDER_STATUS_PAID


async def test_a_request_id_places_one_order_and_must_agree_with_the_key(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=5)
    buyer_token = tokens.mint()
    await orders.accounts.register_bearer(buyer_token)
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
    both = failure(raised.value)
    assert both.code == grpc.StatusCode.INVALID_ARGUMENT
    assert both.violations.keys() == {"request_id"}

    not_a_uuid = order_request((product_id, 1))
    not_a_uuid.request_id = "order-1"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.CreateOrder(not_a_uuid, metadata=bearer(buyer_token))
    assert failure(raised.value).violations.keys() == {"request_id"}
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
    buyer = str(uuid.uuid4())
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
    outcomes = await asyncio.gather(
        *(place(orders, tokens.mint(), order_request((product_id, 1))) for _ in range(12)),
        return_exceptions=True,
    )

    paid = [o for o in outcomes if isinstance(o, order_pb2.Order)]
    refused = [failure(o) for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
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
    buyer = str(uuid.uuid4())
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
    refused = await place_failure(orders, tokens.mint(), order_request((dollars, 1), (euros, 1)))

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
    buyer = str(uuid.uuid4())
    await accounts.register(buyer)
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
    down = failure(raised.value)
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
    placed = await place(orders, tokens.mint(), order_request((product_id, 1)))
    request = order_service_pb2.GetOrderRequest(order_id=placed.order_id)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.GetOrder(request, metadata=bearer(tokens.mint()))
    hidden = failure(raised.value)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.GetOrder(
            order_service_pb2.GetOrderRequest(order_id=str(uuid.uuid4())),
            metadata=bearer(tokens.mint()),
        )
    missing = failure(raised.value)
    assert hidden == missing  # a stranger cannot tell someone else's order from none
    assert (hidden.code, hidden.reason) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")

    admin = await orders.stub.GetOrder(request, metadata=bearer(tokens.mint(roles=(Role.ADMIN,))))
    assert admin.order_id == placed.order_id

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.GetOrder(
            order_service_pb2.GetOrderRequest(order_id="not-a-uuid"), metadata=bearer(tokens.mint())
        )
    assert failure(raised.value).violations.keys() == {"order_id"}


async def test_list_orders_pages_newest_first_with_a_status_filter(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=50)
    buyer = str(uuid.uuid4())
    token = tokens.mint(buyer)
    placed = []
    for index in range(5):
        payment = "tok_chargeDeclined" if index == 2 else "tok_visa"
        try:
            placed.append(
                (await place(orders, token, order_request((product_id, 1), token=payment))).order_id
            )
        except grpc.aio.AioRpcError as error:
            placed.append(failure(error).metadata["order_id"])
    await place(orders, tokens.mint(), order_request((product_id, 1)))  # someone else's

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
        assert failure(raised.value).code == grpc.StatusCode.INVALID_ARGUMENT


async def test_create_order_validates_its_input_before_touching_anything(
    orders: OrderService, tokens: TestTokens
) -> None:
    buyer = str(uuid.uuid4())
    token = tokens.mint(buyer)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.CreateOrder(order_request(("p-1", 1)), metadata=bearer(token))
    no_key = failure(raised.value)
    assert no_key.code == grpc.StatusCode.INVALID_ARGUMENT
    assert no_key.violations.keys() == {"idempotency-key"}

    bad = order_service_pb2.CreateOrderRequest(
        items=[order_pb2.OrderItem(product_id="p-1", quantity=0)],
        shipping_address=order_pb2.ShippingAddress(recipient_name="Ada", country_code="Germany"),
    )
    invalid = await place_failure(orders, token, bad)
    assert invalid.code == grpc.StatusCode.INVALID_ARGUMENT
    assert invalid.violations.keys() == {
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
    assert not_an_id.violations.keys() == {"address_id"}
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
    assert failure(raised.value).code == grpc.StatusCode.UNAUTHENTICATED

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
    buyer_token = tokens.mint()
    await orders.accounts.register_bearer(buyer_token)
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
