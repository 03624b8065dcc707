"""Encryption at rest of the order's shipping address, over gRPC.

The order placed through the API reads back unchanged while its row (and its idempotency
key's stored answer) holds no address line or phone in clear; served with a keyring that lacks its KEK, the order service answers
UNAVAILABLE (not INTERNAL) and logs no plaintext.
"""

from __future__ import annotations

import base64
import os
import uuid

import grpc
import pytest
from marketplace.order.v1 import order_pb2, order_service_pb2
from pydantic import SecretStr
from structlog.testing import capture_logs

from services.common.reasons import ErrorReason
from services.order.adapters.payments import SandboxGateway
from tests.support.failures import rpc_failure
from tests.support.order import (
    OrderService,
    ProductService,
    accounts,
    create_product,
    database_url,
    order_settings,
    orders,
    place,
    product,
    serving_orders,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

__all__ = ["accounts", "database_url", "orders", "product"]

ADDRESS = order_pb2.ShippingAddress(
    recipient_name="Katherine Johnson",
    line1="1 NASA Drive",
    line2="Building 1244",
    city="Hampton",
    region="VA",
    postal_code="23681",
    country_code="US",
    phone_number="+17575550100",
)
PLAINTEXTS = (
    "Katherine Johnson",
    "1 NASA Drive",
    "Building 1244",
    "Hampton",
    "23681",
    "+17575550100",
)


async def test_the_order_row_holds_no_address_in_clear_and_reads_back_unchanged(
    orders: OrderService,
    product: ProductService,
    tokens: TestTokens,
    backends: Backends,
    database_url: str,
) -> None:
    product_id = await create_product(product, stock=3)
    buyer = await orders.accounts.new_buyer()
    request = order_service_pb2.CreateOrderRequest(
        items=[order_pb2.OrderItem(product_id=product_id, quantity=1)],
        shipping_address=ADDRESS,
        payment_method_token="tok_visa",
    )
    key = str(uuid.uuid4())
    placed = await place(orders, tokens.mint(buyer), request, key)
    assert placed.shipping_address == ADDRESS
    # The stored answer of the idempotency key (the whole order) is sealed as well, and a
    # retry with the key still gets the same order back.
    stored = await orders.db.fetchrow(
        "SELECT response, response_sealed FROM idempotency_keys WHERE order_id = $1",
        uuid.UUID(placed.order_id),
    )
    assert stored is not None and stored["response_sealed"]
    assert not any(p.encode() in bytes(stored["response"]) for p in PLAINTEXTS)
    assert await place(orders, tokens.mint(buyer), request, key) == placed

    row = await orders.db.fetchrow(
        "SELECT o::text AS text, shipping_address, shipping_address_sealed, "
        "shipping_country_code FROM orders o WHERE id = $1",
        uuid.UUID(placed.order_id),
    )
    assert row is not None
    raw = row["text"] + bytes(row["shipping_address_sealed"]).decode("latin-1")
    for plaintext in PLAINTEXTS:
        assert plaintext not in raw
    assert (row["shipping_address"], row["shipping_country_code"]) == (None, "US")
    fetched = await orders.stub.GetOrder(
        order_service_pb2.GetOrderRequest(order_id=placed.order_id),
        metadata=bearer(tokens.mint(buyer)),
    )
    assert fetched.shipping_address == ADDRESS

    # The same database served with a keyring that lacks its KEK fails closed.
    stranger = f"other:{base64.b64encode(os.urandom(32)).decode()}"
    settings = order_settings(
        database_url,
        product.served.target,
        backends.redis_url,
        user_target=orders.accounts.served.target,
    ).model_copy(update={"data_kek": SecretStr(stranger)})
    gateway = SandboxGateway(latency_seconds=0.001)
    async with serving_orders(settings, orders.accounts, tokens, gateway) as wrong:
        with capture_logs() as logs, pytest.raises(grpc.aio.AioRpcError) as caught:
            await wrong.stub.GetOrder(
                order_service_pb2.GetOrderRequest(order_id=placed.order_id),
                metadata=bearer(tokens.mint(buyer)),
            )
    failure = rpc_failure(caught)
    assert failure.code is grpc.StatusCode.UNAVAILABLE
    assert failure.reason == ErrorReason.DEPENDENCY_UNAVAILABLE
    assert not any(p in repr(logs) + failure.message for p in PLAINTEXTS)
