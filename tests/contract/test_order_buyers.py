"""Checkout asks the real user service whether the buyer may buy and where the order goes."""

from __future__ import annotations

import uuid

import asyncpg
import grpc
import jwt
import pytest
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc

from services.order.adapters.payments import SandboxGateway
from services.order.app import build_app
from tests.support.failures import rpc_failure
from tests.support.inprocess import serve_in_process
from tests.support.order import (
    OrderService,
    ProductService,
    UserService,
    accounts,
    count,
    create_product,
    database_url,
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


async def add_address(accounts: UserService, token: str, **overrides: str) -> user_pb2.Address:
    """An entry in the buyer's address book, made through the user service's public API."""
    fields: dict[str, str] = {
        "recipient_name": "Grace Hopper",
        "line1": "2 Navy Yard",
        "city": "Arlington",
        "region": "VA",
        "postal_code": "22202",
        "country_code": "US",
    }
    fields.update(overrides)
    stub = user_service_pb2_grpc.UserServiceStub(accounts.served.channel)
    address = user_pb2.Address(**fields)  # type: ignore[arg-type]
    created: user_pb2.Address = await stub.CreateAddress(
        user_service_pb2.CreateAddressRequest(user_id="me", address=address),
        metadata=bearer(token),
    )
    return created


def by_address_id(product_id: str, address_id: str) -> order_service_pb2.CreateOrderRequest:
    return order_service_pb2.CreateOrderRequest(
        items=[order_pb2.OrderItem(product_id=product_id, quantity=1)],
        address_id=address_id,
        payment_method_token="tok_visa",
    )


async def test_an_address_book_entry_is_copied_into_the_order(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=3)
    token = await orders.accounts.buyer_token()
    home = await add_address(orders.accounts, token)

    placed = await place(orders, token, by_address_id(product_id, home.address_id))

    assert placed.status == order_pb2.ORDER_STATUS_PAID
    shipped_to = placed.shipping_address
    assert (shipped_to.recipient_name, shipped_to.line1, shipped_to.city) == (
        "Grace Hopper",
        "2 Navy Yard",
        "Arlington",
    )
    assert (shipped_to.region, shipped_to.postal_code, shipped_to.country_code) == (
        "VA",
        "22202",
        "US",
    )


async def test_someone_elses_or_an_unknown_address_is_not_found_and_nothing_moves(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=3)
    owner_token = await orders.accounts.buyer_token()
    thief_token = await orders.accounts.buyer_token()
    theirs = await add_address(orders.accounts, owner_token)

    for address_id in (theirs.address_id, str(uuid.uuid4())):
        refused = await place_failure(orders, thief_token, by_address_id(product_id, address_id))
        assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "ADDRESS_NOT_FOUND")

    assert await stock(product, product_id) == (3, 3, 0)
    assert (
        await count(orders, "SELECT count(*) FROM orders WHERE buyer_id = $1", _sub(thief_token))
        == 0
    )
    assert orders.gateway.charges == []


async def test_an_unknown_or_suspended_buyer_cannot_order_even_with_a_full_address(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    product_id = await create_product(product, stock=3)
    ghost = tokens.mint()  # a valid token whose account does not exist
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await orders.stub.CreateOrder(
            order_request((product_id, 1)),
            metadata=(*bearer(ghost), ("idempotency-key", str(uuid.uuid4()))),
        )
    unknown = rpc_failure(raised)
    assert (unknown.code, unknown.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "BUYER_NOT_FOUND",
    )

    suspended = await orders.accounts.new_buyer()
    await orders.accounts.suspend(suspended)
    key = f"suspended-{uuid.uuid4()}"
    for _ in range(2):  # the refusal is the key's outcome: the retry replays it
        barred = await place_failure(
            orders, tokens.mint(suspended), order_request((product_id, 1)), key
        )
        assert (barred.code, barred.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "BUYER_SUSPENDED",
        )

    assert await stock(product, product_id) == (3, 3, 0)
    assert orders.gateway.charges == []


async def test_a_user_service_that_is_down_is_unavailable_and_frees_the_key(
    database_url: str, product: ProductService, tokens: TestTokens, backends: Backends
) -> None:
    settings = order_settings(
        database_url, product.served.target, backends.redis_url, user_target="127.0.0.1:1"
    )
    gateway = SandboxGateway(latency_seconds=0.001)
    product_id = await create_product(product, stock=2)
    buyer = str(uuid.uuid4())
    async with serve_in_process(
        settings,
        lambda: build_app(settings, key_source=tokens.key_source(), payment_gateway=gateway),
    ) as served:
        stub = order_service_pb2_grpc.OrderServiceStub(served.channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.CreateOrder(
                order_request((product_id, 1)),
                metadata=(*bearer(tokens.mint(buyer)), ("idempotency-key", "down-1")),
            )
    down = rpc_failure(raised)
    assert (down.code, down.reason) == (grpc.StatusCode.UNAVAILABLE, "USER_SERVICE_UNAVAILABLE")
    db = await asyncpg.connect(database_url)
    try:
        keys = await db.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE buyer_id = $1", uuid.UUID(buyer)
        )
    finally:
        await db.close()
    assert keys == 0  # a retry with the same key runs afresh once the user service is back
    assert await stock(product, product_id) == (2, 2, 0)
    assert gateway.charges == []


def _sub(token: str) -> uuid.UUID:
    return uuid.UUID(jwt.decode(token, options={"verify_signature": False})["sub"])
