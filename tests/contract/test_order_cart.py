"""CartService over gRPC on real PostgreSQL, with the real user and product services in-process.

Buyers are signed up through the user service's API; products are listed, repriced and
taken off sale through the product service's API. Checkouts go through the same saga as
CreateOrder, against the sandbox gateway.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc
import jwt
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from marketplace.order.v1 import (
    cart_pb2,
    cart_service_pb2,
    cart_service_pb2_grpc,
    order_pb2,
    order_service_pb2_grpc,
)
from marketplace.product.v1 import product_pb2, product_service_pb2
from marketplace.user.v1 import user_service_pb2, user_service_pb2_grpc

from services.common.identity import Role
from services.common.money import Money
from services.common.proto_money import money_from_proto, money_to_proto
from services.order.adapters.payments import SandboxGateway
from services.order.app import build_app
from services.order.config import Settings
from services.user.app import build_app as user_build_app
from services.user.config import Settings as UserSettings
from tests.support.inprocess import InProcessService, serve_in_process
from tests.support.product import (
    create_categories,
    product_settings,
    product_stub,
    serve_product,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

if TYPE_CHECKING:  # the async stub types exist in the generated stubs only
    from tests.support.product import ProductStub

SECRET = "cart-contract-test-internal-secret"
ADDRESS = order_pb2.ShippingAddress(
    recipient_name="Ada Lovelace", line1="1 Main St", city="Berlin", country_code="DE"
)
# A generous bound on each call: only a frozen service misses it.
DEADLINE = 20.0


@dataclass
class Mesh:
    """The three services in-process, and what the tests look at directly."""

    users: user_service_pb2_grpc.UserServiceAsyncStub
    products: ProductStub
    carts: cart_service_pb2_grpc.CartServiceAsyncStub
    orders: order_service_pb2_grpc.OrderServiceAsyncStub
    gateway: SandboxGateway
    db: asyncpg.Connection[asyncpg.Record]
    tokens: TestTokens

    async def buyer(self) -> str:
        """A token of a new buyer who signed up through the user service."""
        name = f"cart{uuid.uuid4().hex[:16]}"
        user = await self.users.CreateUser(
            user_service_pb2.CreateUserRequest(
                email=f"{name}@example.com", username=name, password="a long cart password 1"
            )
        )
        return self.tokens.mint(user.user_id)

    def seller(self) -> str:
        return self.tokens.mint(str(uuid.uuid4()), roles=(Role.SELLER,))

    async def listing(
        self, seller: str, *, price: int = 2000, sale: int | None = None, stock: int = 10
    ) -> str:
        product = product_pb2.Product(
            title="Desk lamp",
            category="home",
            list_price=money_to_proto(Money(price, "USD")),
            initial_stock=stock,
        )
        if sale is not None:
            product.sale_price.CopyFrom(money_to_proto(Money(sale, "USD")))
        created = await self.products.CreateProduct(
            product_service_pb2.CreateProductRequest(product=product, publish=True),
            metadata=bearer(seller),
        )
        return created.product_id

    async def add(self, buyer: str, product_id: str, quantity: int = 1) -> cart_pb2.Cart:
        return await self.carts.AddCartItem(
            cart_service_pb2.AddCartItemRequest(product_id=product_id, quantity=quantity),
            metadata=bearer(buyer),
        )

    async def cart(self, buyer: str) -> cart_pb2.Cart:
        return await self.carts.GetCart(cart_service_pb2.GetCartRequest(), metadata=bearer(buyer))

    async def checkout(
        self, buyer: str, key: str, *, token: str = "tok_visa", product_ids: tuple[str, ...] = ()
    ) -> order_pb2.Order:
        return await self.carts.CheckoutCart(
            cart_service_pb2.CheckoutCartRequest(
                shipping_address=ADDRESS, payment_method_token=token, product_ids=product_ids
            ),
            metadata=(*bearer(buyer), ("idempotency-key", key)),
            timeout=DEADLINE,
        )

    async def available(self, product_id: str) -> int:
        product = await self.products.GetProduct(
            product_service_pb2.GetProductRequest(product_id=product_id)
        )
        return product.stock_available


@dataclass
class Failure:
    code: grpc.StatusCode
    reason: str
    domain: str
    violations: dict[str, str]


def failure(error: grpc.aio.AioRpcError) -> Failure:
    status = rpc_status.from_call(error)
    reason = domain = ""
    violations: dict[str, str] = {}
    assert status is not None, error
    for detail in status.details:
        info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason, domain = info.reason, info.domain
        elif detail.Unpack(bad):
            violations = {v.field: v.description for v in bad.field_violations}
    return Failure(error.code(), reason, domain, violations)


async def refused(call: object) -> Failure:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return failure(raised.value)


def items(cart: cart_pb2.Cart) -> list[tuple[str, int]]:
    return [(item.product_id, item.quantity) for item in cart.items]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mesh(backends: Backends, tokens: TestTokens) -> AsyncIterator[Mesh]:
    """User, product and order services on fresh stores; the order pool has 3 connections."""
    user_settings = UserSettings(
        database_url=backends.database_url("cart_users", _migrations("user")),
        environment="test",
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        internal_secret=SECRET,
        shutdown_notice_seconds=0,
        shutdown_grace_seconds=1,
    )
    database_url = backends.database_url("cart_orders", _migrations("order"))
    gateway = SandboxGateway(latency_seconds=0.1, timeout_seconds=5.0)
    async with (
        serve_in_process(
            user_settings, lambda: user_build_app(user_settings, key_source=tokens.key_source())
        ) as users,
        serve_product(
            product_settings(backends, "cart_products", internal_secret=SECRET), tokens
        ) as (product, _),
    ):
        settings = _order_settings(database_url, users, product, backends.redis_url)
        async with serve_in_process(
            settings,
            lambda: build_app(settings, key_source=tokens.key_source(), payment_gateway=gateway),
        ) as orders:
            products = product_stub(product)
            await create_categories(products, tokens, {"home": []})
            db = await asyncpg.connect(database_url)
            try:
                yield Mesh(
                    users=user_service_pb2_grpc.UserServiceStub(users.channel),
                    products=products,
                    carts=cart_service_pb2_grpc.CartServiceStub(orders.channel),
                    orders=order_service_pb2_grpc.OrderServiceStub(orders.channel),
                    gateway=gateway,
                    db=db,
                    tokens=tokens,
                )
            finally:
                await db.close()


def _migrations(service: str) -> Path:
    return Path(f"services/{service}/migrations")


def _order_settings(
    database_url: str, users: InProcessService, product: InProcessService, redis_url: str
) -> Settings:
    return Settings(
        database_url=database_url,
        user_target=users.target,
        product_target=product.target,
        redis_url=redis_url,
        events_stream=f"test.cart.events.{uuid.uuid4().hex[:8]}",
        environment="test",
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        internal_secret=SECRET,
        payment_timeout_seconds=5.0,
        rpc_timeout_seconds=5,
        database_pool_size=3,
        database_acquire_timeout_seconds=15.0,
        shutdown_notice_seconds=0,
        shutdown_grace_seconds=1,
    )


async def test_a_cart_is_read_with_todays_prices_discounts_and_availability(mesh: Mesh) -> None:
    seller = mesh.seller()
    lamp = await mesh.listing(seller, price=2000, sale=1500)
    desk = await mesh.listing(seller, price=9000, stock=3)
    chair = await mesh.listing(seller, price=4000)
    buyer = await mesh.buyer()
    await mesh.add(buyer, lamp, 2)
    await mesh.add(buyer, desk, 2)
    added = await mesh.add(buyer, chair)

    assert items(added) == [(lamp, 2), (desk, 2), (chair, 1)]
    first = added.items[0]
    assert money_from_proto(first.unit_price, "") == Money(1500, "USD")
    assert money_from_proto(first.unit_discount, "") == Money(500, "USD")
    assert money_from_proto(first.line_total, "") == Money(3000, "USD")
    assert money_from_proto(added.subtotal, "") == Money(3000 + 18000 + 4000, "USD")
    assert money_from_proto(added.discount_total, "") == Money(1000, "USD")
    assert added.ready_for_checkout and added.total_quantity == 5
    assert added.name.startswith("users/") and added.name.endswith("/cart")

    # The seller reprices the lamp, sells the desk down and takes the chair off sale.
    read = await mesh.products.GetProduct(product_service_pb2.GetProductRequest(product_id=lamp))
    await mesh.products.UpdateProduct(
        product_service_pb2.UpdateProductRequest(
            product=product_pb2.Product(
                product_id=lamp,
                sale_price=money_to_proto(Money(1700, "USD")),
                etag=read.etag,
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["sale_price"]),
        ),
        metadata=bearer(seller),
    )
    await mesh.products.AdjustInventory(
        product_service_pb2.AdjustInventoryRequest(product_id=desk, delta=-2, reason="damaged"),
        metadata=bearer(seller),
    )
    await mesh.products.UnpublishProduct(
        product_service_pb2.UnpublishProductRequest(product_id=chair), metadata=bearer(seller)
    )
    cart = await mesh.cart(buyer)

    by_id = {item.product_id: item for item in cart.items}
    assert by_id[lamp].price_changed
    assert money_from_proto(by_id[lamp].added_unit_price, "") == Money(1500, "USD")
    assert money_from_proto(by_id[lamp].unit_price, "") == Money(1700, "USD")
    assert by_id[lamp].availability == cart_pb2.CART_ITEM_AVAILABILITY_AVAILABLE
    assert by_id[desk].availability == cart_pb2.CART_ITEM_AVAILABILITY_INSUFFICIENT_STOCK
    assert by_id[desk].stock_available == 1 and not by_id[desk].price_changed
    assert by_id[chair].availability == cart_pb2.CART_ITEM_AVAILABILITY_UNAVAILABLE
    assert not cart.ready_for_checkout

    # Another buyer's cart is theirs alone.
    assert items(await mesh.cart(await mesh.buyer())) == []


async def test_cart_changes_answer_typed_errors(mesh: Mesh) -> None:
    buyer = await mesh.buyer()
    lamp = await mesh.listing(mesh.seller())
    carts, me = mesh.carts, bearer(buyer)

    missing = await refused(mesh.add(buyer, "no-such-product"))
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "PRODUCT_NOT_FOUND")
    assert missing.domain == "order.marketplace.example.com"
    bad = await refused(
        carts.AddCartItem(cart_service_pb2.AddCartItemRequest(product_id=lamp), metadata=me)
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT and "quantity" in bad.violations
    await mesh.add(buyer, lamp, 60)
    too_many = await refused(mesh.add(buyer, lamp, 41))
    assert too_many.reason == "CART_ITEM_QUANTITY_EXCEEDED"
    absent = await refused(
        carts.UpdateCartItem(
            cart_service_pb2.UpdateCartItemRequest(product_id="other", quantity=2), metadata=me
        )
    )
    assert (absent.code, absent.reason) == (grpc.StatusCode.NOT_FOUND, "CART_ITEM_NOT_FOUND")
    updated = await carts.UpdateCartItem(
        cart_service_pb2.UpdateCartItemRequest(product_id=lamp, quantity=2), metadata=me
    )
    assert items(updated) == [(lamp, 2)]
    removed = await carts.RemoveCartItem(
        cart_service_pb2.RemoveCartItemRequest(product_id=lamp), metadata=me
    )
    assert items(removed) == []

    unkeyed = await refused(
        carts.CheckoutCart(
            cart_service_pb2.CheckoutCartRequest(
                shipping_address=ADDRESS, payment_method_token="tok_visa"
            ),
            metadata=me,
        )
    )
    assert unkeyed.code == grpc.StatusCode.INVALID_ARGUMENT and "idempotency-key" in str(
        unkeyed.violations
    )
    empty = await refused(mesh.checkout(buyer, str(uuid.uuid4())))
    assert (empty.code, empty.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CART_EMPTY")
    anonymous = await refused(carts.GetCart(cart_service_pb2.GetCartRequest()))
    assert (anonymous.code, anonymous.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")


async def test_checkout_places_one_order_across_sellers_and_empties_the_bought_lines(
    mesh: Mesh,
) -> None:
    first, second = mesh.seller(), mesh.seller()
    lamp = await mesh.listing(first, price=2000, stock=5)
    desk = await mesh.listing(second, price=9000, stock=5)
    kept = await mesh.listing(second, price=100, stock=5)
    buyer = await mesh.buyer()
    await mesh.add(buyer, lamp, 2)
    await mesh.add(buyer, desk)
    await mesh.add(buyer, kept)
    key = str(uuid.uuid4())

    order = await mesh.checkout(buyer, key, product_ids=(lamp, desk))

    assert order.status == order_pb2.ORDER_STATUS_PAID
    assert {(i.product_id, i.quantity) for i in order.items} == {(lamp, 2), (desk, 1)}
    assert len({i.seller_id for i in order.items}) == 2
    assert money_from_proto(order.total, "") == Money(2 * 2000 + 9000, "USD")
    cart = await mesh.cart(buyer)
    assert items(cart) == [(kept, 1)] and not cart.checkout_in_progress
    assert (await mesh.available(lamp), await mesh.available(desk)) == (3, 4)

    again = await mesh.checkout(buyer, key, product_ids=(lamp, desk))
    assert again.order_id == order.order_id
    assert await _orders_of(mesh, buyer) == 1
    assert items(await mesh.cart(buyer)) == [(kept, 1)]


@pytest.mark.parametrize("case", ["declined", "out_of_stock"])
async def test_a_failed_checkout_leaves_the_cart_exactly_as_it_was(mesh: Mesh, case: str) -> None:
    lamp = await mesh.listing(mesh.seller(), price=2000, stock=2)
    buyer = await mesh.buyer()
    await mesh.add(buyer, lamp, 2 if case == "declined" else 3)
    before = await mesh.cart(buyer)

    token = "tok_chargeDeclined" if case == "declined" else "tok_visa"
    failed = await refused(mesh.checkout(buyer, str(uuid.uuid4()), token=token))

    expected = "PAYMENT_DECLINED" if case == "declined" else "OUT_OF_STOCK"
    assert (failed.code, failed.reason) == (grpc.StatusCode.FAILED_PRECONDITION, expected)
    after = await mesh.cart(buyer)
    assert after == before
    assert not after.checkout_in_progress
    assert await mesh.available(lamp) == 2  # the reservation went back
    if case == "declined":
        order = await mesh.checkout(buyer, str(uuid.uuid4()))  # another card, a new key
        assert order.status == order_pb2.ORDER_STATUS_PAID
        assert items(await mesh.cart(buyer)) == []


async def test_concurrent_checkouts_of_one_cart_place_one_order(mesh: Mesh) -> None:
    lamp = await mesh.listing(mesh.seller(), price=2000, stock=20)
    buyer = await mesh.buyer()
    await mesh.add(buyer, lamp, 3)
    same = str(uuid.uuid4())
    keys = [same, same, same] + [str(uuid.uuid4()) for _ in range(5)]
    captured_before = mesh.gateway.captured_total("USD")

    results = await asyncio.gather(
        *(mesh.checkout(buyer, key) for key in keys), return_exceptions=True
    )

    placed = [r for r in results if isinstance(r, order_pb2.Order)]
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(placed) + len(errors) == len(keys), results
    assert len({order.order_id for order in placed}) == 1, placed
    for error in errors:
        seen = failure(error)
        assert (seen.code, seen.reason) in {
            (grpc.StatusCode.ABORTED, "CART_CHECKOUT_IN_PROGRESS"),
            (grpc.StatusCode.ABORTED, "REQUEST_IN_PROGRESS"),
            (grpc.StatusCode.FAILED_PRECONDITION, "CART_EMPTY"),
        }, seen
    assert await _orders_of(mesh, buyer) == 1
    assert mesh.gateway.captured_total("USD") - captured_before == Money(6000, "USD")
    assert await mesh.available(lamp) == 17
    assert items(await mesh.cart(buyer)) == []


async def _orders_of(mesh: Mesh, buyer: str) -> int:
    """The orders the buyer holds in any status, counted in the order service's own store."""
    buyer_id = uuid.UUID(jwt.decode(buyer, options={"verify_signature": False})["sub"])
    count = await mesh.db.fetchval("SELECT count(*) FROM orders WHERE buyer_id = $1", buyer_id)
    assert isinstance(count, int)
    return count
