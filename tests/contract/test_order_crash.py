"""The order service killed mid-checkout and restarted: the reconciler settles the order.

The order service runs as a real process that dies (os._exit, no cleanup) at a chosen saga
step; the sandbox payment gateway runs as its own process, so the charge it holds survives
the crash as a real processor's would; the product and user services run in the test's
process on real MongoDB-wire and PostgreSQL. After a restart without the crash setting,
only durable state (the orders database, the gateway's idempotency keys, the product
service's reservation) tells the reconciler what to do.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest
from marketplace.order.v1 import order_pb2, order_service_pb2_grpc

from services.devmesh.mesh import http_status
from services.devmesh.processes import ManagedProcess, free_port
from tests.support.failures import rpc_failure
from tests.support.inprocess import mesh_channel
from tests.support.order import (
    MIGRATIONS,
    SECRET,
    ProductService,
    create_product,
    order_request,
    product,
    stock,
)
from tests.support.order_process import Accounts, OrderProcess, accounts
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

__all__ = ["accounts", "product"]

SERVICE = "marketplace.order.v1.OrderService"


@dataclass
class Gateway:
    """The sandbox gateway process and a way to read its charges."""

    url: str
    api_key: str

    async def charges(self) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{self.url}/v1/charges", headers={"Authorization": f"Bearer {self.api_key}"}
            ) as response,
        ):
            assert response.status == 200
            body = await response.json()
        charges: list[dict[str, Any]] = body["charges"]
        return charges


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port, key = free_port(), secrets.token_urlsafe(16)
    process = ManagedProcess(
        "payment-gateway",
        [sys.executable, "-m", "services.order.sandbox_gateway"],
        tmp_path_factory.mktemp("gateway") / "gateway.log",
        env={
            "SANDBOX_GATEWAY_PORT": str(port),
            "SANDBOX_GATEWAY_API_KEY": key,
            "SANDBOX_GATEWAY_LATENCY_MS": "5",
        },
    ).start()
    try:
        url = f"http://127.0.0.1:{port}"
        process.wait_ready(lambda: http_status(f"{url}/healthz") == 200, timeout=30)
        yield Gateway(url, key)
    finally:
        process.stop(timeout=5)


@pytest.fixture
def order_process(
    backends: Backends,
    product: ProductService,
    accounts: Accounts,
    gateway: Gateway,
    tmp_path: Path,
) -> OrderProcess:
    database_url = backends.database_url("orders_crash", MIGRATIONS)
    port = free_port()
    env = {
        "ORDER_ENVIRONMENT": "test",
        "ORDER_DATABASE_URL": database_url,
        "ORDER_GRPC_HOST": "127.0.0.1",
        "ORDER_GRPC_PORT": str(port),
        "ORDER_OPS_PORT": str(free_port()),
        "ORDER_JWKS_URL": accounts.jwks_url,
        "ORDER_INTERNAL_SECRET": SECRET,
        "ORDER_PRODUCT_TARGET": product.served.target,
        "ORDER_USER_TARGET": accounts.users.served.target,
        "ORDER_REDIS_URL": backends.redis_url,
        "ORDER_EVENTS_STREAM": f"test.order.crash.{uuid.uuid4().hex[:8]}",
        "ORDER_PAYMENT_GATEWAY_URL": gateway.url,
        "ORDER_PAYMENT_GATEWAY_API_KEY": gateway.api_key,
        # Short enough for a test, far longer than this test's saga (milliseconds).
        "ORDER_RECONCILE_AFTER_SECONDS": "0.5",
        "ORDER_RECONCILE_INTERVAL_SECONDS": "0.2",
        "ORDER_SHUTDOWN_NOTICE_SECONDS": "0",
        "ORDER_SHUTDOWN_GRACE_SECONDS": "1",
    }
    return OrderProcess(env, tmp_path / "order.log", port)


async def settled(database_url: str, order_id: uuid.UUID) -> asyncpg.Record:
    """The order row once the reconciler has moved it out of PENDING (and committed stock)."""
    db = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(15):
            while True:
                row = await db.fetchrow(
                    "SELECT status, stock_committed FROM orders WHERE id = $1", order_id
                )
                if row is not None and (
                    row["status"] == "cancelled"
                    or (row["status"] == "paid" and row["stock_committed"])
                ):
                    return row
                await asyncio.sleep(0.1)
    finally:
        await db.close()


async def order_id_of_key(database_url: str, key: str) -> uuid.UUID:
    db = await asyncpg.connect(database_url)
    try:
        order_id = await db.fetchval("SELECT order_id FROM idempotency_keys WHERE key = $1", key)
    finally:
        await db.close()
    assert isinstance(order_id, uuid.UUID)
    return order_id


@pytest.mark.parametrize(
    ("crash_at", "outcome"),
    [
        ("after_record", "cancelled"),  # the order is written, no money moved yet
        ("after_authorize", "voided"),  # money held, not taken
        ("after_capture", "paid"),  # money taken, the order still PENDING
        ("after_paid", "paid"),  # PAID, the reservation not yet committed
    ],
)
async def test_a_crash_mid_checkout_is_finished_or_compensated_after_a_restart(
    crash_at: str,
    outcome: str,
    order_process: OrderProcess,
    product: ProductService,
    accounts: Accounts,
    gateway: Gateway,
    tokens: TestTokens,
) -> None:
    product_id = await create_product(product, stock=4)
    buyer = await accounts.users.new_buyer()
    key = f"crash-{crash_at}-{uuid.uuid4()}"
    metadata = (*bearer(tokens.mint(buyer)), ("idempotency-key", key))
    charges_before = len(await gateway.charges())

    crashing = await order_process.start(crash_at=crash_at)
    try:
        async with mesh_channel(order_process.target, "edge", retries=False) as channel:
            stub = order_service_pb2_grpc.OrderServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.CreateOrder(
                    order_request((product_id, 1)), metadata=metadata, timeout=10
                )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # the connection dropped
        assert crashing.process is not None
        assert await asyncio.to_thread(crashing.process.wait, 10) == 70  # os._exit, no cleanup
    finally:
        crashing.stop(timeout=5)

    database_url = order_process.env["ORDER_DATABASE_URL"]
    order_id = await order_id_of_key(database_url, key)
    assert (await stock(product, product_id))[2] == 1  # the crash left the unit reserved

    restarted = await order_process.start()
    try:
        row = await settled(database_url, order_id)
        async with mesh_channel(order_process.target, "edge", retries=False) as channel:
            stub = order_service_pb2_grpc.OrderServiceStub(channel)
            if outcome == "paid":
                retried = await stub.CreateOrder(order_request((product_id, 1)), metadata=metadata)
                assert (retried.order_id, retried.status) == (
                    str(order_id),
                    order_pb2.ORDER_STATUS_PAID,
                )
            else:
                with pytest.raises(grpc.aio.AioRpcError) as replayed:
                    await stub.CreateOrder(order_request((product_id, 1)), metadata=metadata)
                interrupted = rpc_failure(replayed)
                assert (interrupted.code, interrupted.reason) == (
                    grpc.StatusCode.UNAVAILABLE,
                    "ORDER_INTERRUPTED",
                )
                assert interrupted.metadata["order_id"] == str(order_id)
    finally:
        restarted.stop(timeout=5)

    charges = (await gateway.charges())[charges_before:]
    if outcome == "paid":
        assert row["status"] == "paid"
        assert [c["status"] for c in charges] == ["captured"]  # exactly one capture
        assert await stock(product, product_id) == (3, 3, 0)  # sold, not just held
    else:
        assert row["status"] == "cancelled"
        expected = ["voided"] if outcome == "voided" else []
        assert [c["status"] for c in charges] == expected
        assert await stock(product, product_id) == (4, 4, 0)  # released
